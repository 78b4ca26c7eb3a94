"""Deleting from the SQLite record in small batches: what a `Selection` means in SQL.

Each batch is its own transaction of a few hundred rows, and between batches
the write lock is free, so pruning a million rows never holds up workers for
more than a moment (bench/run.py part 3 measures it).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from taskctl.engines.base import DUE, Progress, Selection

if TYPE_CHECKING:
    from taskctl.engines.sqlite_store import JobStorage

BATCH = 500
PAUSE = 0.005  # seconds between batches at least,
REST = 2.0  # and twice as long as the batch held the lock


def _where(storage: JobStorage, selection: Selection) -> tuple[str, str, tuple[Any, ...]]:
    "The table and the clause that pick the selection's rows."
    params: list[Any] = [storage.name]
    if selection.kind == "results":
        where = "queue = ?" + (" AND task = ?" if selection.task else "")
        return "taskctl_results", where, (storage.name, *([selection.task] if selection.task else []))
    if selection.kind == "huey_results":
        # Huey's stored return values of jobs in the record, unread (Result.get()).
        task = " AND j.task = ?" if selection.task else ""
        where = f"queue = ? AND EXISTS (SELECT 1 FROM taskctl_jobs j WHERE j.id = kv.key{task})"
        return "kv", where, (storage.name, *([selection.task] if selection.task else []))
    clauses = ["queue = ?"]
    if selection.states is not None:
        states = sorted(s.value for s in selection.states)
        if "queued" in states:
            states.append(DUE)  # shown as queued
        clauses.append(f"state IN ({','.join('?' * len(states))})")
        params += states
    for clause, value in (
        ("task = ?", selection.task),
        ("finished_at < ?", selection.finished_before),
        ("finished_at >= ?", selection.finished_from),
        ("finished_at <= ?", selection.finished_until),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if selection.finished_before is not None or selection.finished_until is not None:
        clauses.insert(1, "finished_at IS NOT NULL")
    return "taskctl_jobs", " AND ".join(clauses), tuple(params)


def count(storage: JobStorage, selection: Selection) -> int:
    table, where, params = _where(storage, selection)
    return storage.sql(f"SELECT count(*) FROM {table} WHERE {where}", params, results=True)[0][0]


def delete(storage: JobStorage, selection: Selection, progress: Progress | None = None) -> int:
    "Delete in batches of BATCH rows, each its own transaction; returns how many went."
    table, where, params = _where(storage, selection)
    jobs = table == "taskctl_jobs"
    deleted = 0
    while True:
        began = time.perf_counter()
        with storage.db(commit=True) as curs:
            ids = curs.execute(
                f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {where} LIMIT ?) "
                + ("RETURNING id" if jobs else "RETURNING NULL"),
                (*params, BATCH),
            ).fetchall()
            if jobs and ids:
                # A job's unread Huey result goes with it (attempts go by trigger).
                marks = ",".join("?" * len(ids))
                curs.execute(
                    f"DELETE FROM kv WHERE queue = ? AND key IN ({marks})", (storage.name, *[i for (i,) in ids])
                )
        deleted += len(ids)
        if progress:
            progress(len(ids))
        if len(ids) < BATCH:
            return deleted
        # Rest longer than the batch held the lock: a writer in SQLite's busy
        # handler wakes at its own intervals, and must find the lock free.
        time.sleep(max(PAUSE, (time.perf_counter() - began) * REST))
