"""Finding jobs whose worker is gone, and putting them right.

A consumer's heartbeat renews the leases of the jobs it claimed; a running job
whose lease ran out, or whose worker process on this host is dead, is lost.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskctl.storage import JobStorage


def renew_leases(storage: JobStorage, pids: Iterable[int]) -> int:
    """Heartbeat: the running jobs this consumer claimed, in these live
    processes (itself, and its worker processes), are still being worked on."""
    pids = list(pids)
    with storage.db(commit=True) as curs:
        curs.execute(
            "UPDATE taskctl_jobs SET lease_until = ? WHERE queue = ? AND state = 'running' "
            f"AND owner = ? AND worker_host = ? AND worker_pid IN ({_marks(pids)})",
            (time.time() + storage.lease, storage.name, storage.owner, socket.gethostname(), *pids),
        )
        return curs.rowcount


def recover_lost(storage: JobStorage) -> int:
    """Find the jobs whose worker is gone and put them right: a running job
    whose lease ran out, or at once one whose worker process on this host is
    dead; a due job whose scheduler never queued it. A lost job with a retry
    left goes back to the queue, using the retry up; otherwise it fails as
    WorkerLost. Returns how many were found."""
    host = socket.gethostname()
    with storage.db(commit=True) as curs:
        now = time.time()
        rows = curs.execute(
            "SELECT id, state, worker_host, worker_pid, lease_until, data "
            "FROM taskctl_jobs WHERE queue = ? AND state IN ('running', 'due')",
            (storage.name,),
        ).fetchall()
        lost = 0
        for job_id, state, w_host, w_pid, lease, data in rows:
            dead = state == "running" and w_host == host and not _pid_alive(w_pid)
            if not dead and (lease or 0) >= now:
                continue
            lost += 1
            if state == "due":
                curs.execute("UPDATE taskctl_jobs SET state = 'queued' WHERE id = ?", (job_id,))
            else:
                _requeue_or_fail_lost(storage, curs, job_id, data, now)
    return lost


def _requeue_or_fail_lost(
    storage: JobStorage, curs: sqlite3.Cursor, job_id: str, data: bytes | None, now: float
) -> None:
    message = storage._message(data) if data is not None else None
    error = ("WorkerLost", "the worker running this job stopped without finishing it")
    end_attempt(curs, job_id, "lost", now, (*error, None))
    if message is not None and message.retries:
        # The retry is used up in the message itself: Huey counts from there.
        data = storage.serializer.serialize(message._replace(retries=message.retries - 1))
        curs.execute(
            "UPDATE taskctl_jobs SET state = 'queued', lease_until = NULL, data = ?, retries = ?, "
            "seq = ?, error_type = ?, error_message = ? WHERE id = ?",
            (storage.to_blob(data), message.retries - 1, storage._next_seq(), *error, job_id),
        )
    else:
        curs.execute(
            "UPDATE taskctl_jobs SET state = 'failed', lease_until = NULL, finished_at = ?, "
            "duration = ? - started_at, error_type = ?, error_message = ? WHERE id = ?",
            (now, now, *error, job_id),
        )


def end_attempt(
    curs: sqlite3.Cursor, job_id: str, outcome: str, now: float, error: tuple[Any, ...] = (None, None, None)
) -> None:
    curs.execute(
        "UPDATE taskctl_attempts SET outcome = ?, finished_at = ?, duration = ? - started_at, "
        "error_type = ?, error_message = ?, traceback = ? WHERE job_id = ? AND outcome = 'running'",
        (outcome, now, now, *error, job_id),
    )


def _marks(values: list[Any]) -> str:
    "Placeholders for an IN list; an empty list matches nothing."
    return ",".join("?" * len(values)) if values else "NULL"


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
