"""What every engine provides: the contract between taskctl and the place its record lives.

An engine is two objects. Its *store* is a Huey storage (Huey calls enqueue,
dequeue, read_schedule...) that also owns every state change of a job's record,
each one atomic with the queue change that causes it. Its *record* is the read
side: what `status`, `show`, `history` and a web app's `latest_result` ask,
opened without Huey. Nothing above this layer sees SQL or Redis commands.

The state machine every store makes, each change by the one method named:

    (new)      ──enqueue──────────────> queued     (with an eta too: a worker moves it on, as in Huey;
                                                    a periodic run only if its (task, minute) slot is free)
    (new)      ──add_to_schedule──────> scheduled
    (new)      ──enqueue_new──────────> queued | scheduled (its eta)   (bulk: a job here already is left)
    queued     ──dequeue (the claim)──> running    (an attempt begins: worker, owner, lease)
    running    ──record_success───────> succeeded  (the value cached for its task; Huey's own
                                                    result and revoke flag written with it)
    running    ──record_error, final──> failed     (the message kept, for `taskctl retry`)
    running    ──add_to_schedule──────> retrying   (Huey retries after a delay)
    running    ──enqueue──────────────> queued     (Huey retries at once)
    running    ──unclaim──────────────> scheduled  (not due yet; not an attempt)
                                     | queued     (claimed as the consumer stopped; not an attempt)
    running    ──record_skipped───────> revoked | expired (not an attempt)
    running    ──record_undeliverable─> failed     (UnknownTask, UndeliverableMessage: kept for inspection)
    running    ──requeue_interrupted──> queued     (the consumer stopped mid-run)
    running    ──recover_lost─────────> queued (a retry left, used up) | failed (WorkerLost)
    scheduled, retrying ──read_schedule──> due ──enqueue (Huey, at once)──> queued
    due        ──recover_lost─────────> queued     (its lease ran out)
    queued, scheduled, retrying ──cancel──> revoked
    failed     ──enqueue_retry────────> failed, linked to a new queued job (retried_as, retry_of)

`due` is the moment between the schedule and the queue (Huey enqueues what
read_schedule returns at once); readers show it as queued.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from taskctl.model import Attempt, CachedResult, Job, Run, State

DUE = "due"  # an engine's moment between the schedule and the queue; readers show it as queued

if TYPE_CHECKING:
    from huey.registry import Message


def shown_state(state: str) -> State:
    return State.QUEUED if state == DUE else State(state)


def job_from_fields(row: Mapping[str, Any] | sqlite3.Row) -> Job:
    "A job from its record, a SQLite row or a Redis hash (whose values are text): every field by its column name."
    worker = f"{row['worker_host']}:{row['worker_pid']}/{row['worker_thread']}" if row["worker_host"] else None
    args = _loads(row["args"], [])  # a list, or a string: the preview of a call too long to keep as JSON
    return Job(
        id=row["id"],
        task=row["task"],
        state=shown_state(row["state"]),
        args=tuple(args) if isinstance(args, list) else (),
        kwargs=_loads(row["kwargs"], {}),
        priority=float(row["priority"] or 0),
        eta=_number(row["eta"]),
        enqueued_at=_number(row["enqueued_at"]),
        started_at=_number(row["started_at"]),
        finished_at=_number(row["finished_at"]),
        duration=_number(row["duration"]),
        attempts=int(row["attempts"] or 0),
        worker=worker,
        error_type=row["error_type"],
        error_message=row["error_message"],
        traceback=row["traceback"],
        result_preview=row["result_preview"],
        retry_of=row["retry_of"],
        retried_as=row["retried_as"],
        args_preview=args if isinstance(args, str) else None,
    )


def _number(value: str | float | None) -> float | None:
    return None if value is None else float(value)


def _loads(text: str | None, default: Any) -> Any:
    return default if text is None else json.loads(text)


@dataclass(frozen=True)
class Selection:
    """Rows a purge or the retention policy deletes, said the same way to every engine.

    `kind` is "jobs" (with any of `states`, `task`, a finish window), "results"
    (the cached results of `task`, or of all tasks) or "huey_results" (Huey's
    unread return values of the jobs in the record, of `task` or all)."""

    label: str
    kind: str = "jobs"
    states: frozenset[State] | None = None
    task: str | None = None
    finished_before: float | None = None  # finished_at < this
    finished_from: float | None = None  # finished_at >= this
    finished_until: float | None = None  # finished_at <= this
    rule: str = ""  # for retention: which setting asked for it (keep, keep_failed, max_per_task)


Progress = Callable[[int], None]


class RevokeFlags:
    """What each worker thread's last claim found of its job's revoke flags (`r:<id>`,
    `rt:<task>`), which Huey reads next (is_revoked) before it runs the job: their
    absence, read in the claim, saves that read. A revoke after the claim is one while
    the job runs; a flag found is read again, as in Huey (a restore since then counts)."""

    def __init__(self) -> None:
        self._absent = threading.local()

    def claimed(self, job_id: str | None = None, task: str | None = None, flagged: bool = True) -> None:
        "A claim found this job (none: no job) and whether any of its flags is set."
        keys = None if flagged or job_id is None else {f"r:{job_id}", *([f"rt:{task}"] if task else [])}
        self._absent.keys = keys

    def known_absent(self, keys: list[Any]) -> bool:
        "Are all these keys flags the last claim found absent? Good for one read."
        absent, self._absent.keys = getattr(self._absent, "keys", None), None
        return absent is not None and bool(keys) and absent.issuperset(keys)


def hostname() -> str:
    """The host a worker records, and a lease is checked against: $TASKCTL_HOSTNAME
    when containers share a name, else the machine's."""
    import socket  # ~3 ms to import; `status` asks only to tell this host's consumers from others'

    return os.environ.get("TASKCTL_HOSTNAME") or socket.gethostname()


