"""`taskctl service install|uninstall|status`: the consumer as a per-user service, started at login."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from taskctl.cli.coercion import PlainCommand, PlainGroup
from taskctl.cli.state import state
from taskctl.errors import NotPossible

if TYPE_CHECKING:
    from taskctl.service import Service

GRACE = 30.0  # service.GRACE: a test keeps them the same (the default must be known to --help without service)

app = typer.Typer(
    cls=PlainGroup,
    help="Start the consumer at login: a systemd user unit (Linux) or a launchd agent (macOS). Needs no root.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PlatformOption = Annotated[
    str | None,
    typer.Option("--platform", help="systemd or launchd. Default: this machine's.", show_default=False),
]


def _service(ctx: typer.Context, platform: str | None, grace: str = f"{GRACE:g}s") -> "Service":
    from taskctl.errors import UsageError
    from taskctl.service import PLATFORMS, Service, this_platform
    from taskctl.times import parse_duration

    if platform is not None and platform not in PLATFORMS:
        raise UsageError(f"--platform must be one of {', '.join(PLATFORMS)}")
    seconds = parse_duration(grace, "--grace")
    return Service(platform or this_platform(), state(ctx).settings, Path.home(), seconds)


@app.command("install", cls=PlainCommand)
def install(
    ctx: typer.Context,
    print_only: Annotated[bool, typer.Option("--print", help="Show the file it would write; change nothing.")] = False,
    grace: Annotated[
        str, typer.Option(help="On stop, running jobs get this long to finish before they are requeued.")
    ] = f"{GRACE:g}s",
    platform: PlatformOption = None,
) -> None:
    """Write and enable a service that runs this config's consumer at login, and restarts it if it fails."""
    from taskctl.service import env_names

    service = _service(ctx, platform, grace)
    names = env_names(service.settings)
    if print_only:
        typer.echo(f"# {service.file}")
        typer.echo(service.text(), nl=False)
        typer.echo(f"# {service.env_file} (mode 0600): {', '.join(names) or 'no variables'}")
        return
    missing = service.write(dict(os.environ))
    kept = [name for name in names if name not in missing]
    typer.echo(f"Wrote {service.file}", err=True)
    typer.echo(f"Wrote {service.env_file} (mode 0600): {', '.join(kept) or 'no variables'}", err=True)
    for name in missing:
        typer.echo(f"Warning: ${name} (named by the config) is not set here; set it and install again", err=True)
    problem = service.manager()
    if problem:
        commands = " && ".join(" ".join(command) for command in service.activate_commands())
        raise NotPossible(f"wrote the service but could not enable it: {problem}; where it runs: {commands}")
    service.activate()
    logs = f"journalctl --user -u {service.file.name} -f" if service.platform == "systemd" else service.log_file
    typer.echo(f"Enabled and started {service.label}. Logs: {logs}. Status: taskctl service status", err=True)
    if advice := service.linger_advice():
        typer.echo(advice, err=True)


@app.command("uninstall", cls=PlainCommand)
def uninstall(ctx: typer.Context, platform: PlatformOption = None) -> None:
    """Stop and disable the service of this config, and delete its files (the environment file too)."""
    service = _service(ctx, platform)
    if not service.file.exists() and not service.env_file.exists():
        raise NotPossible(f"no service is installed for {service.settings.path} ({service.file} does not exist)")
    problem = service.manager()
    if problem is None:
        service.deactivate()
    for path in service.remove():
        typer.echo(f"Removed {path}", err=True)
    if problem:
        typer.echo(f"Not stopped: {problem}; if it runs somewhere, stop it there", err=True)


@app.command("status", cls=PlainCommand)
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
    platform: PlatformOption = None,
) -> None:
    """Is the service installed, enabled, running? And the last lines of its log."""
    from taskctl.model import dumps

    service = _service(ctx, platform)
    found = service.state()
    document = {"name": service.label, "platform": service.platform, "file": str(service.file), **found}
    if as_json:
        typer.echo(dumps(document))
        return

    def word(value: bool | None) -> str:
        return "unknown" if value is None else "yes" if value else "no"

    typer.echo(f"{service.label} ({service.platform}): {service.file}")
    typer.echo(f"installed: {word(found['installed'])}")
    why = f" ({found['unreachable']})" if found["unreachable"] else ""
    typer.echo(f"enabled: {word(found['enabled'])}{why}")
    typer.echo(f"running: {word(found['running'])}{why}")
    if found["log"]:
        typer.echo("last log lines:")
        for line in found["log"]:
            typer.echo(f"  {line}")
