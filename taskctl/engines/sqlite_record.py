"""The SQLite engine's read side: what `status`, `show`, `history` and `latest_result` ask.

Every query is indexed and LIMITed, and none unpickles a message, so the
answers stay quick with 100,000 jobs queued and a million in history. It opens
the file without Huey, and read-only when asked (a web app).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from taskctl.engines.base import Consumer, job_from_fields, shown_state
from taskctl.model import LISTED_CHARS, Attempt, CachedResult, Job, Outcome, Run, State, cut_preview

_JOB_COLUMNS = (
    "id, task, state, args, kwargs, priority, eta, enqueued_at, started_at, finished_at, "
    "duration, attempts, worker_host, worker_pid, worker_thread, "
    "error_type, error_message, traceback, result_preview, retry_of, retried_as"
)
_RESULT_COLUMNS = "task, job_id, value, computed_at, duration"
# What a finished job is: it has left the queue for good (retention's domain).
_FINISHED = "finished_at IS NOT NULL"


class SqliteRecord:
    def __init__(self, path: Path, queue: str, busy_timeout: float = 5.0, read_only: bool = False):
        self.path = path
        self.queue = queue
        target, uri = (f"{path.resolve().as_uri()}?mode=ro", True) if read_only else (str(path), False)
        self.conn = sqlite3.connect(target, uri=uri, timeout=busy_timeout, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row

    def counts(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        for row in self._rows("SELECT state, n FROM taskctl_counts WHERE queue = ?", (self.queue,)):
            # 'due' is the moment between the schedule and the queue.
            counts[shown_state(row["state"])] += row["n"]
        return counts

    def queued(self, limit: int) -> list[Job]:
        return self._jobs("state = 'queued'", "priority DESC, seq", limit)

    def scheduled(self, limit: int) -> list[Job]:
        return self._jobs("state IN ('scheduled', 'retrying')", "eta, seq", limit)

    def running(self, limit: int) -> list[Job]:
        return self._jobs("state = 'running'", "started_at", limit)

    def failed(self, limit: int) -> list[Job]:
        return self._jobs("state = 'failed'", "finished_at DESC", limit)

    def job(self, job_id: str) -> Job | None:
        jobs = self._jobs("id = ?", "id", 1, [job_id])
        return jobs[0] if jobs else None

    def consumers(self) -> list[Consumer]:
        sql = (
            "SELECT owner, host, pid, started_at, beat_at, queue, about FROM taskctl_consumers "
            "WHERE queue = ? ORDER BY started_at"
        )
        return [Consumer.recorded(*row) for row in self._rows(sql, (self.queue,))]

    def job_ids(self, prefix: str, limit: int) -> list[str]:
        "Ids that start with `prefix` (a range on the primary key, not a scan)."
        # `+queue`: the planner would otherwise pick a queue index and sort the whole table.
        sql = "SELECT id FROM taskctl_jobs WHERE id >= ? AND id < ? AND +queue = ? ORDER BY id LIMIT ?"
        return [row["id"] for row in self._rows(sql, (prefix, prefix + "\U0010ffff", self.queue, limit))]

    def attempts(self, job_id: str) -> list[Attempt]:
        rows = self._rows(
            "SELECT job_id, attempt, started_at, finished_at, duration, worker, outcome, error_type, error_message, "
            "traceback FROM taskctl_attempts WHERE job_id = ? ORDER BY attempt",
            (job_id,),
        )
        return [Attempt(**{**dict(row), "outcome": Outcome(row["outcome"])}) for row in rows]

    def history(
        self, limit: int, task: str | None = None, state: State | None = None, since: float | None = None
    ) -> list[Job]:
        "Finished jobs, newest first."
        where, params = [_FINISHED], []
        for clause, value in (("task = ?", task), ("state = ?", state and state.value), ("finished_at >= ?", since)):
            if value is not None:
                where.append(clause)
                params.append(value)
        return self._jobs(" AND ".join(where), "finished_at DESC", limit, params)

    def finished_since(self, since: float, task: str | None = None) -> list[Run]:
        "What `stats` counts: every finished job since `since`."
        sql = "SELECT task, state, finished_at, duration FROM taskctl_jobs WHERE queue = ? "
        sql += f"AND {_FINISHED} AND finished_at >= ?" + (" AND task = ?" if task else "")
        cursor = self.conn.cursor()
        cursor.row_factory = None  # plain tuples: a day can hold a hundred thousand jobs
        rows = cursor.execute(sql, (self.queue, since, *([task] if task else []))).fetchall()
        states = {s.value: s for s in State}
        return [Run(name, states[state], at, took) for name, state, at, took in rows]

    def last_run(self, task: str) -> Job | None:
        "The task's latest job that ran to an end (succeeded or failed)."
        where = f"task = ? AND {_FINISHED} AND state IN ('succeeded', 'failed')"
        jobs = self._jobs(where, "finished_at DESC", 1, [task])
        return jobs[0] if jobs else None

    def retryable(self, limit: int, task: str | None = None) -> list[Job]:
        "Failed jobs not retried yet, in the order they failed."
        where = "state = 'failed' AND retried_as IS NULL" + (" AND task = ?" if task else "")
        return self._jobs(where, "finished_at", limit, [task] if task else [])

    def has_task(self, task: str) -> bool:
        # Its history first (an index on task), then the jobs not finished (an index on
        # state): neither walks the history of other tasks.
        for where in (_FINISHED, "state IN ('queued', 'scheduled', 'retrying', 'due', 'running')"):
            if self._rows(
                f"SELECT 1 FROM taskctl_jobs WHERE queue = ? AND task = ? AND {where} LIMIT 1", (self.queue, task)
            ):
                return True
        return False

    def tasks_with_history(self) -> list[str]:
        # One index seek per task (a skip scan), where DISTINCT reads every finished job: a
        # shell completion asks this on each Tab, with a million jobs in history.
        sql = (
            "WITH RECURSIVE names(task) AS ("
            f"SELECT min(task) FROM taskctl_jobs WHERE queue = ?1 AND {_FINISHED} AND task IS NOT NULL "
            f"UNION ALL SELECT (SELECT min(task) FROM taskctl_jobs WHERE queue = ?1 AND {_FINISHED} "
            "AND task > names.task) FROM names WHERE names.task IS NOT NULL"
            ") SELECT task FROM names WHERE task IS NOT NULL"
        )
        return [row["task"] for row in self._rows(sql, (self.queue,))]

    def nth_finished(self, task: str, n: int, exclude: frozenset[State]) -> float | None:
        "When the task's n-th newest finished job (from 0) not in `exclude` finished."
        marks = ",".join("?" * len(exclude)) or "NULL"
        rows = self._rows(
            f"SELECT finished_at FROM taskctl_jobs WHERE queue = ? AND task = ? AND {_FINISHED} "
            f"AND state NOT IN ({marks}) ORDER BY finished_at DESC LIMIT 1 OFFSET ?",
            (self.queue, task, *(s.value for s in exclude), n),
        )
        return rows[0]["finished_at"] if rows else None

    def results(self, limit: int | None = None) -> list[CachedResult]:
        "Every task's cached result, for a listing: a value past LISTED_CHARS as its preview, never parsed."
        rows = self._rows(
            "SELECT task, job_id, CASE WHEN length(value) <= ?1 THEN value END AS value, computed_at, duration, "
            "CASE WHEN length(value) > ?1 THEN substr(value, 1, 200) END AS head, length(value) AS chars "
            "FROM taskctl_results WHERE queue = ?2 ORDER BY task LIMIT ?3",
            (LISTED_CHARS, self.queue, -1 if limit is None else limit),
        )
        return [_result(row) if row["head"] is None else _listed(row) for row in rows]

    def result(self, task: str) -> CachedResult | None:
        "The cached result of `task`, by full name or a unique suffix."
        rows = self._rows(
            f"SELECT {_RESULT_COLUMNS} FROM taskctl_results WHERE queue = ? AND (task = ? OR task LIKE ? ESCAPE '\\') "
            "ORDER BY task = ? DESC",
            (self.queue, task, "%." + _escape_like(task), task),
        )
        if not rows or (len(rows) > 1 and rows[0]["task"] != task):
            return None
        return _result(rows[0])

    def known_tasks(self) -> list[str]:
        "The tasks consumers registered, and those with a cached result."
        names = {row["task"] for row in self._rows("SELECT task FROM taskctl_results WHERE queue = ?", (self.queue,))}
        try:
            rows = self._rows("SELECT value FROM taskctl_meta WHERE key = ?", (f"tasks/{self.queue}",))
        except sqlite3.OperationalError:  # a database of a release before taskctl_meta
            rows = []
        return sorted(names.union(*(json.loads(row["value"]) for row in rows)))

    def catalog(self) -> str | None:
        "What the latest consumer to start recorded it runs (catalog.py's JSON), if any did."
        rows = self._rows("SELECT catalog FROM taskctl_catalog WHERE queue = ?", (self.queue,))
        return rows[0]["catalog"] if rows else None

    def slot_taken(self, task: str, at: float) -> bool:
        "Has the periodic run of `task` for the minute `at` been queued?"
        sql = "SELECT 1 FROM taskctl_slots WHERE queue = ? AND task = ? AND slot = ?"
        return bool(self._rows(sql, (self.queue, task, at)))

    def close(self) -> None:
        self.conn.close()

    def _rows(self, sql: str, params: Iterable[Any]) -> list[sqlite3.Row]:
        return self.conn.execute(sql, tuple(params)).fetchall()

    def _jobs(self, where: str, order: str, limit: int, params: Iterable[Any] = ()) -> list[Job]:
        sql = f"SELECT {_JOB_COLUMNS} FROM taskctl_jobs WHERE queue = ? AND {where} ORDER BY {order} LIMIT ?"
        return [job_from_fields(row) for row in self._rows(sql, (self.queue, *params, limit))]


def _result(row: sqlite3.Row) -> CachedResult:
    return CachedResult(row["task"], row["job_id"], json.loads(row["value"]), row["computed_at"], row["duration"])


def _listed(row: sqlite3.Row) -> CachedResult:
    preview = cut_preview(row["head"], row["chars"])
    return CachedResult(row["task"], row["job_id"], None, row["computed_at"], row["duration"], value_preview=preview)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
