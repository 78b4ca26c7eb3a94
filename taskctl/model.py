"""What a job is, whichever engine keeps it: states, jobs, attempts, results, and their JSON.

Engines build these from their rows or hashes; the CLI formats them at its
edge (tables in render.py, JSON with `dumps`). Times are epoch seconds (floats)
inside, and ISO 8601 with an offset, to the microsecond, outside.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from taskctl.presence import ConsumerStatus

PREVIEW_CHARS = 200
ARGS_CHARS = 10_000  # a call's arguments kept as JSON in the record; past this, a preview
LISTED_CHARS = 10_000  # a cached value in a listing (status, results); past this, a preview


class State(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"  # waiting for its eta
    RETRYING = "retrying"  # an attempt failed; the retry waits for its delay
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REVOKED = "revoked"  # cancelled, or revoked through Huey
    EXPIRED = "expired"  # taken from the queue after its `expires`, never run

    @property
    def waiting(self) -> bool:
        return self in WAITING

    @property
    def final(self) -> bool:
        return self in FINAL


WAITING = frozenset({State.QUEUED, State.SCHEDULED, State.RETRYING})
FINAL = frozenset({State.SUCCEEDED, State.FAILED, State.REVOKED, State.EXPIRED})
RAN = frozenset({State.SUCCEEDED, State.FAILED})  # revoked and expired jobs never ran
# The order counts are shown in.
STATES = tuple(State)


class Outcome(StrEnum):
    "How one attempt ended."

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"  # its worker died; recovered by lease or by a dead pid
    INTERRUPTED = "interrupted"  # the consumer was stopped mid-run; the job went back to the queue


def error_text(kind: str | None, message: str | None) -> str | None:
    "`Type: message`, as tables and `error` in JSON show an error."
    if not kind:
        return None
    return f"{kind}: {message}" if message else kind


@dataclass(frozen=True)
class Job:
    id: str
    task: str | None
    state: State
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    priority: float = 0
    eta: float | None = None
    enqueued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    attempts: int = 0  # how many runs began
    worker: str | None = None  # host:pid/thread
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    result_preview: str | None = None  # the value as JSON, cut at PREVIEW_CHARS
    retry_of: str | None = None
    retried_as: str | None = None
    # Set when the record keeps only a preview of the call (args and kwargs past
    # ARGS_CHARS as JSON); the job's message keeps them whole while it runs or waits.
    args_preview: str | None = None

    @property
    def error(self) -> str | None:
        return error_text(self.error_type, self.error_message)

    def elapsed(self, now: float) -> float | None:
        "How long a running job has been running."
        return round(now - self.started_at, 6) if self.state is State.RUNNING and self.started_at else None

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        "The job object of every `--json` document."
        return {
            "id": self.id,
            "task": self.task,
            "state": self.state.value,
            "args": None if self.args_preview else list(self.args),
            "kwargs": None if self.args_preview else dict(self.kwargs or {}),
            "args_preview": self.args_preview,
            "priority": _number(self.priority),
            "eta": iso(self.eta, tz),
            "enqueued_at": iso(self.enqueued_at, tz),
            "started_at": iso(self.started_at, tz),
            "finished_at": iso(self.finished_at, tz),
            "duration": _micro(self.duration),
            "attempts": self.attempts,
            "worker": self.worker,
            "error": self.error,
            "error_type": self.error_type,
            "traceback": self.traceback,
            "result_preview": self.result_preview,
            "retry_of": self.retry_of,
            "retried_as": self.retried_as,
        }


class Run(NamedTuple):
    "A finished job as `stats` counts it: a tuple, since a day can hold a hundred thousand."

    task: str | None
    state: State
    finished_at: float
    duration: float | None


@dataclass(frozen=True)
class Attempt:
    job_id: str
    attempt: int  # 1, 2, ...
    started_at: float
    finished_at: float | None = None
    duration: float | None = None
    worker: str | None = None
    outcome: Outcome = Outcome.RUNNING
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None

    @property
    def error(self) -> str | None:
        return error_text(self.error_type, self.error_message)

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "started_at": iso(self.started_at, tz),
            "finished_at": iso(self.finished_at, tz),
            "duration": _micro(self.duration),
            "worker": self.worker,
            "outcome": self.outcome.value,
            "error": self.error,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "traceback": self.traceback,
        }


@dataclass(frozen=True)
class CachedResult:
    "The latest success of a task: its whole value (as JSON keeps it) and when it was computed."

    task: str
    job_id: str
    value: Any
    computed_at: float
    duration: float | None = None
    value_preview: str | None = None  # in a listing, for a value past LISTED_CHARS (value is then None)

    def age(self, now: float) -> float:
        return round(now - self.computed_at, 6)

    def to_json(self, tz: tzinfo | None = None, now: float | None = None) -> dict[str, Any]:
        document = {
            "task": self.task,
            "job_id": self.job_id,
            "value": self.value,
            "value_preview": self.value_preview,
            "computed_at": iso(self.computed_at, tz),
            "duration": _micro(self.duration),
        }
        if now is not None:
            document["age"] = self.age(now)
        return document


@dataclass(frozen=True)
class Upcoming:
    "The next run of a periodic task: not a job yet, so it has no id."

    task: str
    schedule: str
    eta: float | None

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        blank = Job("", self.task, State.SCHEDULED).to_json(tz)
        return {**blank, "id": None, "state": "periodic", "schedule": self.schedule, "eta": iso(self.eta, tz),
                "priority": None}  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    "Everything `status` shows."

    now: float
    counts: dict[State, int]
    queued: list[Job]
    scheduled: list[Job | Upcoming]
    running: list[Job]
    failed: list[Job]
    results: list[CachedResult] = field(default_factory=list)
    consumers: list[ConsumerStatus] = field(default_factory=list)  # live and dead (see presence.py)
    overdue: frozenset[str] = frozenset()  # running jobs past their task's timeout

    @property
    def live_consumers(self) -> list[ConsumerStatus]:
        return [c for c in self.consumers if c.alive]

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        "The document of `status --json`."
        return {
            "counts": {state.value: self.counts.get(state, 0) for state in STATES},
            "consumers": [c.to_json(tz, self.now) for c in self.live_consumers],
            "queued": [job.to_json(tz) for job in self.queued],
            "scheduled": [job.to_json(tz) for job in self.scheduled],
            "running": [
                {**job.to_json(tz), "elapsed": job.elapsed(self.now), "overdue": job.id in self.overdue}
                for job in self.running
            ],
            "failed": [job.to_json(tz) for job in self.failed],
            "results": [result.to_json(tz, self.now) for result in self.results],
        }


@dataclass(frozen=True)
class TaskSummary:
    "A registered task as `taskctl tasks` lists it."

    name: str
    kind: str  # periodic or on-demand
    schedule: str | None
    schedule_source: str | None  # config or code
    next_run: float | None
    retries: int
    timeout: float | None
    last_run: Job | None
    catch_up: dict[str, Any] | None = None  # a periodic task's: {"mode": "once" | "skip", "within": seconds}
    missed: float | None = None  # the slot it missed, which the next consumer to start runs

    @property
    def caught_up(self) -> bool:
        "Was its last run a missed slot caught up? Such a run is due at its slot, queued later."
        last = self.last_run
        return bool(last and last.eta is not None and last.enqueued_at and last.eta < last.enqueued_at)

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "schedule": self.schedule,
            "schedule_source": self.schedule_source,
            "next_run": iso(self.next_run, tz),
            "retries": self.retries,
            "timeout": self.timeout,
            "last_run": self.last_run.to_json(tz) if self.last_run else None,
            "catch_up": self.catch_up,
            "missed": iso(self.missed, tz),
            "caught_up": self.caught_up,
        }


def iso(epoch: float | None, tz: tzinfo | None = None) -> str | None:
    "ISO 8601 with offset, in `tz` (None: local time), to the microsecond."
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz).isoformat(timespec="microseconds")


def to_json(value: Any) -> str:
    "Compact JSON for anything a task takes or returns; what JSON cannot hold becomes a string."
    try:
        return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError, RecursionError):  # circular, or keys JSON cannot hold
        return json.dumps(repr(value), ensure_ascii=False)


def call_json(args: list[Any], kwargs: dict[str, Any]) -> tuple[str, str]:
    """A call's args and kwargs as the record keeps them: JSON; or, past ARGS_CHARS,
    the preview of both as one JSON string in place of args (and kwargs {}), so a
    10 MB argument is stored once, in the message, not twice."""
    args_text, kwargs_text = to_json(args), to_json(kwargs)
    if len(args_text) + len(kwargs_text) <= ARGS_CHARS:
        return args_text, kwargs_text
    return json.dumps(cut_preview(f"{args_text} {kwargs_text}" if kwargs else args_text), ensure_ascii=False), "{}"


def cut_preview(text: str, length: int | None = None) -> str:
    "The start of a long JSON text, marked as cut, with its whole length (`text` may be its start only)."
    return f"{text[: PREVIEW_CHARS - 1]}… (cut: {len(text) if length is None else length:,} characters)"


def listed(result: CachedResult) -> CachedResult:
    "A cached result as a listing shows it: a value past LISTED_CHARS as JSON becomes its preview."
    text = to_json(result.value)
    if len(text) <= LISTED_CHARS:
        return result
    return CachedResult(result.task, result.job_id, None, result.computed_at, result.duration, cut_preview(text))


def preview(value: Any) -> str:
    "The value as JSON, cut at PREVIEW_CHARS."
    text = to_json(value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def dumps(document: Any) -> str:
    "The one JSON encoder of taskctl's output: indented, UTF-8 as is, model types by value."
    return json.dumps(document, indent=2, ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    return str(value)


def _micro(seconds: float | None) -> float | None:
    "Durations to the microsecond, as times are: both engines then say the same."
    return None if seconds is None else round(seconds, 6)


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value
