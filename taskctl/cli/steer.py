"""`taskctl cancel`, `retry` and `purge`: changing what is queued and what is kept."""

import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from taskctl import completion as complete
from taskctl.cli.state import LIMIT_MAX, TaskOption, finished_state, state
from taskctl.errors import TaskctlError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from taskctl import steering
    from taskctl.engines.base import Selection, Store

JobIds = Annotated[
    list[str],
    typer.Argument(help="Job ids, or unique prefixes of them.", show_default=False, autocompletion=complete.job_ids),
]
PROGRESS_FROM = 5_000  # rows: below this a purge is over before a bar would show


def cancel(ctx: typer.Context, job_ids: JobIds) -> None:
    """Revoke queued or scheduled jobs; they show as revoked. A running job cannot be stopped."""
    from taskctl import steering

    obj = state(ctx)
    _report([partial(steering.cancel, obj.writer, obj.record, i) for i in job_ids])


def retry(
    ctx: typer.Context,
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Failed job ids, or unique prefixes.", autocompletion=complete.job_ids),
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed job not retried yet.")] = False,
    task: TaskOption = None,
    limit: Annotated[int, typer.Option(min=1, max=LIMIT_MAX, help="With --failed: at most this many jobs.")] = 1000,
) -> None:
    """Queue failed (or lost) jobs again with their original arguments, as new jobs linked to them."""
    from taskctl import jobs, steering

    if job_ids and failed:
        raise UsageError("give failed job ids, or --failed, not both")
    if not job_ids and not failed:
        raise UsageError("give the ids of failed jobs, or --failed for all of them (with --task for one task)")
    if task is not None and not failed:
        raise UsageError("--task goes with --failed")
    obj = state(ctx)
    app, record = obj.writer, obj.record
    if job_ids:
        _report([partial(steering.retry, app, record, i) for i in job_ids])
        return
    name = jobs.task_name(lambda: list(app.tasks), record, task)
    todo = record.retryable(limit, name)
    if not todo:
        typer.echo("No failed jobs to retry" + (f" for {name}" if name else ""), err=True)
        return
    _report([partial(steering.retry_job, app, record, job) for job in todo])


def _report(actions: list[Callable[[], "steering.Outcome"]]) -> None:
    "Act on each job; one line each (done on stdout, refused on stderr); exit 1 if any was refused."
    code = 0
    for action in actions:
        try:
            outcome = action()
        except TaskctlError as exc:
            typer.echo(f"Error: {exc}", err=True)
            code = max(code, exc.exit_code)
            continue
        if outcome.done:
            typer.echo(outcome.message)
        else:
            typer.echo(f"Error: {outcome.message}", err=True)
            code = max(code, 1)
    if code:
        raise typer.Exit(code)


def purge(
    ctx: typer.Context,
    queued: Annotated[bool, typer.Option("--queued", help="Jobs waiting in the queue.")] = False,
    scheduled: Annotated[
        bool, typer.Option("--scheduled", help="Jobs scheduled for later, or waiting to retry.")
    ] = False,
    results: Annotated[bool, typer.Option("--results", help="Cached results, and unread Huey results.")] = False,
    history: Annotated[bool, typer.Option("--history", help="Finished jobs (all, or --older-than).")] = False,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="With --history: finished longer ago than this: 7d, 12h.")
    ] = None,
    task: TaskOption = None,
    job_state: Annotated[str | None, typer.Option("--state", help="With --history: only jobs that ended so.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete queued jobs, results or old history. With no option, apply [retention] now
    (what the built-in prune job does on its schedule). Asks first, unless --yes."""
    from rich.console import Console

    from taskctl import jobs, retention
    from taskctl.model import State
    from taskctl.times import parse_duration

    if (older_than or job_state) and not history:
        raise UsageError("--older-than and --state go with --history")
    ended = finished_state(job_state)
    age = parse_duration(older_than, "--older-than", unit_required=True) if older_than is not None else 0.0
    obj = state(ctx)
    store = obj.writer.store
    name = jobs.task_name(lambda: list(obj.writer.tasks), obj.record, task)
    selections: list[Selection] = []
    if queued:
        selections.append(retention.waiting(frozenset({State.QUEUED}), name))
    if scheduled:
        selections.append(retention.waiting(frozenset({State.SCHEDULED, State.RETRYING}), name))
    if results:
        selections += retention.results(name)
    if history:
        label = f"finished jobs older than {older_than}" if older_than else ""
        selections.append(retention.history(time.time() - age, name, ended, label))
    by_policy = not selections
    if by_policy:
        if name:
            raise UsageError("--task goes with --queued, --scheduled, --results or --history")
        selections = retention.policy(obj.record, obj.settings.retention)
    counted = [(s, store.count(s)) for s in selections]
    counted = [(s, n) for s, n in counted if n]
    total = sum(n for _, n in counted)
    if not total:
        why = f" past [retention] ({retention.describe(obj.settings.retention)})" if by_policy else ""
        typer.echo(f"Nothing to purge{why}.", err=True)
        return
    err = Console(stderr=True, highlight=False)
    for selection, n in counted:
        err.print(f"{n:>10,}  {selection.label}", markup=False)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"purge would delete {_rows(total)}; pass --yes to confirm (no terminal to ask on)")
        if not typer.confirm(f"Delete {_rows(total)}?", default=False, err=True):
            raise typer.Abort()
    deleted = _run(store, counted, total, err)
    typer.echo(f"Deleted {_rows(deleted)}.")


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _run(store: "Store", counted: list[tuple["Selection", int]], total: int, err: "Console") -> int:
    "Delete, with a progress bar on stderr when the work is large and someone is watching."
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if total < PROGRESS_FROM or not err.is_terminal:
        return sum(store.delete(selection) for selection, _ in counted)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        bar = progress.add_task("Deleting", total=total)
        return sum(store.delete(selection, lambda n: progress.advance(bar, n)) for selection, _ in counted)
