"""What a job is, whichever engine keeps it: states, jobs, attempts, results, and their JSON.

Engines build these from their rows or hashes; the CLI formats them at its
edge (tables in render.py, JSON with `dumps`). Times are epoch seconds (floats)
inside, and ISO 8601 with an offset, to the microsecond, outside.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, tzinfo
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from taskctl.catalog import Catalog
    from taskctl.presence import ConsumerStatus

from taskctl.escape import json_escaped

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


# How Python's traceback joins the exceptions of a chain, innermost first.
_CHAINED = re.compile(
    r"\n\n(?:The above exception was the direct cause of the following exception|"
    r"During handling of the above exception, another exception occurred):\n\n"
)


class Cause(NamedTuple):
    "The innermost exception of a chain: what usually says what to fix."

    type: str
    message: str | None

    @property
    def text(self) -> str:
        return error_text(self.type, self.message) or self.type


def innermost_cause(error_type: str | None, traceback: str | None) -> Cause | None:
    """The first exception of the chain the traceback prints, when it is a chain that
    ends in `error_type` (a record can keep the traceback of an earlier error)."""
    if not error_type or not traceback:
        return None
    blocks = _CHAINED.split(traceback.rstrip("\n"))
    if len(blocks) < 2:
        return None
    last, first = _exception_line(blocks[-1]), _exception_line(blocks[0])
    if last is None or first is None or last[0].rpartition(".")[2] != error_type:
        return None
    return Cause(first[0].rpartition(".")[2], first[1])


def _exception_line(block: str) -> tuple[str, str | None] | None:
    "The type and message of one block: the lines after its header and indented frames."
    lines = block.split("\n")
    if lines and lines[0].startswith("Traceback (most recent call last):"):
        lines = lines[1:]
    for index, line in enumerate(lines):
        if line and not line.startswith(" "):
            kind, colon, message = line.partition(": ")
            rest = "\n".join([message, *lines[index + 1 :]]).strip() if colon else None
            return (kind.rstrip(":"), rest or None) if kind.isprintable() and " " not in kind else None
    return None


class _Failed:
    "A job's or an attempt's error as shown: its text, and the innermost cause of a chained one."

    error_type: str | None
    error_message: str | None
    traceback: str | None

    @property
    def error(self) -> str | None:
        return error_text(self.error_type, self.error_message)

    @property
    def cause(self) -> Cause | None:
        return innermost_cause(self.error_type, self.traceback)


@dataclass(frozen=True)
class Job(_Failed):
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
            **_cause_json(self.cause),
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
class Attempt(_Failed):
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
            **_cause_json(self.cause),
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
    catalog: Catalog | None = None  # where the tasks shown came from (the consumer's record, or the disk)

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
            "catalog": self.catalog.to_json(tz) if self.catalog else None,
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


NO_JSON_FORM = "(no JSON form)"  # marks a value shown by its text: the record cannot hold it as it is


def to_json(value: Any) -> str:
    """Compact JSON for anything a task takes or returns. Times, dates, decimals and UUIDs
    are their text, as JSON conventionally has them; anything else JSON cannot hold
    becomes its text marked NO_JSON_FORM, so no one takes the string for the value."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError):  # circular, or keys JSON cannot hold
        return json.dumps(f"{NO_JSON_FORM} {value!r}", ensure_ascii=False)


def _json_default(value: Any) -> str:
    # Imported here, for values JSON cannot hold alone: ~8 ms that `status` never needs.
    from decimal import Decimal
    from uuid import UUID

    if isinstance(value, datetime | date | time | Decimal | UUID):
        return str(value)
    return f"{NO_JSON_FORM} {type(value).__name__}: {value}"


# Built once: json.dumps with options builds an encoder at every call, half of what
# a job's args cost at enqueue. An encoder keeps no state between calls.
_ENCODER = json.JSONEncoder(default=_json_default, ensure_ascii=False, separators=(", ", ": "))


def call_json(args: list[Any], kwargs: dict[str, Any]) -> tuple[str, str]:
    """A call's args and kwargs as the record keeps them: JSON; or, past ARGS_CHARS,
    the preview of both as one JSON string in place of args (and kwargs {}), so a
    10 MB argument is stored once, in the message, not twice."""
    args_text, kwargs_text = to_json(args), to_json(kwargs) if kwargs else "{}"
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


def preview(value: Any, text: str | None = None) -> str:
    "The value as JSON (`text`, when encoded already), cut at PREVIEW_CHARS."
    text = to_json(value) if text is None else text
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def dumps(document: Any, indent: int | None = 2) -> str:
    """The one JSON encoder of taskctl's output: indented, UTF-8 as is (but for the controls
    a terminal acts on), model types by value. Strict parsers accept it: a NaN or an infinity
    (which a task may return) is written as the string "NaN", "Infinity" or "-Infinity"."""
    try:
        text = json.dumps(document, indent=indent, ensure_ascii=False, default=_default, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(document), indent=indent, ensure_ascii=False, default=_default, allow_nan=False)
    return json_escaped(text)


def _finite(value: Any) -> Any:
    "The document with its non-finite floats as strings (model types turned into plain values first)."
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_finite(item) for item in value]
    if isinstance(value, Enum) or hasattr(value, "to_json"):
        return _finite(_default(value))
    return value


def _default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    return str(value)


def _cause_json(cause: Cause | None) -> dict[str, str | None]:
    "`cause` (`Type: message` of the innermost exception of a chain) and `cause_type`; null when not chained."
    return {"cause": cause.text if cause else None, "cause_type": cause.type if cause else None}


def _micro(seconds: float | None) -> float | None:
    "Durations to the microsecond, as times are: both engines then say the same."
    return None if seconds is None else round(seconds, 6)


def _number(value: float) -> float | int:
    return int(value) if value == int(value) else value
