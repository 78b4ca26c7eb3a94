"""`taskctl workers`: the consumers, alive or recently dead, and what each runs now."""

import time
from typing import Annotated

import typer

from taskctl.cli.state import LIMIT_MAX, output, state


def workers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """List the consumers (alive, or stopped without saying so lately): host, pid, workers, config, running jobs."""
    from taskctl import presence
    from taskctl.render_workers import workers_table

    obj = state(ctx)
    now = time.time()
    record = obj.record
    found = presence.survey(record, record.running(LIMIT_MAX), obj.settings.lease, obj.catalog.timeouts(), now)
    output(
        as_json,
        lambda: {"consumers": [c.to_json(obj.tz, now) for c in found]},
        lambda width: workers_table(found, obj.tz, now),
    )
