"""`taskctl upgrade`: bring a database written by an earlier release up to date."""

import typer

from taskctl.cli.state import state


def upgrade(ctx: typer.Context) -> None:
    """Upgrade the database's schema (commands that only read never change it; run-consumer upgrades too)."""
    from taskctl.engines import check_sqlite_file, require_database

    obj = state(ctx)
    settings = obj.settings
    if settings.engine != "sqlite":
        typer.echo(f"{settings.location}: a Redis record has no schema to upgrade")
        return
    require_database(settings)
    found = check_sqlite_file(settings.database)
    obj.writer  # noqa: B018 - opening the database to write applies the pending steps
    steps = found.pending if found else ()
    if steps:
        typer.echo(f"upgraded {settings.database}: {', '.join(steps)}")
    else:
        typer.echo(f"{settings.database} is up to date")
