"""`taskctl enqueue` and `taskctl status`."""

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from taskctl import completion as complete
from taskctl.cli.state import LIMIT_MAX, console, state
from taskctl.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


def enqueue(
    ctx: typer.Context,
    task: Annotated[
        str,
        typer.Argument(
            help="Task name: full (tasks.github.top_repos) or a unique suffix.", autocompletion=complete.task_names
        ),
    ],
    params: Annotated[
        list[str] | None,
        typer.Argument(
            help="Arguments: ARG or KEY=VALUE; values are JSON when valid JSON, else text. "
            "Put -- before arguments that start with a dash.",
            show_default=False,
        ),
    ] = None,
    delay: Annotated[str | None, typer.Option(help="Run after a delay: 90s, 10m, 2h, 1h30m.")] = None,
    at: Annotated[
        str | None, typer.Option(help="Run at an ISO 8601 time (in the config's timezone unless it has an offset).")
    ] = None,
    priority: Annotated[int | None, typer.Option(help="Higher runs first.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job and print its result as JSON.")] = False,
    timeout: Annotated[float, typer.Option(help="With --wait: give up after this many seconds.")] = 60.0,
    each: Annotated[
        str | None,
        typer.Option(
            help="One job per line of this file (- for stdin): a JSON array (args) or object (kwargs) "
            "per line, or CSV rows whose header names the kwargs (a .csv file, or --csv).",
            show_default=False,
        ),
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="With --each: the input is CSV.")] = False,
    spread: Annotated[
        str | None, typer.Option(help="With --each: give the jobs etas evenly over this window: 10m, 2h.")
    ] = None,
    rate: Annotated[str | None, typer.Option(help="With --each: pace the jobs by etas: 50/s, 300/m, 1000/h.")] = None,
    batch: Annotated[
        str | None, typer.Option(help="With --each: the batch name (default: the file's content hash).")
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="With --each: queue the good lines of a file that has bad ones.")
    ] = False,
) -> None:
    """Queue a job and print its id (only the id, so scripts can capture it);
    with --each, one job per line of a file."""
    import json

    from taskctl import jobs
    from taskctl.model import dumps, to_json
    from taskctl.times import parse_at, parse_duration

    if each is not None:
        from taskctl.cli.bulk import enqueue_each  # only a bulk enqueue needs it

        if params or wait or priority is not None:
            raise UsageError("--each takes each job's arguments from its file: no ARGS, --wait or --priority")
        enqueue_each(ctx, task, each, as_csv, spread, rate, batch, skip_bad, delay, at)
        return
    if spread or rate or batch or skip_bad or as_csv:
        raise UsageError("--spread, --rate, --batch, --skip-bad and --csv go with --each FILE")
    if delay is not None and at is not None:
        raise UsageError("use --delay or --at, not both")
    if not timeout > 0:  # NaN too
        raise UsageError("--timeout must be a positive number of seconds")
    seconds = parse_duration(delay) if delay is not None else None
    obj = state(ctx)
    eta = parse_at(at, obj.settings.tz) if at is not None else None
    args, kwargs = jobs.parse_call(params or [])
    jobs.check_call(obj.checker.resolve(task), args, kwargs)  # a typo must not leave a new database behind
    info = obj.app.resolve(task)
    job_id = jobs.enqueue(info, args, kwargs, eta=eta, delay=seconds, priority=priority)
    if not wait:
        typer.echo(job_id)
        return
    typer.echo(f"job {job_id} queued, waiting…", err=True)
    # As the record keeps it (what JSON cannot hold, as text), then strict, like every --json.
    typer.echo(dumps(json.loads(to_json(jobs.wait_for(obj.app, obj.record, job_id, timeout))), indent=None))


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=LIMIT_MAX, help="At most this many jobs per section.")] = 20,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="A live view, refreshed in place; Ctrl+C quits.")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.2, max=3600, help="With --watch: seconds between refreshes.")] = 2.0,
) -> None:
    """Show queued, scheduled, running and failed jobs, and the cached results."""
    from taskctl import jobs
    from taskctl.model import dumps
    from taskctl.render import status_view
    from taskctl.times import zone_name

    if watch and as_json:
        raise UsageError("--watch is a live view for people; for scripts, poll `taskctl status --json`")
    obj = state(ctx)
    zone = zone_name(obj.settings.tz)

    out = console()

    def view() -> "RenderableType":  # the width is read each time: a terminal can be resized
        # Read again for each frame of --watch: a consumer may have restarted with other tasks.
        snapshot = jobs.catalog_snapshot(obj.current_catalog(), obj.settings, obj.record, limit)
        return status_view(snapshot, zone, out.width, obj.tz)

    if watch:
        _watch(view, interval, out)
    elif as_json:
        typer.echo(dumps(jobs.catalog_snapshot(obj.catalog, obj.settings, obj.record, limit).to_json(obj.tz)))
    else:
        out.print(view())


def _watch(view: Callable[[], "RenderableType"], interval: float, out: "Console") -> None:
    "Redraw `view` in place every `interval` seconds until Ctrl+C."
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    def frame() -> "RenderableType":
        # On top: a view taller than the terminal is cut at the bottom (with "...").
        stamp = time.strftime("%H:%M:%S")
        return Group(Text(f"taskctl status · {stamp} · every {interval:g}s · Ctrl+C to quit", style="dim"), view())

    try:
        if not out.is_terminal:  # a pipe or a file: one frame after another, as `watch` would
            while True:
                out.print(frame())
                out.file.flush()
                time.sleep(interval)
        with Live(frame(), console=out, auto_refresh=False, vertical_overflow="ellipsis") as live:
            while True:
                time.sleep(interval)
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        pass
