"""`taskctl tasks`: what is registered, and when periodic tasks run next."""

from datetime import UTC, datetime
from typing import Annotated

import typer

from taskctl.cli.state import LIMIT_MAX, output, state


def list_tasks(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=LIMIT_MAX, help="At most this many tasks.")] = 200,
) -> None:
    """List every registered task: kind, schedule and next run, retries, timeout, last run."""
    from taskctl import catchup
    from taskctl.model import TaskSummary
    from taskctl.render import tasks_table

    obj = state(ctx)
    app, tz = obj.reader, obj.tz
    record = obj.record if app.exists else None  # no database yet: no task has run
    rows = []
    now = datetime.now(UTC)
    for info in list(app.tasks.values())[:limit]:
        next_run = app.next_run(info)
        missed = catchup.missed_slot(app, info, now) if record and info.cron else None
        rows.append(
            TaskSummary(
                name=info.name,
                kind=info.kind,
                schedule=info.cron,
                schedule_source=info.schedule_source,
                next_run=next_run.timestamp() if next_run else None,
                retries=info.retries,
                timeout=info.timeout,
                last_run=record.last_run(info.name) if record else None,
                catch_up=info.catch_up.to_json() if info.cron else None,
                missed=missed.timestamp() if missed else None,
            )
        )
    more = len(app.tasks) > limit
    output(
        as_json,
        lambda: {"tasks": [row.to_json(tz) for row in rows], "more": more},
        lambda width: tasks_table(rows, len(app.tasks), width, tz),
    )
