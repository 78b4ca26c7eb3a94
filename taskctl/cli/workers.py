"""`taskctl workers`: the consumers, alive or recently dead, and what each runs now."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from taskctl import presence
from taskctl.cli.state import LIMIT_MAX, output, state
from taskctl.render_workers import workers_table


def workers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """List the consumers (alive, or stopped without saying so lately): host, pid, workers, config, running jobs."""
    obj = state(ctx)
    now = time.time()
    found = presence.survey(obj.reader, obj.record, obj.record.running(LIMIT_MAX), now)
    output(
        as_json,
        lambda: {"consumers": [c.to_json(obj.tz, now) for c in found]},
        lambda width: workers_table(found, obj.tz, now),
    )
