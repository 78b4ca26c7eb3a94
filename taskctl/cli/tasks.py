"""`taskctl tasks`: what is registered, and when periodic tasks run next."""

from __future__ import annotations

from typing import Annotated

import typer

from taskctl.cli.state import LIMIT_MAX, output, state
from taskctl.render import tasks_table
from taskctl.times import iso


def list_tasks(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=LIMIT_MAX, help="At most this many tasks.")] = 200,
) -> None:
    """List every registered task: kind, schedule and next run, retries, timeout, last run."""
    obj = state(ctx)
    app = obj.reader
    tz = app.settings.tz
    # No database yet (nothing ever queued): no task has run.
    registry = obj.registry if app.settings.database.exists() else None
    rows = []
    for info in list(app.tasks.values())[:limit]:
        next_run = app.next_run(info)
        rows.append(
            {
                "name": info.name,
                "kind": info.kind,
                "schedule": info.cron,
                "schedule_source": info.schedule_source,
                "next_run": iso(next_run.timestamp(), tz) if next_run else None,
                "retries": info.retries,
                "timeout": info.timeout,
                "last_run": registry.last_run(info.name) if registry else None,
            }
        )
    document = {"tasks": rows, "more": len(app.tasks) > limit}
    output(as_json, document, lambda width: tasks_table(rows, len(app.tasks), width))