def pid_alive(pid: int | None) -> bool:
    "Is this process on this host alive? (A process of another user counts as alive.)"
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Slot(threading.local):
    "The periodic slot (task, minute) of the message this thread is enqueueing, if any."

    job_id: str | None = None
    at: float = 0.0  # the minute, epoch seconds

    def minute_for(self, job_id: str) -> float | None:
        "The slot's minute if `job_id` is the periodic run being enqueued, else None."
        return self.at if self.job_id == job_id else None


# Set by the app's Huey around a periodic enqueue; the store claims the slot in the
# same transaction or script as the enqueue, so two consumers never queue one slot twice.
periodic_slot = _Slot()


@dataclass
class HueyWrites:
    """What Huey writes to its own keys as a job ends: its copy of the return value
    (or Error) under the job's id, and the clearing of the job's revoke flag. The
    store makes them in the outcome's own transaction or script: one write where
    Huey makes three, and Huey's result is never there while the record says running."""

    result: bytes | None = None  # serialized, as Huey's put_result gives it
    clear_revoke: str | None = None  # the revoke key Huey deletes


@dataclass(frozen=True)
class Consumer:
    "A consumer, as its heartbeat records it."

    owner: str
    host: str
    pid: int
    started_at: float
    beat_at: float
    queue: str = ""
    version: str = ""  # taskctl's
    workers: int = 0
    worker_type: str = ""
    config: str = ""  # the config file's path
    pids: tuple[int, ...] = ()  # itself and its worker processes: a running job's worker is one of them

    def about(self) -> str:
        "What an engine keeps as one JSON text, beside the fields it queries."
        fields = {"version": self.version, "workers": self.workers, "worker_type": self.worker_type}
        return json.dumps({**fields, "config": self.config, "pids": list(self.pids)})

    @classmethod
    def recorded(
        cls, owner: str, host: str, pid: int, started_at: float, beat_at: float, queue: str, about: str | None
    ) -> Consumer:
        "A consumer from its record; an entry written before `about` existed has none, a later one may have more."
        extra = json.loads(about or "{}")
        return cls(
            owner, host, int(pid), float(started_at), float(beat_at), queue,
            version=str(extra.get("version", "")), workers=int(extra.get("workers", 0)),
            worker_type=str(extra.get("worker_type", "")), config=str(extra.get("config", "")),
            pids=tuple(int(p) for p in extra.get("pids", ())),
        )  # fmt: skip


