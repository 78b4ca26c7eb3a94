"""`taskctl move --to redis://...`: copy this SQLite database's record into Redis."""

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from taskctl.cli.state import state

if TYPE_CHECKING:
    from taskctl import move as moving
    from taskctl.app import App
    from taskctl.engines.redis_store import RedisJobStorage


def move(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="The Redis to move to: redis://host:6379/0 (rediss:// for TLS).")],
    password_env: Annotated[
        str | None, typer.Option(help="The variable that holds the Redis password (default: the config's).")
    ] = None,
) -> None:
    """Copy queued, scheduled and failed jobs, history and cached results to Redis, then mark this
    database as moved (a consumer started on it refuses). Running it again copies nothing twice."""
    from taskctl.config import redact, validate_url
    from taskctl.engines import database_errors, store_options
    from taskctl.errors import ConfigError, UsageError

    obj = state(ctx)
    settings = obj.settings
    if settings.engine != "sqlite":
        raise UsageError("`taskctl move` copies a SQLite database; this config's database is already Redis")
    try:
        url = validate_url(settings.path, to)
    except ConfigError as exc:
        # The option's problem, not the config file's: without its path, and named --to.
        raise UsageError(str(exc).removeprefix(f"{settings.path}: ").replace("[taskctl] database", "--to")) from None
    if url is None:
        raise UsageError(f"--to {to!r} is not a redis:// or rediss:// URL")
    from taskctl import move as moving  # Huey and both engines, for this command only
    from taskctl.app import build_app

    source = build_app(settings, create=False)
    obj.record  # noqa: B018 - raises when there is no database to move
    total = moving.check(source)
    target_settings = replace(settings, url=url, password_env=password_env or settings.password_env)
    storage_class, options = store_options(target_settings)
    with database_errors(target_settings):
        target = storage_class(settings.name, **options)
        done = _run(source, target, total)
    typer.echo(
        f"Moved {done.jobs:,} job(s) and {done.results:,} cached result(s) to {redact(url)}"
        + (f" ({done.present:,} were there already)" if done.present else "")
        + "."
    )
    typer.echo(f'Now set [taskctl] database = "{redact(url)}" in {settings.path}, and start the consumers.', err=True)
    if target_settings.password_env and not os.environ.get(target_settings.password_env):
        typer.echo(f"(and export {target_settings.password_env} wherever they run)", err=True)


def _run(source: "App", target: "RedisJobStorage", total: int) -> "moving.Moved":
    "The copy, with a progress bar on stderr when someone is watching."
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from taskctl import move as moving

    err = Console(stderr=True)
    if not err.is_terminal or total < 1000:
        return moving.move(source, target)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        bar = progress.add_task("Copying", total=total)
        return moving.move(source, target, lambda n: progress.advance(bar, n))
