"""`taskctl tasks`: what is registered, and when periodic tasks run next."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from taskctl.cli.state import console, state
from taskctl.render import tasks_table
from taskctl.times import iso


def list_tasks(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")] = False,
) -> None:
    """List every registered task: kind, schedule and next run, retries, timeout."""
    app = state(ctx).reader
    tz = app.settings.tz
    rows = []
    for info in app.tasks.values():
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
            }
        )
    if as_json:
        typer.echo(json.dumps({"tasks": rows}, indent=2))
    else:
        console().print(tasks_table(rows))
