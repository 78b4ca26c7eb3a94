"""Deleting from the record in small batches: the retention policy, and `taskctl purge`.

A purge is a list of `Deletion`s, each counted before anything is deleted (so
`purge` can say how many rows it will remove and ask first), then deleted a
few hundred rows per transaction. Between batches the write lock is free, so
pruning a million rows never holds up workers for more than a moment.

Deletes happen here; storage.py and recovery.py write everything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from taskctl.config import Retention
from taskctl.decorators import TaskProxy
from taskctl.storage import JobStorage

BATCH = 500
PAUSE = 0.005  # seconds between batches at least,
REST = 2.0  # and twice as long as the batch held the lock (bench/run.py part 3 measures the effect)


@dataclass(frozen=True)
class Deletion:
    "Rows of one table that match `where` (a clause on the table, with `params`)."

    label: str
    table: str
    where: str
    params: tuple[Any, ...] = ()
    rule: str = ""  # for retention: which setting asked for it (keep, keep_failed, max_per_task)

    def count(self, storage: JobStorage) -> int:
        return storage.sql(f"SELECT count(*) FROM {self.table} WHERE {self.where}", self.params, results=True)[0][0]

    def run(self, storage: JobStorage, progress: Callable[[int], None] = lambda n: None) -> int:
        "Delete in batches of BATCH rows, each its own transaction; returns how many went."
        deleted = 0
        while True:
            began = time.perf_counter()
            with storage.db(commit=True) as curs:
                ids = curs.execute(
                    f"DELETE FROM {self.table} WHERE rowid IN "
                    f"(SELECT rowid FROM {self.table} WHERE {self.where} LIMIT ?) "
                    + ("RETURNING id" if self.table == "taskctl_jobs" else "RETURNING NULL"),
                    (*self.params, BATCH),
                ).fetchall()
                if self.table == "taskctl_jobs" and ids:
                    # A job's unread Huey result goes with it (attempts go by trigger).
                    marks = ",".join("?" * len(ids))
                    curs.execute(
                        f"DELETE FROM kv WHERE queue = ? AND key IN ({marks})", (storage.name, *[i for (i,) in ids])
                    )
            deleted += len(ids)
            progress(len(ids))
            if len(ids) < BATCH:
                return deleted
            # Rest longer than the batch held the lock: a writer in SQLite's busy
            # handler wakes at its own intervals, and must find the lock free.
            time.sleep(max(PAUSE, (time.perf_counter() - began) * REST))


def waiting(storage: JobStorage, states: tuple[str, ...], task: str | None = None) -> Deletion:
    "Jobs still waiting to run (queued, or scheduled and retrying)."
    label = " and ".join(states) + " jobs" + (f" of {task}" if task else "")
    where = f"queue = ? AND state IN ({','.join('?' * len(states))})" + (" AND task = ?" if task else "")
    return Deletion(label, "taskctl_jobs", where, (storage.name, *states, *([task] if task else [])))


def history(
    storage: JobStorage, before: float, task: str | None = None, state: str | None = None, label: str = ""
) -> Deletion:
    "Finished jobs that finished before `before` (epoch seconds)."
    where, params = "queue = ? AND finished_at IS NOT NULL AND finished_at < ?", [storage.name, before]
    if task:
        where, params = where + " AND task = ?", [*params, task]
    if state:
        where, params = where + " AND state = ?", [*params, state]
    label = label or "finished jobs" + (f" of {task}" if task else "") + (f" that {state}" if state else "")
    return Deletion(label, "taskctl_jobs", where, tuple(params))


def results(storage: JobStorage, task: str | None = None) -> list[Deletion]:
    """The cached results (`taskctl results`), and Huey's stored return values
    of jobs in the record that nobody has read (`Result.get()`)."""
    return [
        Deletion(
            "cached results" + (f" of {task}" if task else ""),
            "taskctl_results",
            "queue = ?" + (" AND task = ?" if task else ""),
            (storage.name, *([task] if task else [])),
        ),
        Deletion(
            "return values Huey stores until read (Result.get)",
            "kv",
            "queue = ? AND EXISTS (SELECT 1 FROM taskctl_jobs j WHERE j.id = kv.key"
            + (" AND j.task = ?)" if task else ")"),
            (storage.name, *([task] if task else [])),
        ),
    ]


def policy(storage: JobStorage, retention: Retention, now: float | None = None) -> list[Deletion]:
    "What the retention settings remove now: old jobs, then each task's jobs beyond its cap."
    now = time.time() if now is None else now
    deletions = [
        Deletion(
            f"finished jobs older than {span(retention.keep)} (failed ones apart)",
            "taskctl_jobs",
            # By state, not `state != 'failed'`: failed jobs kept longer sit among the
            # oldest rows, and every batch would walk past them again.
            "queue = ? AND state IN ('succeeded', 'revoked', 'expired') AND finished_at < ?",
            (storage.name, now - retention.keep),
            "keep",
        ),
        replace(
            history(storage, now - retention.keep_failed, state="failed"),
            label=f"failed jobs older than {span(retention.keep_failed)}",
            rule="keep_failed",
        ),
    ]
    tasks = storage.sql(
        "SELECT DISTINCT task FROM taskctl_jobs WHERE queue = ? AND finished_at IS NOT NULL AND task IS NOT NULL",
        (storage.name,),
        results=True,
    )
    for (task,) in tasks:
        # The finish time of the newest job past the cap: it and everything older go.
        cutoff = storage.sql(
            "SELECT finished_at FROM taskctl_jobs WHERE queue = ? AND task = ? AND finished_at IS NOT NULL "
            "AND state != 'failed' ORDER BY finished_at DESC LIMIT 1 OFFSET ?",
            (storage.name, task, retention.max_per_task),
            results=True,
        )
        if cutoff:
            deletions.append(
                Deletion(
                    f"jobs of {task} beyond the newest {retention.max_per_task:,}",
                    "taskctl_jobs",
                    # Newer than `keep`, so no row is counted twice.
                    "queue = ? AND task = ? AND finished_at IS NOT NULL AND finished_at <= ? "
                    "AND finished_at >= ? AND state != 'failed'",
                    (storage.name, task, cutoff[0][0], now - retention.keep),
                    "max_per_task",
                )
            )
    return deletions


def prune(storage: JobStorage, retention: Retention) -> dict[str, int]:
    "Apply the retention settings; what the built-in maintenance job runs. Rows deleted, by setting."
    done = {"keep": 0, "keep_failed": 0, "max_per_task": 0}
    for deletion in policy(storage, retention):
        done[deletion.rule] += deletion.run(storage)
    return done


def describe(retention: Retention) -> str:
    return (
        f"keep {span(retention.keep)}, failed jobs {span(retention.keep_failed)}, "
        f"at most {retention.max_per_task:,} finished jobs per task"
    )


def _prune_job() -> dict[str, int]:
    "Built in: deletes what [retention] says is too old or too many, in small batches."
    from taskctl.app import default_app

    app = default_app()
    return prune(app.storage, app.settings.retention)


# The maintenance job: a periodic task of every app, on [retention] schedule.
PRUNE_TASK = TaskProxy(_prune_job, {"name": "prune"})


def span(seconds: float) -> str:
    "14 days, 12 hours, 1.5 hours, 30 minutes, 45 seconds."
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = round(seconds / size, 1)
            return f"{amount:g} {unit}" + ("" if amount == 1 else "s")
    return f"{seconds:g} second" + ("" if seconds == 1 else "s")
