"""`taskctl key create`: the key that signs messages, in a file only its owner reads."""

from pathlib import Path
from typing import Annotated

import typer

from taskctl.cli.coercion import PlainCommand, PlainGroup
from taskctl.cli.state import state

app = typer.Typer(
    cls=PlainGroup,
    help="The key that signs messages (see the README's Signing).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("create", cls=PlainCommand)
def create(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(help="Where to write it. Default: [taskctl] signing_key_file, else taskctl.key by the config."),
    ] = None,
) -> None:
    """Write a new random signing key to a 0600 file (never over an existing one)."""
    settings = state(ctx).settings
    target = (path or settings.signing_key_file or settings.root / "taskctl.key").resolve()
    from taskctl.signing import create_key  # Huey's serializer module, for this command only

    create_key(target)
    typer.echo(f"created {target}")
    if settings.signing_key_file != target:
        typer.echo(f'sign messages with it: set [taskctl] signing_key_file = "{target}" in {settings.path}', err=True)
