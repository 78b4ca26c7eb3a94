"""Jobs as the CLI asks for them: parse a call, enqueue it, wait for it, take a snapshot."""

from __future__ import annotations

import inspect
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from huey.constants import EmptyData
from huey.utils import Error

from taskctl.app import App, TaskInfo
from taskctl.errors import JobFailed, UnknownTask, UsageError, WaitTimeout
from taskctl.registry import JobRegistry
from taskctl.stats import task_stats
from taskctl.storage import FINAL
from taskctl.times import iso

_KWARG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


def parse_value(text: str) -> Any:
    "JSON when it is valid JSON, else the text itself."
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_call(tokens: list[str]) -> tuple[list[Any], dict[str, Any]]:
    "['1', 'name=\"x\"', ...] -> positional args and keyword args, as in a Python call."
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for token in tokens:
        match = _KWARG.match(token)
        if match:
            kwargs[match[1]] = parse_value(match[2])
        elif re.match(r"^[^\s\"'\[{]*=", token):
            raise UsageError(
                f"malformed KEY=VALUE {token!r}: KEY must be a Python identifier "
                "(to pass the text as a positional string, quote it as JSON: '\"...\"')"
            )
        elif kwargs:
            raise UsageError(f"positional argument {token!r} follows KEY=VALUE arguments; put it first")
        else:
            args.append(parse_value(token))
    return args, kwargs


def check_call(info: TaskInfo, args: list[Any], kwargs: dict[str, Any]) -> None:
    "Refuse a call the task function cannot take, before it reaches the queue."
    try:
        signature = inspect.signature(info.proxy.func)
    except (TypeError, ValueError):
        return
    params = [p for p in signature.parameters.values() if p.name != "task" or not info.proxy.options.get("context")]
    signature = signature.replace(parameters=params)
    takes = ", ".join(_describe(p) for p in params) or "no arguments"
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    unknown = [k for k in kwargs if k not in signature.parameters] if not open_kwargs else []
    if unknown:
        raise UsageError(f"{info.name} has no argument {unknown[0]!r}; it takes: {takes}")
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise UsageError(f"{info.name}: {exc}; it takes: {takes}") from None


def _describe(param: inspect.Parameter) -> str:
    prefixes: dict[inspect._ParameterKind, str] = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}
    prefix = prefixes.get(param.kind, "")
    default = "" if param.default is param.empty else f"={param.default!r}"
    return f"{prefix}{param.name}{default}"


def enqueue(
    info: TaskInfo,
    args: list[Any],
    kwargs: dict[str, Any],
    eta: datetime | None = None,
    delay: float | None = None,
    priority: int | None = None,
) -> str:
    "Queue one call of the task; returns the job id."
    check_call(info, args, kwargs)
    if delay:
        eta = datetime.now(UTC) + timedelta(seconds=delay)
    if eta is not None:
        eta = eta.astimezone(UTC).replace(tzinfo=None)  # Huey runs with utc=True
    job = info.wrapper.task_class(tuple(args), kwargs, eta=eta, priority=priority)
    info.wrapper.huey.enqueue(job)
    return job.id


def wait_for(app: App, registry: JobRegistry, job_id: str, timeout: float) -> Any:
    "Wait for a job to finish; its return value, or JobFailed / WaitTimeout."
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        job = registry.job(job_id)
        if job and job["state"] in FINAL:
            break
        if time.monotonic() >= deadline:
            state = job["state"] if job else "unknown"
            hint = (
                f"see `taskctl show {job_id[:8]}`"
                if state == "running"
                else "is a consumer running? (`taskctl run-consumer`); see `taskctl status`"
            )
            raise WaitTimeout(f"job {job_id} is still {state} after {timeout:g}s; {hint}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)
    if job["state"] != "succeeded":
        reason = job["error"] or job["state"]
        raise JobFailed(f"job {job_id} ({job['task']}) {job['state']}: {reason}")
    value = app.storage.peek_result(job_id)
    if value is not EmptyData and not isinstance(value, Error):
        app.huey.delete(job_id)  # read once, like Huey's Result.get()
        return value
    cached = registry.result(job["task"])
    return cached["value"] if cached and cached["job_id"] == job_id else None


def snapshot(app: App, registry: JobRegistry, limit: int, now: float | None = None) -> dict[str, Any]:
    "Everything `status` shows, as plain data (the JSON of `status --json`)."
    now = time.time() if now is None else now
    tz = app.settings.tz
    running = registry.running(limit)
    for job in running:
        started = datetime.fromisoformat(job["started_at"]).timestamp()
        job["elapsed"] = round(now - started, 3)
    scheduled = registry.scheduled(limit)
    moment = datetime.fromtimestamp(now, UTC)
    upcoming = [_periodic_entry(info, app.next_run(info, moment), tz) for info in app.periodic()]
    # Periodic tasks are few, and always shown: --limit is for jobs.
    scheduled = sorted(scheduled + upcoming, key=lambda job: job["eta"] or "")
    return {
        "counts": registry.counts(),
        "queued": registry.queued(limit),
        "scheduled": scheduled,
        "running": running,
        "failed": registry.failed(limit),
        "results": cached_results(registry, None, now),
    }


def cached_results(registry: JobRegistry, limit: int | None = None, now: float | None = None) -> list[dict[str, Any]]:
    "The latest success of each task, with its age in seconds."
    now = time.time() if now is None else now
    results = registry.results(limit)
    for result in results:
        result["age"] = round(now - result.pop("computed_at_epoch"), 3)
    return results


def add_stored_result(app: App, registry: JobRegistry, job: dict[str, Any]) -> None:
    """A succeeded job's whole value, as `result`, while one is kept: the cached
    result if the job is still its task's latest, else Huey's unread copy."""
    if job["state"] != "succeeded":
        return
    cached = registry.result(job["task"]) if job["task"] else None
    if cached and cached["job_id"] == job["id"]:
        job["result"] = cached["value"]
    elif (value := app.storage.peek_result(job["id"])) is not EmptyData and not isinstance(value, Error):
        job["result"] = value  # not an Error: Huey keeps a failed attempt's when the retry returns None


def task_name(app: App, registry: JobRegistry, name: str | None) -> str | None:
    """A registered task by full name or suffix, or a task that is only in the record
    now; None (no --task) stays None, "" is an unknown task."""
    if name is None:
        return None
    try:
        return app.resolve(name).name
    except UnknownTask:
        if registry.has_task(name):
            return name
        raise


def stats(
    app: App, registry: JobRegistry, window: float, task: str | None = None, now: float | None = None
) -> list[dict[str, Any]]:
    "`taskctl stats`: per task over the last `window` seconds."
    now = time.time() if now is None else now
    rows = task_stats(registry.finished_since(now - window, task), now - window, now)
    for row in rows:
        row["last_run"] = iso(row.pop("last_run_epoch"), app.settings.tz)
    return rows


def _periodic_entry(info: TaskInfo, when: datetime | None, tz: Any) -> dict[str, Any]:
    "The next run of a periodic task: not a job yet, so it has no id."
    eta = iso(when.timestamp(), tz) if when else None
    return {
        "id": None,
        "task": info.name,
        "state": "periodic",
        "schedule": info.cron,
        "args": [],
        "kwargs": {},
        "priority": None,
        "eta": eta,
        "enqueued_at": None,
        "started_at": None,
        "finished_at": None,
        "duration": None,
        "attempts": 0,
        "worker": None,
        "error": None,
        "error_type": None,
        "traceback": None,
        "result_preview": None,
        "retry_of": None,
        "retried_as": None,
    }
