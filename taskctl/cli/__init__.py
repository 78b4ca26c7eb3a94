"""The taskctl command line: parse, call the domain, report. One error path, in `main`.

Every command runs after Typer has built all of them, `--help` too, so the command
modules import only Typer at their top, and the rest inside each command. They
also do without `from __future__ import annotations`: Typer evaluates every
string annotation of every command twice per start (~20 ms on this machine).
"""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from taskctl.cli import coercion, consumer, inspect, jobs, keys, move, ops, service, steer, tasks, upgrade, workers
from taskctl.cli.state import Session
from taskctl.errors import TaskctlError


class TaskctlGroup(coercion.PlainGroup):
    """Turns every expected failure into one `Error: ...` line and an exit code:
    2 for usage errors, 1 for runtime errors, never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # Typer's vendored click Context
        try:
            return super().invoke(ctx)
        except Exception:
            from taskctl.engines import database_errors

            obj = ctx.find_object(Session)
            # Only now: the settings are loaded on first use, by the command itself.
            with database_errors(obj.__dict__.get("settings") if obj is not None else None):
                raise

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args, prog_name, complete_var, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
        except TaskctlError as exc:
            _fail(str(exc), exc.exit_code)
        except typer.TyperException as exc:  # Typer's own (vendored click) usage errors
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.exit(2)  # the help text is already printed
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            if getattr(exc, "option_name", None) in ("--config", "-c"):
                hint = " (--config goes before the command: taskctl --config FILE COMMAND)"
            _fail(f"{exc.format_message()}{hint}", exc.exit_code)
        except typer.Abort:
            _fail("aborted", 1)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    typer.echo(f"Error: {message}", err=True)
    sys.exit(code)


app = typer.Typer(
    cls=TaskctlGroup,
    help="See and steer background jobs: a CLI over Huey, with SQLite by default.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts mention [retention] and [taskctl]: plain text, not markup
)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The config file. Default: $TASKCTL_CONFIG, else ./config.toml.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """See and steer background jobs: a CLI over Huey, with SQLite by default."""
    ctx.obj = Session(config)


for name, function in (
    ("run-consumer", consumer.run_consumer),
    ("enqueue", jobs.enqueue),
    ("status", jobs.status),
    ("tasks", tasks.list_tasks),
    ("show", inspect.show),
    ("history", inspect.history),
    ("stats", inspect.stats),
    ("results", inspect.results),
    ("retry", steer.retry),
    ("cancel", steer.cancel),
    ("purge", steer.purge),
    ("move", move.move),
    ("workers", workers.workers),
):
    app.command(name, cls=coercion.PlainCommand)(function)
app.add_typer(service.app, name="service")
app.command("upgrade", cls=coercion.PlainCommand)(upgrade.upgrade)
app.add_typer(keys.app, name="key")
app.command("check", cls=coercion.PlainCommand)(ops.check)
app.command("backup", cls=coercion.PlainCommand)(ops.backup)


def main() -> None:
    app()
