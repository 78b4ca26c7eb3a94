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
    from taskctl import catalog, catchup
    from taskctl.model import TaskSummary
    from taskctl.render import tasks_view

    obj = state(ctx)
    tz = obj.tz
    record = obj.record_if_any  # no database yet: no task has run
    tasks = obj.catalog
    rows = []
    now = datetime.now(UTC)
    for entry in tasks.tasks[:limit]:
        next_run = catalog.next_run(entry, tz, record, now)
        missed = catchup.missed(entry, tz, record, now) if record and entry.cron else None
        rows.append(
            TaskSummary(
                name=entry.name,
                kind=entry.kind,
                schedule=entry.cron,
                schedule_source=entry.schedule_source,
                next_run=next_run.timestamp() if next_run else None,
                retries=entry.retries,
                timeout=entry.timeout,
                last_run=record.last_run(entry.name) if record else None,
                catch_up=entry.catch_up.to_json() if entry.cron else None,
                missed=missed.timestamp() if missed else None,
            )
        )
    more = len(tasks.tasks) > limit
    output(
        as_json,
        lambda: {"tasks": [row.to_json(tz) for row in rows], "more": more, "catalog": tasks.to_json(tz)},
        lambda width: tasks_view(rows, len(tasks.tasks), width, tz, tasks.notice()),
    )
