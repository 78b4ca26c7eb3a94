"""Huey's SQLite storage, with the queue and the schedule kept in taskctl's job table.

Huey deletes a message the moment a worker takes it. Here a job's row *is* its
queue entry: enqueue inserts it, dequeue claims it (running, which worker, a
lease), the outcome clears the message and records what happened. Each of
those is one SQLite transaction, so the record and the queue cannot disagree.

The queue's writes live here; recovery.py puts lost jobs right, retention.py
deletes old rows, and registry.py is the read side.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from huey.constants import EmptyData
from huey.registry import Message
from huey.serializer import Serializer
from huey.storage import SqliteStorage

from taskctl.migrations import migrate
from taskctl.recovery import end_attempt
from taskctl.times import to_epoch

PREVIEW_CHARS = 200
FINAL = ("succeeded", "failed", "revoked", "expired")
WAITING = ("queued", "scheduled", "retrying")
# A job still running under this thread's claim: an outcome arriving after the
# job was recovered (and maybe claimed by another worker) must not overwrite it.
_MINE = "state = 'running' AND worker_host = ? AND worker_pid = ? AND worker_thread = ?"

_UPSERT = """
INSERT INTO taskctl_jobs
    (id, queue, task, args, kwargs, state, priority, eta, seq, data, retries, enqueued_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    -- A running job sent back to the schedule is a retry waiting for its delay.
    state = CASE WHEN excluded.state = 'scheduled' AND state = 'running'
                 THEN 'retrying' ELSE excluded.state END,
    priority = excluded.priority, eta = excluded.eta, seq = excluded.seq,
    data = excluded.data, retries = excluded.retries, lease_until = NULL, finished_at = NULL
"""


@dataclass(frozen=True)
class Worker:
    host: str
    pid: int
    thread: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}/{self.thread}"

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.host, self.pid, self.thread)

    @classmethod
    def current(cls) -> Worker:
        return cls(socket.gethostname(), os.getpid(), threading.current_thread().name)


def to_json(value: Any) -> str:
    "JSON for anything a task takes or returns; what JSON cannot hold becomes a string."
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # circular, or keys JSON cannot hold
        return json.dumps(repr(value), ensure_ascii=False)


def preview(value: Any) -> str:
    text = to_json(value)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class JobStorage(SqliteStorage):
    """SqliteStorage whose queue and schedule are rows of `taskctl_jobs`."""

    def __init__(
        self,
        name: str = "huey",
        filename: str = "huey.db",
        serializer: Serializer | None = None,
        synchronous: str = "normal",
        lease: float = 60.0,
        **kwargs: Any,
    ) -> None:
        self.serializer = serializer or Serializer()
        self.synchronous = synchronous
        self.lease = lease
        self._last_seq = 0
        self._seq_lock = threading.Lock()
        self._inherited: list[sqlite3.Connection] = []
        # Marks the rows this consumer claimed (its forked workers share it), so
        # its heartbeat renews only their leases.
        self.owner = uuid.uuid4().hex
        super().__init__(name, filename, **kwargs)
        _fork_safety(self)

    def _create_connection(self) -> sqlite3.Connection:
        conn = super()._create_connection()
        # Huey leaves SQLite at FULL; in WAL mode NORMAL is still crash-safe
        # (only the last commits can be lost on power failure) and 3-5x faster.
        conn.execute(f"pragma synchronous={self.synchronous}")
        return conn

    def initialize_schema(self) -> None:
        super().initialize_schema()
        with self.lock:
            migrate(self.conn)

    # -- what Huey calls ------------------------------------------------

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        message = self._message(data)
        eta = to_epoch(message.eta) if message and message.eta else None
        state = "scheduled" if eta and eta > time.time() else "queued"
        self._upsert(data, message, state, priority, eta)

    def add_to_schedule(self, data: bytes, ts: datetime) -> None:
        message = self._message(data)
        priority = message.priority if message else None
        self._upsert(data, message, "scheduled", priority, to_epoch(ts))

    def dequeue(self) -> bytes | None:
        # A cheap read first, so idle workers do not take the write lock.
        if not self.sql(
            "SELECT 1 FROM taskctl_jobs WHERE queue = ? AND state = 'queued' LIMIT 1",
            (self.name,),
            results=True,
        ):
            return None
        worker = Worker.current()
        with self.db(commit=True) as curs:
            now = time.time()  # after the lock: the lease starts when the claim does
            row = curs.execute(
                "SELECT id, data FROM taskctl_jobs WHERE queue = ? AND state = 'queued' "
                "ORDER BY priority DESC, seq LIMIT 1",
                (self.name,),
            ).fetchone()
            if row is None:
                return None
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'running', started_at = ?, "
                "finished_at = NULL, attempts = attempts + 1, worker_host = ?, "
                "worker_pid = ?, worker_thread = ?, owner = ?, lease_until = ? WHERE id = ?",
                (now, worker.host, worker.pid, worker.thread, self.owner, now + self.lease, row[0]),
            )
            curs.execute(
                "INSERT OR REPLACE INTO taskctl_attempts (job_id, attempt, started_at, worker, outcome) "
                "SELECT id, attempts, started_at, ?, 'running' FROM taskctl_jobs WHERE id = ?",
                (str(worker), row[0]),
            )
            return row[1]

    def queue_size(self) -> int:
        return self._count("state = 'queued'")

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        return self._data("state = 'queued'", "priority DESC, seq", limit)

    def flush_queue(self) -> None:
        self._delete("state = 'queued'")

    def read_schedule(self, ts: datetime) -> list[bytes]:
        # Due jobs move to 'due' rather than vanish: Huey enqueues them right
        # after this call, and a lease brings them back if it never does.
        now = time.time()
        with self.db(commit=True) as curs:
            rows = curs.execute(
                "SELECT id, data FROM taskctl_jobs WHERE queue = ? "
                "AND state IN ('scheduled', 'retrying') AND eta <= ? ORDER BY eta, seq",
                (self.name, to_epoch(ts)),
            ).fetchall()
            for chunk in _chunks([r[0] for r in rows], 500):
                curs.execute(
                    "UPDATE taskctl_jobs SET state = 'due', lease_until = ? "
                    f"WHERE id IN ({','.join('?' * len(chunk))})",
                    (now + self.lease, *chunk),
                )
        return [data for _, data in rows]

    def schedule_size(self) -> int:
        return self._count("state IN ('scheduled', 'retrying')")

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        return self._data("state IN ('scheduled', 'retrying')", "eta, seq", limit)

    def flush_schedule(self) -> None:
        self._delete("state IN ('scheduled', 'retrying', 'due')")

    # -- what the tracking hooks call -----------------------------------

    def record_success(self, job_id: str, value: Any) -> None:
        "The job succeeded: clear its message, keep a preview, cache the whole value."
        now = time.time()
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'succeeded', data = NULL, lease_until = NULL, "
                "finished_at = ?, duration = ? - started_at, result_preview = ?, "
                "error_type = NULL, error_message = NULL, traceback = NULL "
                f"WHERE id = ? AND {_MINE}",
                (now, now, preview(value), job_id, *Worker.current().key),
            )
            if not curs.rowcount:  # recovered as lost meanwhile: that record stands
                return
            curs.execute(
                "INSERT OR REPLACE INTO taskctl_results "
                "(queue, task, job_id, value, computed_at, duration) "
                "SELECT queue, task, id, ?, finished_at, duration FROM taskctl_jobs "
                "WHERE id = ? AND task IS NOT NULL",
                (to_json(value), job_id),
            )
            end_attempt(curs, job_id, "succeeded", now)

    def record_error(self, job_id: str, exc: BaseException, tb: str, final: bool) -> None:
        """An attempt raised. A final failure keeps the message, for `taskctl retry`;
        a retry keeps the job where Huey puts it."""
        now = time.time()
        error = (type(exc).__name__, str(exc), tb)
        mine = Worker.current().key
        with self.db(commit=True) as curs:
            if final:
                curs.execute(
                    "UPDATE taskctl_jobs SET state = 'failed', lease_until = NULL, "
                    "finished_at = ?, duration = ? - started_at, error_type = ?, "
                    f"error_message = ?, traceback = ? WHERE id = ? AND {_MINE}",
                    (now, now, *error, job_id, *mine),
                )
            else:
                curs.execute(
                    "UPDATE taskctl_jobs SET duration = ? - started_at, error_type = ?, "
                    f"error_message = ?, traceback = ? WHERE id = ? AND {_MINE}",
                    (now, *error, job_id, *mine),
                )
            if curs.rowcount:
                end_attempt(curs, job_id, "failed", now, error)

    def record_skipped(self, job_id: str, state: str) -> None:
        "Revoked or expired: taken from the queue but never run, so not an attempt."
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET state = ?, data = NULL, lease_until = NULL, "
                "finished_at = ?, attempts = max(attempts - 1, 0) WHERE id = ?",
                (state, time.time(), job_id),
            )
            curs.execute("DELETE FROM taskctl_attempts WHERE job_id = ? AND outcome = 'running'", (job_id,))

    def unclaim(self, job_id: str) -> None:
        "This worker's claim is given back unrun (Huey found the job not due yet): not an attempt."
        worker = Worker.current()
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'queued', attempts = max(attempts - 1, 0), started_at = NULL, "
                "worker_host = NULL, worker_pid = NULL, worker_thread = NULL, owner = NULL, lease_until = NULL "
                f"WHERE id = ? AND {_MINE}",
                (job_id, *worker.key),
            )
            if curs.rowcount:
                curs.execute("DELETE FROM taskctl_attempts WHERE job_id = ? AND outcome = 'running'", (job_id,))

    def record_undeliverable(self, data: bytes, exc: Exception) -> None:
        "A claimed message this consumer cannot run (its task is not registered here)."
        message = self._message(data)
        if message is None:
            return
        error = f"{message.name} is not a task of this consumer ({exc}); check [taskctl] modules"
        now = time.time()
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'failed', lease_until = NULL, finished_at = ?, "
                "error_type = 'UnknownTask', error_message = ? WHERE id = ?",
                (now, error, message.id),
            )
            end_attempt(curs, message.id, "failed", now, ("UnknownTask", error, None))

    def requeue_interrupted(self, job_id: str) -> None:
        "The consumer stopped mid-run: the job goes back to the queue to run again."
        error = ("Interrupted", "the consumer stopped during this attempt", None)
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'queued', lease_until = NULL, error_type = ?, "
                "error_message = ? WHERE id = ? AND state = 'running' AND data IS NOT NULL AND owner = ?",
                (*error[:2], job_id, self.owner),
            )
            if curs.rowcount:
                end_attempt(curs, job_id, "interrupted", time.time(), error)

    # -- what `taskctl cancel` and `taskctl retry` call --------------------

    def cancel(self, job_id: str) -> str | None:
        """Revoke a job still waiting to run, in the one transaction that takes it
        out of the queue, so no worker can claim it afterwards. Returns the state it
        was in (a job in any other state is left alone), None if there is no such job."""
        with self.db(commit=True) as curs:
            row = curs.execute("SELECT state FROM taskctl_jobs WHERE id = ?", (job_id,)).fetchone()
            if row and row[0] in WAITING:
                curs.execute(
                    "UPDATE taskctl_jobs SET state = 'revoked', data = NULL, lease_until = NULL, "
                    "finished_at = ?, error_type = 'Cancelled', error_message = 'by taskctl cancel' "
                    "WHERE id = ?",
                    (time.time(), job_id),
                )
        return row[0] if row else None

    def enqueue_retry(self, old_id: str, data: bytes) -> bool:
        """Queue `data`, a new job, as the retry of the failed job `old_id`, and link
        the two. False, and nothing queued, if `old_id` is not failed or was retried
        already (by a concurrent `retry`, say) by a job that still exists."""
        message = self._message(data)
        if message is None:
            raise ValueError("not a Huey message")
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET retried_as = ? WHERE id = ? AND state = 'failed' AND (retried_as IS NULL "
                "OR NOT EXISTS (SELECT 1 FROM taskctl_jobs r WHERE r.id = taskctl_jobs.retried_as))",
                (message.id, old_id),
            )
            if not curs.rowcount:
                return False
            curs.execute(_UPSERT, self._row(data, message, "queued", message.priority, None))
            curs.execute("UPDATE taskctl_jobs SET retry_of = ? WHERE id = ?", (old_id, message.id))
        return True

    def message(self, job_id: str) -> Message | None:
        "The job's Huey message while it is kept (queued, scheduled, running, failed)."
        rows = self.sql("SELECT data FROM taskctl_jobs WHERE id = ?", (job_id,), results=True)
        return self._message(rows[0][0]) if rows and rows[0][0] is not None else None

    def is_idle(self) -> bool:
        """Nothing queued, running, waiting for a retry, or due now (for `--burst`).
        Jobs delayed to a later time do not count: they are not work for this run."""
        return not self.sql(
            "SELECT 1 FROM taskctl_jobs WHERE queue = ?1 "
            "AND (state IN ('queued', 'running', 'due', 'retrying') "
            "OR (state = 'scheduled' AND eta <= ?2)) LIMIT 1",
            (self.name, time.time()),
            results=True,
        )

    def enqueued_since(self, task: str, since: float) -> bool:
        "Has a job of `task` been queued at or after `since` (epoch seconds)?"
        return bool(
            self.sql(
                "SELECT 1 FROM taskctl_jobs WHERE queue = ? AND task = ? AND enqueued_at >= ? LIMIT 1",
                (self.name, task, since),
                results=True,
            )
        )

    def peek_result(self, job_id: str) -> Any:
        "Huey's stored return value for a job, left in place; EmptyData if none."
        data = self.peek_data(job_id)
        return data if data is EmptyData else self.serializer.deserialize(data)

    # -- helpers --------------------------------------------------------

    def _message(self, data: bytes) -> Message | None:
        "The job the bytes describe; None for bytes that are not a Huey message."
        try:
            message = self.serializer.deserialize(bytes(data))
        except Exception:
            return None
        return message if isinstance(message, Message) else None

    def _next_seq(self) -> int:
        # Enqueue order across processes, strictly increasing within one.
        with self._seq_lock:
            self._last_seq = max(time.time_ns(), self._last_seq + 1)
            return self._last_seq

    def _upsert(
        self,
        data: bytes,
        message: Message | None,
        state: str,
        priority: float | None,
        eta: float | None,
    ) -> None:
        self.sql(_UPSERT, self._row(data, message, state, priority, eta), commit=True)

    def _row(
        self, data: bytes, message: Message | None, state: str, priority: float | None, eta: float | None
    ) -> tuple[Any, ...]:
        if message is None:
            job_id, task, args, kwargs, retries = uuid.uuid4().hex, None, None, None, 0
        else:
            job_id, task = message.id, message.name
            args, kwargs = to_json(list(message.args or ())), to_json(message.kwargs or {})
            retries = message.retries or 0
        params = (job_id, self.name, task, args, kwargs, state, priority or 0, eta, self._next_seq())
        return (*params, self.to_blob(data), retries, time.time())

    def _count(self, where: str) -> int:
        sql = f"SELECT count(*) FROM taskctl_jobs WHERE queue = ? AND {where}"
        return self.sql(sql, (self.name,), results=True)[0][0]

    def _data(self, where: str, order: str, limit: int | None) -> list[bytes]:
        sql = f"SELECT data FROM taskctl_jobs WHERE queue = ? AND {where} ORDER BY {order}"
        params: tuple[Any, ...] = (self.name,)
        if limit is not None:
            sql, params = sql + " LIMIT ?", (self.name, limit)
        return [data for (data,) in self.sql(sql, params, results=True)]

    def _delete(self, where: str) -> None:
        self.sql(f"DELETE FROM taskctl_jobs WHERE queue = ? AND {where}", (self.name,), commit=True)


def _fork_safety(storage: JobStorage) -> None:
    """A forked worker must not use its parent's connection, nor a lock another
    thread held at the fork. Holding the storage lock across the fork means no
    SQLite call of the parent's is half done in the child. The inherited
    connection is kept, unused: closing it could disturb the parent's locks."""
    ref = weakref.ref(storage)
    held: list[bool] = []

    def before() -> None:
        target = ref()
        held.append(bool(target and target.lock.acquire(timeout=10)))

    def after_in_parent() -> None:
        target = ref()
        if held.pop() and target:
            target.lock.release()

    def after_in_child() -> None:
        target = ref()
        held.pop()
        if target is None:
            return
        if target._conn is not None:
            target._inherited.append(target._conn)
        target._conn = None
        target.lock = threading.Lock()
        target._seq_lock = threading.Lock()

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
