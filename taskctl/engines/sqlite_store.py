"""The SQLite engine's write side: Huey's storage, with the queue *in* the job record.

Huey deletes a message the moment a worker takes it. Here a job's row of
`taskctl_jobs` is its queue entry: every change of state is one SQLite
transaction that moves the queue entry and writes the record together, so the
two can never disagree. This module is the only writer of job states on SQLite:
each change in the state table of engines/base.py (drawn once, for both
engines) is one method here.

`due` is the moment between the schedule and the queue: Huey enqueues what
read_schedule returns right after the call, and the lease brings it back if it
never does. Readers show it as queued. Each attempt is a row of
`taskctl_attempts`, written in the same transactions.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from huey.constants import EmptyData
from huey.registry import Message
from huey.serializer import Serializer
from huey.storage import SqliteStorage

from taskctl.engines import sqlite_prune
from taskctl.engines.base import (
    DUE,
    HueyWrites,
    Progress,
    RevokeFlags,
    Selection,
    hostname,
    periodic_slot,
    pid_alive,
)
from taskctl.engines.messages import describe, message_of, trusted_message, undeliverable, worker
from taskctl.engines.sqlite_admin import SqliteAdmin
from taskctl.engines.sqlite_file import up_to_date
from taskctl.engines.sqlite_watch import CommitWatch
from taskctl.model import Outcome, State, preview, to_json
from taskctl.private_files import PRIVATE, create_file
from taskctl.signing import load_trusted
from taskctl.times import to_epoch

# A job still running under this thread's claim: an outcome arriving after the
# job was recovered (and maybe claimed by another worker) must not overwrite it.
_MINE = "state = 'running' AND worker_host = ? AND worker_pid = ? AND worker_thread = ?"

_UPSERT = """
INSERT INTO taskctl_jobs
    (id, queue, task, args, kwargs, state, priority, eta, seq, data, retries, enqueued_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    state = excluded.state, priority = excluded.priority, eta = excluded.eta, seq = excluded.seq,
    data = excluded.data, retries = excluded.retries, lease_until = NULL, finished_at = NULL
-- Huey puts a running job back (a retry) only from the worker running it: a worker whose
-- claim was recovered meanwhile must not pull it from the worker that has it now.
WHERE taskctl_jobs.state != 'running' OR (taskctl_jobs.worker_host = ? AND taskctl_jobs.worker_pid = ?
    AND taskctl_jobs.worker_thread = ?)
"""


_INSERT_NEW = """
INSERT INTO taskctl_jobs
    (id, queue, task, args, kwargs, state, priority, eta, seq, data, retries, enqueued_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
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
        # Asked at every claim and outcome: made once per thread, and again in a forked child.
        known: Worker | None = getattr(_current, "worker", None)
        if known is None or known.pid != os.getpid():
            known = _current.worker = cls(*worker())
        return known


_current = threading.local()


class JobStorage(SqliteAdmin, SqliteStorage):
    """SqliteStorage whose queue and schedule are rows of `taskctl_jobs`."""

    blocking = True  # dequeue waits for a commit (sqlite_watch.py): Huey's workers need not poll

    def __init__(
        self,
        name: str = "huey",
        filename: str = "huey.db",
        serializer: Serializer | None = None,
        synchronous: str = "normal",
        lease: float = 60.0,
        read_timeout: float = 1.0,
        blocking: bool = True,
        file_mode: int = PRIVATE,
        **kwargs: Any,
    ) -> None:
        self.serializer = serializer or Serializer()
        self.blocking = blocking
        self.synchronous = synchronous
        self.file_mode = file_mode
        self.lease = lease
        self.read_timeout = read_timeout
        self._commits = CommitWatch(filename)
        self._claims = threading.local()  # per worker thread: did its last claim find a job?
        self._flags = RevokeFlags()
        self._last_seq = 0
        self._seq_lock = threading.Lock()
        self._inherited: list[sqlite3.Connection] = []
        # Marks the rows this consumer claimed (its forked workers share it), so
        # its heartbeat renews only their leases.
        self.owner = uuid.uuid4().hex
        super().__init__(name, filename, **kwargs)
        _fork_safety(self)

    def _create_connection(self) -> sqlite3.Connection:
        if self.filename != ":memory:" and not self._conn_kwargs.get("uri"):
            create_file(Path(self.filename), self.file_mode)  # before SQLite makes it, with the umask's mode
        conn = super()._create_connection()
        # Huey leaves SQLite at FULL; in WAL mode NORMAL is still crash-safe
        # (only the last commits can be lost on power failure) and 3-5x faster.
        conn.execute(f"pragma synchronous={self.synchronous}")
        # A job's two commits write a dozen pages, most of them the same few (counts,
        # index leaves, the cached results): checkpointing every 4,000 pages rather than
        # SQLite's 1,000 copies each of those once per 4,000, and syncs a quarter as often.
        conn.execute("pragma wal_autocheckpoint=4000")
        return conn

    def initialize_schema(self) -> None:
        self.upgrade()

    def upgrade(self) -> list[str]:
        "Make the database taskctl's and bring its schema up to date; the steps applied."
        with self.lock:
            if up_to_date(self.conn):
                return []
            from taskctl.engines.sqlite_schema import migrate  # sqlite-utils, ~90 ms: for a schema to change only

            return migrate(self.conn, self.ddl)

    # -- the queue and the schedule, as Huey calls them -------------------

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        # Always the queue, even with an eta, as in Huey: a worker moves a job that
        # is not due yet to the schedule (and Huey signals SIGNAL_SCHEDULED then).
        message = self._message(data)
        minute = periodic_slot.minute_for(message.id) if message else None
        with self.db(commit=True) as curs:
            if minute is not None and message is not None:
                curs.execute(
                    "INSERT OR IGNORE INTO taskctl_slots (queue, task, slot, job_id) VALUES (?, ?, ?, ?)",
                    (self.name, message.name, minute, message.id),
                )
                if not curs.rowcount:  # another consumer queued this run already
                    return
            _upsert(curs, self._row(data, message, State.QUEUED, priority))

    def add_to_schedule(self, data: bytes, ts: datetime) -> None:
        message = self._message(data)
        priority = message.priority if message else None
        with self.db(commit=True) as curs:
            row = message and curs.execute("SELECT state FROM taskctl_jobs WHERE id = ?", (message.id,)).fetchone()
            # Huey schedules a running job again only to retry it after a delay.
            state = State.RETRYING if row and row[0] == State.RUNNING else State.SCHEDULED
            _upsert(curs, self._row(data, message, state, priority, to_epoch(ts)))

    def enqueue_new(self, batch: list[tuple[bytes, Message]]) -> int:
        """Jobs not in the record yet, in one transaction: queued, or scheduled for their
        eta. A job whose id is here already is left as it is. Returns how many were new."""
        rows = [self._row(d, m, State.SCHEDULED if m.eta else State.QUEUED, m.priority) for d, m in batch]
        with self.db(commit=True) as curs:
            curs.executemany(_INSERT_NEW, rows)
            return max(curs.rowcount, 0)

    def dequeue(self) -> bytes | None:
        ticket = self._commits.ticket()
        data = self._claim()
        if data is None and self.blocking:
            # Wait for the next commit (an enqueue, a job falling due) rather than
            # poll: Huey's workers do not sleep between calls to a blocking storage.
            self._commits.wait(ticket, self.read_timeout)
            data = self._claim()
        return data

    def wake_waiters(self, count: int) -> None:
        "Idle workers of this process waiting for a commit look again now (the consumer stops)."
        self._commits.wake_all()

    def _claim(self) -> bytes | None:
        # A cheap read first, so idle workers do not take the write lock; a worker whose
        # last claim found a job is draining a queue and goes straight to the next.
        draining, self._claims.draining = getattr(self._claims, "draining", False), False
        self._flags.claimed()
        if not draining and not self.sql(
            "SELECT 1 FROM taskctl_jobs WHERE queue = ? AND state = 'queued' LIMIT 1", (self.name,), results=True
        ):
            return None
        worker = Worker.current()
        with self.db(commit=True) as curs:
            now = time.time()  # after the lock: the lease starts when the claim does
            # The job's revoke flags too, which Huey reads next (RevokeFlags).
            row = curs.execute(
                "UPDATE taskctl_jobs SET state = 'running', started_at = ?, finished_at = NULL, "
                "attempts = attempts + 1, worker_host = ?, worker_pid = ?, worker_thread = ?, owner = ?, "
                "lease_until = ? WHERE id = (SELECT id FROM taskctl_jobs WHERE queue = ? AND state = 'queued' "
                "ORDER BY priority DESC, seq LIMIT 1) "
                "RETURNING id, data, task, attempts, "
                "(SELECT 1 FROM kv WHERE kv.queue = ? AND kv.key IN ('r:' || id, 'rt:' || task) LIMIT 1)",
                (now, *worker.key, self.owner, now + self.lease, self.name, self.name),
            ).fetchone()
            if row is None:
                return None
            job_id, data, task, attempt, flagged = row
            curs.execute(
                "INSERT OR REPLACE INTO taskctl_attempts (job_id, attempt, started_at, worker, outcome) "
                "VALUES (?, ?, ?, ?, 'running')",
                (job_id, attempt, now, str(worker)),
            )
            self._claims.draining = True
            self._flags.claimed(job_id, task, bool(flagged))
            return data

    def peek_many(self, keys: list[Any]) -> dict[Any, bytes]:
        return {} if self._flags.known_absent(keys) else super().peek_many(keys)

    def queue_size(self) -> int:
        return self._count("state = 'queued'")

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        return self._data("state = 'queued'", "priority DESC, seq", limit)

    def flush_queue(self) -> None:
        self._delete("state = 'queued'")

    def read_schedule(self, ts: datetime) -> list[bytes]:
        now = time.time()
        with self.db(commit=True) as curs:
            rows = curs.execute(
                "SELECT id, data FROM taskctl_jobs WHERE queue = ? "
                "AND state IN ('scheduled', 'retrying') AND eta <= ? ORDER BY eta, seq",
                (self.name, to_epoch(ts)),
            ).fetchall()
            for chunk in _chunks([r[0] for r in rows], 500):
                curs.execute(
                    f"UPDATE taskctl_jobs SET state = 'due', lease_until = ? WHERE id IN ({_marks(chunk)})",
                    (now + self.lease, *chunk),
                )
        return [data for _, data in rows]

    def schedule_size(self) -> int:
        return self._count("state IN ('scheduled', 'retrying')")

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        return self._data("state IN ('scheduled', 'retrying')", "eta, seq", limit)

    def flush_schedule(self) -> None:
        self._delete("state IN ('scheduled', 'retrying', 'due')")

    # -- outcomes, as taskctl's Huey and its hooks report them -------------

    def record_success(self, job_id: str, value: Any, writes: HueyWrites | None = None) -> None:
        "The job succeeded: clear its message, keep a preview, cache the whole value."
        now, text = time.time(), to_json(value)
        with self.db(commit=True) as curs:
            self._huey_writes(curs, job_id, writes)
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'succeeded', data = NULL, lease_until = NULL, "
                "finished_at = ?, duration = ? - started_at, result_preview = ?, "
                f"error_type = NULL, error_message = NULL, traceback = NULL WHERE id = ? AND {_MINE}",
                (now, now, preview(value, text), job_id, *Worker.current().key),
            )
            if curs.rowcount:
                _end_attempt(curs, job_id, Outcome.SUCCEEDED, now)
            elif not _late_success(curs, job_id, now, preview(value, text)):
                return
            # Updated in place when the task has a row (not deleted and inserted again): one
            # page of the table, not two (its key's index stays as it is).
            curs.execute(
                "INSERT INTO taskctl_results (queue, task, job_id, value, computed_at, duration) "
                "SELECT queue, task, id, ?, finished_at, duration FROM taskctl_jobs WHERE id = ? AND task IS NOT NULL "
                "ON CONFLICT (queue, task) DO UPDATE SET job_id = excluded.job_id, value = excluded.value, "
                "computed_at = excluded.computed_at, duration = excluded.duration",
                (text, job_id),
            )

    def record_error(
        self, job_id: str, exc: BaseException, tb: str, final: bool, writes: HueyWrites | None = None
    ) -> None:
        """An attempt raised. A final failure keeps the message, for `taskctl retry`;
        a retry stays running until Huey puts it back (add_to_schedule or enqueue)."""
        now = time.time()
        error = (type(exc).__name__, str(exc), tb)
        with self.db(commit=True) as curs:
            self._huey_writes(curs, job_id, writes)
            ends = "state = 'failed', lease_until = NULL, finished_at = ?, " if final else ""
            curs.execute(
                f"UPDATE taskctl_jobs SET {ends}duration = ? - started_at, error_type = ?, error_message = ?, "
                f"traceback = ? WHERE id = ? AND {_MINE}",
                ((now,) if final else ()) + (now, *error, job_id, *Worker.current().key),
            )
            if curs.rowcount:
                _end_attempt(curs, job_id, Outcome.FAILED, now, error)
            else:
                _end_lost_attempt(curs, job_id, Outcome.FAILED, now, error)

    def _huey_writes(self, curs: sqlite3.Cursor, job_id: str, writes: HueyWrites | None) -> None:
        "Huey's own writes as a job ends (as its SqliteStorage makes them), whoever holds the claim now."
        if writes is not None and writes.clear_revoke is not None:
            curs.execute("DELETE FROM kv WHERE queue = ? AND key = ?", (self.name, writes.clear_revoke))
        if writes is not None and writes.result is not None:
            curs.execute(
                "INSERT OR REPLACE INTO kv (queue, key, value) VALUES (?, ?, ?)",
                (self.name, job_id, self.to_blob(writes.result)),
            )

    def record_skipped(self, job_id: str, state: State) -> None:
        "Revoked or expired: taken from the queue but never run, so not an attempt."
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET state = ?, data = NULL, lease_until = NULL, "
                f"finished_at = ?, attempts = max(attempts - 1, 0) WHERE id = ? AND {_MINE}",
                (state, time.time(), job_id, *Worker.current().key),
            )
            if curs.rowcount:  # else recovered and reclaimed meanwhile: not this worker's to end
                _drop_open_attempt(curs, job_id)

    def unclaim(self, job_id: str, state: State = State.SCHEDULED) -> None:
        """This worker's claim is given back unrun: not an attempt. Huey found the job not
        due yet: straight to the schedule, where Huey puts it next (back in the queue,
        another worker could claim it before Huey does). The consumer is stopping: the queue."""
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET state = ?, attempts = max(attempts - 1, 0), started_at = NULL, "
                "worker_host = NULL, worker_pid = NULL, worker_thread = NULL, owner = NULL, lease_until = NULL "
                f"WHERE id = ? AND {_MINE}",
                (State(state).value, job_id, *Worker.current().key),
            )
            if curs.rowcount:
                _drop_open_attempt(curs, job_id)

    def record_undeliverable(self, data: bytes, exc: Exception) -> None:
        """A claimed entry this consumer cannot run: its task is not registered here, or
        it is no Huey message at all (found by its bytes then: it names no id)."""
        message = self._message(data)
        error = undeliverable(message, exc)
        now = time.time()
        which = "id = ?" if message is not None else "data = ? AND queue = ?"
        key = (message.id,) if message is not None else (data, self.name)
        with self.db(commit=True) as curs:
            row = curs.execute(f"SELECT id FROM taskctl_jobs WHERE {which} AND {_MINE}", (*key, *Worker.current().key))
            found = row.fetchone()
            if found is None:
                return
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'failed', lease_until = NULL, finished_at = ?, "
                "error_type = ?, error_message = ? WHERE id = ?",
                (now, *error, found[0]),
            )
            _end_attempt(curs, found[0], Outcome.FAILED, now, (*error, None))

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
                _end_attempt(curs, job_id, Outcome.INTERRUPTED, time.time(), error)

    # -- the consumer's heartbeat: presence and leases ------------------------

    def renew_leases(self, pids: list[int]) -> int:
        """The running jobs this consumer claimed, in these live processes (itself,
        and its worker processes), are still being worked on. A worker thread runs one
        job at a time: an older claim of a thread that claimed again is one whose
        outcome was never written, and its lease is left to run out."""
        with self.db(commit=True) as curs:
            curs.execute(
                "UPDATE taskctl_jobs SET lease_until = ? WHERE queue = ? AND state = 'running' "
                f"AND owner = ? AND worker_host = ? AND worker_pid IN ({_marks(pids)}) AND NOT EXISTS ("
                "SELECT 1 FROM taskctl_jobs later WHERE later.queue = taskctl_jobs.queue AND later.state = 'running' "
                "AND later.worker_host = taskctl_jobs.worker_host AND later.worker_pid = taskctl_jobs.worker_pid "
                "AND later.worker_thread = taskctl_jobs.worker_thread AND later.started_at > taskctl_jobs.started_at)",
                (time.time() + self.lease, self.name, self.owner, hostname(), *pids),
            )
            return curs.rowcount

    def recover_lost(self) -> int:
        """Put right the jobs whose worker is gone: a running job whose lease ran
        out, or at once one whose worker process on this host is dead; a due job
        whose scheduler never queued it. A lost job with a retry left goes back to
        the queue, using the retry up; otherwise it fails as WorkerLost."""
        host = hostname()
        with self.db(commit=True) as curs:
            now = time.time()
            rows = curs.execute(
                "SELECT id, state, worker_host, worker_pid, lease_until, data "
                "FROM taskctl_jobs WHERE queue = ? AND state IN ('running', 'due')",
                (self.name,),
            ).fetchall()
            lost = 0
            for job_id, state, w_host, w_pid, lease, data in rows:
                dead = state == State.RUNNING and w_host == host and not pid_alive(w_pid)
                if not dead and (lease or 0) >= now:
                    continue
                lost += 1
                if state == DUE:
                    curs.execute("UPDATE taskctl_jobs SET state = 'queued' WHERE id = ?", (job_id,))
                else:
                    self._lose(curs, job_id, data, now)
        return lost

    def _lose(self, curs: sqlite3.Cursor, job_id: str, data: bytes | None, now: float) -> None:
        message = self._message(data) if data is not None else None
        error = ("WorkerLost", "the worker running this job stopped without finishing it")
        _end_attempt(curs, job_id, Outcome.LOST, now, (*error, None))
        if message is not None and message.retries:
            # The retry is used up in the message itself: Huey counts from there.
            data = self.serializer.serialize(message._replace(retries=message.retries - 1))
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'queued', lease_until = NULL, data = ?, retries = ?, "
                "seq = ?, error_type = ?, error_message = ? WHERE id = ?",
                (self.to_blob(data), message.retries - 1, self._next_seq(), *error, job_id),
            )
        else:
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'failed', lease_until = NULL, finished_at = ?, "
                "duration = ? - started_at, error_type = ?, error_message = ? WHERE id = ?",
                (now, now, *error, job_id),
            )

    def is_idle(self) -> bool:
        """Nothing queued, running, waiting for a retry, or due now (for `--burst`).
        Jobs scheduled for a later time do not count: they are not work for this
        run (a delayed job still in the queue does: a worker moves it to the schedule)."""
        return not self.sql(
            "SELECT 1 FROM taskctl_jobs WHERE queue = ?1 "
            "AND (state IN ('queued', 'running', 'due', 'retrying') OR (state = 'scheduled' AND eta <= ?2)) LIMIT 1",
            (self.name, time.time()),
            results=True,
        )

    # -- what commands change ---------------------------------------------

    def cancel(self, job_id: str) -> tuple[bool, State | None]:
        """Revoke a job still waiting to run, in the one transaction that takes it
        out of the queue, so no worker can claim it afterwards. Returns whether it
        was revoked, and the state it was in (None: no such job)."""
        with self.db(commit=True) as curs:
            row = curs.execute("SELECT state FROM taskctl_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False, None
            if row[0] == DUE:  # Huey is enqueueing it this moment: its upsert would undo a revoke
                return False, State.QUEUED
            state = State(row[0])
            if not state.waiting:
                return False, state
            curs.execute(
                "UPDATE taskctl_jobs SET state = 'revoked', data = NULL, lease_until = NULL, "
                "finished_at = ?, error_type = 'Cancelled', error_message = 'by taskctl cancel' WHERE id = ?",
                (time.time(), job_id),
            )
        return True, state

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
            _upsert(curs, self._row(data, message, State.QUEUED, message.priority))
            curs.execute("UPDATE taskctl_jobs SET retry_of = ? WHERE id = ?", (old_id, message.id))
        return True

    def count(self, selection: Selection) -> int:
        return sqlite_prune.count(self, selection)

    def delete(self, selection: Selection, progress: Progress | None = None) -> int:
        return sqlite_prune.delete(self, selection, progress)

    # -- reads that need the message or Huey's own tables -------------------

    def message(self, job_id: str) -> Message | None:
        "The job's Huey message while it is kept (queued, scheduled, running, failed), signed or plain data."
        rows = self.sql("SELECT data FROM taskctl_jobs WHERE id = ?", (job_id,), results=True)
        return trusted_message(self.serializer, rows[0][0]) if rows and rows[0][0] is not None else None

    def slot_taken(self, task: str, at: float) -> bool:
        "Has the periodic run of `task` for the minute `at` been queued?"
        sql = "SELECT 1 FROM taskctl_slots WHERE queue = ? AND task = ? AND slot = ?"
        return bool(self.sql(sql, (self.name, task, at), results=True))

    def forget_slots(self, before: float) -> int:
        "Slots of runs older than `before`: a slot only guards its own minute."
        with self.db(commit=True) as curs:
            curs.execute("DELETE FROM taskctl_slots WHERE queue = ? AND slot < ?", (self.name, before))
            return curs.rowcount

    def peek_result(self, job_id: str) -> Any:
        "Huey's stored return value for a job, left in place; EmptyData if none."
        data = self.peek_data(job_id)
        return data if data is EmptyData else load_trusted(self.serializer, data)

    # -- helpers ------------------------------------------------------------

    def _message(self, data: bytes) -> Message | None:
        return message_of(self.serializer, data)

    def _next_seq(self) -> int:
        # Enqueue order across processes, strictly increasing within one.
        with self._seq_lock:
            self._last_seq = max(time.time_ns(), self._last_seq + 1)
            return self._last_seq

    def _row(
        self, data: bytes, message: Message | None, state: State, priority: float | None, eta: float | None = None
    ) -> tuple[Any, ...]:
        job = describe(message)
        eta = job.eta if eta is None else eta
        params = (job.id, self.name, job.task, job.args, job.kwargs, state.value, priority or 0, eta, self._next_seq())
        return (*params, self.to_blob(data), job.retries, time.time())

    def _count(self, where: str) -> int:
        sql = f"SELECT count(*) FROM taskctl_jobs WHERE queue = ? AND {where}"
        return self.sql(sql, (self.name,), results=True)[0][0]

    def _data(self, where: str, order: str, limit: int | None) -> list[bytes]:
        sql = f"SELECT data FROM taskctl_jobs WHERE queue = ? AND {where} ORDER BY {order} LIMIT ?"
        return [data for (data,) in self.sql(sql, (self.name, -1 if limit is None else limit), results=True)]

    def _delete(self, where: str) -> None:
        self.sql(f"DELETE FROM taskctl_jobs WHERE queue = ? AND {where}", (self.name,), commit=True)


def _upsert(curs: sqlite3.Cursor, row: tuple[Any, ...]) -> None:
    "Insert a job, or put an existing one (back) where Huey says, as this worker."
    curs.execute(_UPSERT, (*row, *Worker.current().key))


def _end_attempt(
    curs: sqlite3.Cursor, job_id: str, outcome: Outcome, now: float, error: tuple[Any, ...] = (None, None, None)
) -> None:
    curs.execute(
        "UPDATE taskctl_attempts SET outcome = ?, finished_at = ?, duration = ? - started_at, "
        "error_type = ?, error_message = ?, traceback = ? WHERE job_id = ? AND outcome = 'running'",
        (outcome.value, now, now, *error, job_id),
    )


# An outcome reported by a worker whose job was recovered as lost meanwhile (its
# lease ran out while it still ran): kept on its attempt, never dropped.
LATE = ("LateOutcome", "the worker finished after its job was recovered as lost", None)


def _late_success(curs: sqlite3.Cursor, job_id: str, now: float, value_preview: str | None) -> bool:
    """A success after recovery. A job failed as WorkerLost, not run nor retried since, did
    succeed: it says so (True, its value is to be cached). Else only its attempt records it."""
    attempt = _end_lost_attempt(curs, job_id, Outcome.SUCCEEDED, now, LATE)
    if attempt is None:
        return False
    curs.execute(
        "UPDATE taskctl_jobs SET state = 'succeeded', data = NULL, finished_at = ?, duration = ? - started_at, "
        "result_preview = ?, error_type = NULL, error_message = NULL, traceback = NULL "
        "WHERE id = ? AND state = 'failed' AND error_type = 'WorkerLost' AND attempts = ? AND retried_as IS NULL",
        (now, now, value_preview, job_id, attempt),
    )
    if not curs.rowcount:
        return False
    curs.execute(
        "UPDATE taskctl_attempts SET error_type = NULL, error_message = NULL WHERE job_id = ? AND attempt = ?",
        (job_id, attempt),
    )
    return True


def _end_lost_attempt(
    curs: sqlite3.Cursor, job_id: str, outcome: Outcome, now: float, error: tuple[Any, ...]
) -> int | None:
    "This worker's latest attempt of the job, recovered as lost, ends as it did; its number, if any."
    row = curs.execute(
        "SELECT attempt FROM taskctl_attempts WHERE job_id = ? AND worker = ? AND outcome = 'lost' "
        "ORDER BY attempt DESC LIMIT 1",
        (job_id, str(Worker.current())),
    ).fetchone()
    if row is None:
        return None
    curs.execute(
        "UPDATE taskctl_attempts SET outcome = ?, finished_at = ?, duration = ? - started_at, "
        "error_type = ?, error_message = ?, traceback = ? WHERE job_id = ? AND attempt = ?",
        (outcome.value, now, now, *error, job_id, row[0]),
    )
    return int(row[0])


def _drop_open_attempt(curs: sqlite3.Cursor, job_id: str) -> None:
    curs.execute("DELETE FROM taskctl_attempts WHERE job_id = ? AND outcome = 'running'", (job_id,))


def _marks(values: list[Any]) -> str:
    "Placeholders for an IN list; an empty list matches nothing."
    return ",".join("?" * len(values)) if values else "NULL"


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
