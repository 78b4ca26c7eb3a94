"""`taskctl run-consumer`: the workers and the periodic scheduler."""

from typing import TYPE_CHECKING, Annotated

import typer

from taskctl.cli.state import state

if TYPE_CHECKING:
    import logging


def _drop_task_tracebacks(record: "logging.LogRecord") -> bool:
    # taskctl logs a failed task in one line and keeps its traceback in the
    # record (`taskctl status --json`); Huey's copy of it is for -v.
    return not (record.exc_info and record.getMessage().startswith("Unhandled exception in task"))


def run_consumer(
    ctx: typer.Context,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker count. Default: the config's workers setting.")
    ] = None,
    no_periodic: Annotated[bool, typer.Option("--no-periodic", help="Do not run periodic tasks.")] = False,
    burst: Annotated[
        bool, typer.Option("--burst", help="Run until nothing is queued, running or waiting for a retry, then exit 0.")
    ] = False,
    worker_type: Annotated[str | None, typer.Option(help="thread or process (process enforces task timeouts).")] = None,
    grace: Annotated[
        str | None,
        typer.Option(
            help="On Ctrl+C or SIGTERM, interrupt running jobs after this long (30s, 2m); they go back to the "
            "queue. Default: wait until they finish.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every job, and Huey's tracebacks of failed tasks.")
    ] = False,
) -> None:
    """Run the workers and the periodic scheduler until Ctrl+C or SIGTERM (running jobs finish first)."""
    import logging

    from taskctl.config import WORKER_TYPES
    from taskctl.errors import UsageError
    from taskctl.logs import escaping_handler
    from taskctl.times import parse_duration

    grace_seconds = None if grace is None else parse_duration(grace, "--grace")
    if worker_type is not None and worker_type not in WORKER_TYPES:
        raise UsageError(f"--worker-type must be one of {', '.join(WORKER_TYPES)}")
    obj = state(ctx)
    settings = obj.settings
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[escaping_handler()])
    logging.getLogger("taskctl").setLevel(logging.INFO)
    if not verbose:
        logging.getLogger("huey").addFilter(_drop_task_tracebacks)
    app = obj.app
    count = workers or settings.workers
    kind = worker_type or settings.worker_type
    periodic = "periodic off" if no_periodic or burst else f"{len(app.periodic())} periodic task(s)"
    typer.echo(
        f"taskctl consumer: {count} {kind} worker(s), {periodic}, database {settings.location}"
        + ("" if burst else "; Ctrl+C or SIGTERM to stop"),
        err=True,
    )
    from taskctl.consumer import run_consumer as run  # Huey's consumer, for this command only

    run(app, count, periodic=not no_periodic, burst=burst, worker_type=kind, grace=grace_seconds)
    typer.echo("taskctl consumer stopped", err=True)
