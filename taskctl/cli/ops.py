"""`taskctl check` and `taskctl backup`: for monitoring and for safe keeping."""

import time
from pathlib import Path
from typing import Annotated

import typer

from taskctl.cli.state import state

LATE = 300.0  # health.LATE: a test keeps them the same (the default must be known to --help without health)
FAILING_RUNS = 3  # health.FAILING_RUNS


def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")] = False,
    late: Annotated[
        float, typer.Option(min=0, max=86400, help="Seconds a periodic run may lag its minute before it is missed.")
    ] = LATE,
    failures: Annotated[
        int, typer.Option(min=1, max=1000, help="Failed runs in a row that make a task count as failing.")
    ] = FAILING_RUNS,
) -> None:
    """Exit 1 with one line per problem: no consumer alive, a periodic run missed, a task that keeps failing."""
    from taskctl import health
    from taskctl.model import dumps

    obj = state(ctx)
    tasks = obj.catalog  # what the consumer runs: no Huey, no task modules, once one has run
    problems = health.check(obj.settings, obj.record_if_any, tasks, time.time(), late, failures)
    if as_json:
        typer.echo(dumps({"ok": not problems, "problems": [p.to_json() for p in problems]}))
    elif problems:
        for problem in problems:
            typer.echo(f"{problem.kind}: {problem.message}")
    else:
        periodic = len(tasks.periodic())
        typer.echo(f"ok: a consumer is alive, {periodic} periodic task(s) on time, no task failing")
    if problems:
        raise typer.Exit(1)


def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The new file to write the copy to.", show_default=False)],
) -> None:
    """Write a consistent copy of the live SQLite database to FILE (consumers may keep running)."""
    from taskctl.engines import database_errors
    from taskctl.errors import DatabaseError, UsageError

    settings = state(ctx).settings
    if settings.engine == "redis":
        raise UsageError(
            "taskctl backup copies SQLite databases; Redis keeps its own: run `redis-cli BGSAVE` and copy its "
            "dump.rdb (CONFIG GET dir), or keep its appendonly files"
        )
    if not settings.database.exists():
        raise DatabaseError(f"no database at {settings.database} yet: there is nothing to back up")
    if file.exists() or file.is_symlink():
        raise UsageError(f"{file} exists; give a new file name (backup never overwrites)")
    if not file.parent.is_dir():
        raise UsageError(f"folder {file.parent} does not exist; create it first")
    if file.resolve() == settings.database.resolve():
        raise UsageError("FILE is the database itself; give a new file name")
    from taskctl.engines.sqlite_backup import backup as copy

    with database_errors(settings):
        jobs = copy(settings.database, file, settings.busy_timeout)
    typer.echo(f"Backed up {settings.database} to {file} ({jobs:,} job(s), {file.stat().st_size:,} bytes).")