class Store(Protocol):
    "The write side: a Huey storage whose queue entries are the job record."

    name: str
    owner: str  # marks the jobs this consumer claimed; its heartbeat renews only those
    lease: float

    # Called by Huey's hooks and by taskctl's Huey subclass while a job runs.
    def record_success(self, job_id: str, value: Any, writes: HueyWrites | None = None) -> None: ...
    def record_error(
        self, job_id: str, exc: BaseException, tb: str, final: bool, writes: HueyWrites | None = None
    ) -> None: ...
    def record_skipped(self, job_id: str, state: State) -> None: ...
    def unclaim(self, job_id: str, state: State = State.SCHEDULED) -> None: ...
    def record_undeliverable(self, data: bytes, exc: Exception) -> None: ...
    def requeue_interrupted(self, job_id: str) -> None: ...

    # Called by the consumer's heartbeat.
    def beat(self, me: Consumer, forget_before: float) -> None: ...
    def register_tasks(self, names: list[str]) -> None: ...
    def record_catalog(self, text: str, at: float) -> None: ...
    def leave(self) -> None: ...
    def consumers(self, alive_since: float) -> list[Consumer]: ...
    def renew_leases(self, pids: list[int]) -> int: ...
    def recover_lost(self) -> int: ...
    def is_idle(self) -> bool: ...

    # Called by commands.
    def enqueue_new(self, batch: list[tuple[bytes, Message]]) -> int: ...
    def moved_to(self) -> str | None: ...
    def cancel(self, job_id: str) -> tuple[bool, State | None]: ...
    def enqueue_retry(self, old_id: str, data: bytes) -> bool: ...
    def message(self, job_id: str) -> Message | None: ...
    def peek_result(self, job_id: str) -> Any: ...
    def slot_taken(self, task: str, at: float) -> bool: ...
    def forget_slots(self, before: float) -> int: ...
    def count(self, selection: Selection) -> int: ...
    def delete(self, selection: Selection, progress: Progress | None = None) -> int: ...


class Record(Protocol):
    "The read side; every call is bounded (indexed and LIMITed), and none unpickles."

    def counts(self) -> dict[State, int]: ...
    def queued(self, limit: int) -> list[Job]: ...
    def scheduled(self, limit: int) -> list[Job]: ...
    def running(self, limit: int) -> list[Job]: ...
    def failed(self, limit: int) -> list[Job]: ...
    def job(self, job_id: str) -> Job | None: ...
    def job_ids(self, prefix: str, limit: int) -> list[str]: ...
    def attempts(self, job_id: str) -> list[Attempt]: ...
    def history(
        self, limit: int, task: str | None = None, state: State | None = None, since: float | None = None
    ) -> list[Job]: ...
    def finished_since(self, since: float, task: str | None = None) -> list[Run]: ...
    def last_run(self, task: str) -> Job | None: ...
    def has_task(self, task: str) -> bool: ...
    def tasks_with_history(self) -> list[str]: ...
    def nth_finished(self, task: str, n: int, exclude: frozenset[State]) -> float | None: ...
    def retryable(self, limit: int, task: str | None = None) -> list[Job]: ...
    def results(self, limit: int | None = None) -> list[CachedResult]: ...
    def result(self, task: str) -> CachedResult | None: ...
    def consumers(self) -> list[Consumer]: ...
    def known_tasks(self) -> list[str]: ...
    def catalog(self) -> str | None: ...
    def slot_taken(self, task: str, at: float) -> bool: ...
