"""`taskctl show`, `history`, `stats` and `results`: reading the record, never changing it."""

import time
from typing import Annotated, Any

import typer

from taskctl import completion as complete
from taskctl.cli.state import LIMIT_MAX, TaskOption, finished_state, output, state

AsJson = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]


def show(
    ctx: typer.Context,
    job_id: Annotated[
        str,
        typer.Argument(
            help="A job id, or a unique prefix of one (at least 4 characters).", autocompletion=complete.job_ids
        ),
    ],
    as_json: AsJson = False,
) -> None:
    """Everything about one job: arguments, state, every attempt, the traceback."""
    from taskctl import jobs
    from taskctl.model import State
    from taskctl.render_detail import job_detail
    from taskctl.steering import find_job

    obj = state(ctx)
    record, tz, now = obj.record, obj.tz, time.time()
    job = find_job(record, job_id)
    attempts = record.attempts(job.id)
    result = jobs.stored_result(record, job)

    def document() -> dict[str, Any]:
        shown = job.to_json(tz)
        if job.state is State.RUNNING:
            shown["elapsed"] = job.elapsed(now)
        if result[0]:
            shown["result"] = result[1]
        return {"job": shown, "attempts": [a.to_json(tz) for a in attempts]}

    output(as_json, document, lambda width: job_detail(job, attempts, result, width, tz, now))


def history(
    ctx: typer.Context,
    task: TaskOption = None,
    job_state: Annotated[
        str | None, typer.Option("--state", help="Only jobs that ended so: succeeded, failed, revoked, expired.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only jobs finished in this past window: 2h, 7d.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=LIMIT_MAX, help="At most this many jobs.")] = 20,
    as_json: AsJson = False,
) -> None:
    """Finished jobs, newest first, with their durations."""
    from taskctl import jobs
    from taskctl.render import history_table

    ended = finished_state(job_state)
    window = _window(since, "2h") if since is not None else None
    obj = state(ctx)
    record, tz = obj.record, obj.tz
    name = jobs.task_name(lambda: obj.catalog.names(), record, task)
    found = record.history(limit + 1, name, ended, time.time() - window if window is not None else None)
    shown, more = found[:limit], len(found) > limit
    output(
        as_json,
        lambda: {"jobs": [j.to_json(tz) for j in shown], "more": more},
        lambda width: history_table(shown, more, width, tz),
    )


def _window(since: str, example: str) -> float:
    from taskctl.errors import UsageError
    from taskctl.times import parse_duration

    window = parse_duration(since, "--since")
    if not window > 0:
        raise UsageError(f"--since must be more than 0, like {example}")
    return window


def stats(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="The window: 1h, 24h, 7d.")] = "24h",
    task: TaskOption = None,
    limit: Annotated[int, typer.Option(min=1, max=LIMIT_MAX, help="At most this many tasks.")] = 50,
    as_json: AsJson = False,
) -> None:
    """Per task: runs, failures, p50/p95/max duration, last run, runs over time."""
    from taskctl import jobs
    from taskctl.render import stats_table

    window = _window(since, "24h")
    obj = state(ctx)
    record, tz = obj.record, obj.tz
    name = jobs.task_name(lambda: obj.catalog.names(), record, task)
    rows = jobs.stats(record, window, name)
    output(
        as_json,
        lambda: {"since": since, "window_seconds": window, "tasks": [r.to_json(tz) for r in rows[:limit]]},
        lambda width: stats_table(rows[:limit], since, len(rows) > limit, width, tz),
    )


def results(
    ctx: typer.Context,
    task: Annotated[
        str | None,
        typer.Argument(
            help="Show this task's whole value (full name or unique suffix).", autocompletion=complete.task_names
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=LIMIT_MAX, help="At most this many results.")] = 50,
    as_json: AsJson = False,
) -> None:
    """The cached results: the latest success of each task. Reading deletes nothing."""
    from taskctl import jobs
    from taskctl.errors import TaskctlError
    from taskctl.render import results_table
    from taskctl.render_detail import result_detail

    obj = state(ctx)
    record, tz, now = obj.record, obj.tz, time.time()
    if task is None:
        found = record.results()  # one row per task: few
        output(
            as_json,
            lambda: {"results": [r.to_json(tz, now) for r in found[:limit]], "more": len(found) > limit},
            lambda width: results_table(found[:limit], len(found), width, tz, now),
        )
        return
    name = jobs.task_name(lambda: obj.catalog.names(), record, task)
    result = record.result(name) if name else None  # whole: not the listing's preview
    if result is None:
        raise TaskctlError(
            f"no cached result for {name} yet: it has not succeeded; see `taskctl history --task {task}`"
        )
    # No line breaks added: the value stays valid JSON when copied or piped.
    output(as_json, lambda: result.to_json(tz, now), lambda width: result_detail(result, tz, now), soft_wrap=True)
