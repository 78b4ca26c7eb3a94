"""Jobs as the CLI asks for them: parse a call, enqueue it, wait for it, take a snapshot.

Engine-neutral: it talks to an app's store and record, never to SQL or Redis.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from taskctl import presence
from taskctl.engines.base import Record
from taskctl.errors import BadSignature, JobFailed, NotPlainData, NotPossible, UnknownTask, UsageError, WaitTimeout
from taskctl.model import Job, Snapshot, State, Upcoming
from taskctl.names import resolve_name

if TYPE_CHECKING:
    from taskctl.app import App, TaskInfo
    from taskctl.catalog import Catalog
    from taskctl.config import Settings
    from taskctl.stats import TaskStats

_KWARG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


MAX_DEPTH = 100  # nesting an argument may have: pickling recurses per level, and Redis's Lua JSON stops at 1000


def parse_value(text: str) -> Any:
    "JSON when it is valid JSON, else the text itself; refuses what JSON or pickle cannot carry."
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except _NonFinite:
        raise UsageError(
            f"argument {_cut(text)!r} holds NaN or Infinity, which JSON cannot hold; "
            "pass a number, or quote the text as a JSON string ('\"NaN\"')"
        ) from None
    except RecursionError:
        value = None  # deeper than json can parse: refused below as too deep
    except ValueError:
        return text
    if (value is None and text.strip() != "null") or _depth(value) > MAX_DEPTH:
        raise UsageError(f"argument {_cut(text)!r} is nested more than {MAX_DEPTH} levels deep; flatten it")
    return value


class _NonFinite(ValueError):
    "NaN, Infinity or -Infinity in an argument."


def _no_constant(name: str) -> Any:
    raise _NonFinite(name)


def _depth(value: Any) -> int:
    "How deeply lists and objects nest in a parsed JSON value (without recursion: it may be deep)."
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list | dict):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                break
            stack += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:39] + "…"


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
    call_checker(info)(args, kwargs)


def call_checker(info: TaskInfo) -> Callable[[list[Any], dict[str, Any]], None]:
    "check_call for many calls of one task: the signature is read once."
    try:
        signature = inspect.signature(info.func)
    except (TypeError, ValueError):
        return lambda args, kwargs: None
    params = [p for p in signature.parameters.values() if p.name != "task" or not info.options.get("context")]
    signature = signature.replace(parameters=params)
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)

    def takes() -> str:
        return ", ".join(_describe(p) for p in params) or "no arguments"

    def check(args: list[Any], kwargs: dict[str, Any]) -> None:
        unknown = [k for k in kwargs if k not in signature.parameters] if not open_kwargs else []
        if unknown:
            raise UsageError(f"{info.name} has no argument {unknown[0]!r}; it takes: {takes()}")
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise UsageError(f"{info.name}: {exc}; it takes: {takes()}") from None

    return check


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


def wait_for(app: App, record: Record, job_id: str, timeout: float) -> Any:
    "Wait for a job to finish; its return value, or JobFailed / WaitTimeout."
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        job = record.job(job_id)
        if job and job.state.final:
            break
        if time.monotonic() >= deadline:
            state = job.state.value if job else "unknown"
            hint = (
                f"see `taskctl show {job_id[:8]}`"
                if state == "running"
                else "is a consumer running? (`taskctl run-consumer`); see `taskctl status`"
            )
            raise WaitTimeout(f"job {job_id} is still {state} after {timeout:g}s; {hint}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)
    if job.state is not State.SUCCEEDED:
        raise JobFailed(f"job {job_id} ({job.task}) {job.state}: {job.error or job.state}")
    # The cached JSON first: Huey's copy is a pickle (read checked, or as plain data only).
    cached = record.result(job.task) if job.task else None
    if cached and cached.job_id == job_id:
        app.huey.delete(job_id)  # Huey's copy is read once, like Result.get()
        return cached.value
    try:
        value = app.store.peek_result(job_id)
    except (NotPlainData, BadSignature) as exc:
        raise NotPossible(f"job {job_id} succeeded, but its result was not loaded: {exc}") from None
    from huey.constants import EmptyData  # huey loads only for a command that waits
    from huey.utils import Error

    if value is not EmptyData and not isinstance(value, Error):
        app.huey.delete(job_id)
        return value
    return None


def snapshot(app: App, record: Record, limit: int, now: float | None = None) -> Snapshot:
    "Everything `status` shows, for the tasks of a built app."
    from taskctl import catalog

    return catalog_snapshot(catalog.of_app(app, origin="disk"), app.settings, record, limit, now)


def catalog_snapshot(
    tasks: Catalog, settings: Settings, record: Record, limit: int, now: float | None = None
) -> Snapshot:
    "Everything `status` shows, read in bounded queries; `tasks` says which tasks exist and their schedules."
    from taskctl import catalog

    now = time.time() if now is None else now
    moment = datetime.fromtimestamp(now, UTC)
    upcoming = [
        Upcoming(entry.name, entry.cron or "", _epoch(catalog.next_run(entry, settings.tz, record, moment)))
        for entry in tasks.periodic()
    ]
    # Periodic tasks are few, and always shown: --limit is for jobs.
    scheduled: list[Job | Upcoming] = [*record.scheduled(limit), *upcoming]
    scheduled.sort(key=lambda job: job.eta if job.eta is not None else float("inf"))
    running = record.running(limit)
    return Snapshot(
        now=now,
        counts=record.counts(),
        queued=record.queued(limit),
        scheduled=scheduled,
        running=running,
        failed=record.failed(limit),
        results=record.results(),
        consumers=presence.survey(record, running, settings.lease, tasks.timeouts(), now),
        overdue=presence.overdue(tasks.timeouts(), running, now),
        catalog=tasks,
    )


def stored_result(record: Record, job: Job) -> tuple[bool, Any]:
    """A succeeded job's whole value while it is its task's cached result (JSON);
    (False, None) otherwise. Huey's own copy is a pickle, and a command that only
    reads never unpickles: anyone who can write the database could run code here."""
    if job.state is not State.SUCCEEDED or not job.task:
        return False, None
    cached = record.result(job.task)
    return (True, cached.value) if cached and cached.job_id == job.id else (False, None)


def task_name(known: Callable[[], list[str]], record: Record, name: str | None) -> str | None:
    """One of the `known` tasks by full name or suffix, or a task that is only in the
    record now; None (no --task) stays None. `known` is called only for a name: commands
    that read pass the catalog's, and load neither Huey nor the task modules."""
    if name is None:
        return None
    names = known()
    try:
        return resolve_name(name, names)
    except UnknownTask:
        if record.has_task(name):
            return name
        # A task with history but not known: gone from the code, or added since the consumer started.
        return resolve_name(name, sorted({*names, *record.tasks_with_history()}))


def stats(record: Record, window: float, task: str | None = None, now: float | None = None) -> list[TaskStats]:
    "`taskctl stats`: per task over the last `window` seconds."
    from taskctl.stats import task_stats

    now = time.time() if now is None else now
    return task_stats(record.finished_since(now - window, task), now - window, now)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None
