"""The read side of the job record: what `status` and `latest_result` ask.

Every query is indexed and LIMITed, and none unpickles a message, so the
answers stay quick with 100,000 jobs queued and a million in history.
`JobRegistry` is the interface; a Redis-backed one can sit beside this one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import tzinfo
from pathlib import Path
from typing import Any, Protocol

from sqlite_utils import Database

from taskctl.times import iso

STATES = ("queued", "scheduled", "retrying", "running", "succeeded", "failed", "revoked", "expired")
_JOB_COLUMNS = (
    "id, task, state, args, kwargs, priority, eta, enqueued_at, started_at, finished_at, "
    "duration, attempts, worker_host, worker_pid, worker_thread, lease_until, "
    "error_type, error_message, traceback, result_preview, retry_of, retried_as"
)
# What a finished job is: it has left the queue for good (retention's domain).
_FINISHED = "finished_at IS NOT NULL"


class JobRegistry(Protocol):
    def counts(self) -> dict[str, int]: ...
    def queued(self, limit: int) -> list[dict[str, Any]]: ...
    def scheduled(self, limit: int) -> list[dict[str, Any]]: ...
    def running(self, limit: int) -> list[dict[str, Any]]: ...
    def failed(self, limit: int) -> list[dict[str, Any]]: ...
    def job(self, job_id: str) -> dict[str, Any] | None: ...
    def job_ids(self, prefix: str, limit: int) -> list[str]: ...
    def attempts(self, job_id: str) -> list[dict[str, Any]]: ...
    def history(
        self, limit: int, task: str | None = None, state: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]: ...
    def finished_since(self, since: float, task: str | None = None) -> list[dict[str, Any]]: ...
    def last_run(self, task: str) -> dict[str, Any] | None: ...
    def has_task(self, task: str) -> bool: ...
    def retryable(self, limit: int, task: str | None = None) -> list[dict[str, Any]]: ...
    def results(self, limit: int | None = None) -> list[dict[str, Any]]: ...
    def result(self, task: str) -> dict[str, Any] | None: ...


class SqliteRegistry:
    def __init__(self, path: Path, queue: str, tz: tzinfo | None = None, busy_timeout: float = 5.0):
        self.queue = queue
        self.tz = tz
        self.db = Database(sqlite3.connect(path, timeout=busy_timeout), execute_plugins=False)

    @classmethod
    def read_only(cls, path: Path, queue: str, tz: tzinfo | None = None) -> SqliteRegistry:
        "For readers that must never create or change the file (a web app)."
        registry = cls.__new__(cls)
        registry.queue, registry.tz = queue, tz
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        registry.db = Database(conn, execute_plugins=False)
        return registry

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for row in self.db.query("SELECT state, n FROM taskctl_counts WHERE queue = ?", [self.queue]):
            # 'due' is the moment between the schedule and the queue.
            state = "queued" if row["state"] == "due" else row["state"]
            counts[state] = counts.get(state, 0) + row["n"]
        return counts

    def queued(self, limit: int) -> list[dict[str, Any]]:
        return self._jobs("state = 'queued'", "priority DESC, seq", limit)

    def scheduled(self, limit: int) -> list[dict[str, Any]]:
        return self._jobs("state IN ('scheduled', 'retrying')", "eta, seq", limit)

    def running(self, limit: int) -> list[dict[str, Any]]:
        return self._jobs("state = 'running'", "started_at", limit)

    def failed(self, limit: int) -> list[dict[str, Any]]:
        return self._jobs("state = 'failed'", "finished_at DESC", limit)

    def job(self, job_id: str) -> dict[str, Any] | None:
        jobs = self._jobs("id = ?", "id", 1, [job_id])
        return jobs[0] if jobs else None

    def job_ids(self, prefix: str, limit: int) -> list[str]:
        "Ids that start with `prefix` (a range on the primary key, not a scan)."
        # `+queue`: the planner would otherwise pick a queue index and sort the whole table.
        sql = "SELECT id FROM taskctl_jobs WHERE id >= ? AND id < ? AND +queue = ? ORDER BY id LIMIT ?"
        return [row["id"] for row in self.db.query(sql, [prefix, prefix + "\U0010ffff", self.queue, limit])]

    def attempts(self, job_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT attempt, started_at, finished_at, duration, worker, outcome, error_type, error_message, "
            "traceback FROM taskctl_attempts WHERE job_id = ? ORDER BY attempt",
            [job_id],
        )
        return [
            {
                **row,
                "started_at": iso(row["started_at"], self.tz),
                "finished_at": iso(row["finished_at"], self.tz),
                "error": _error(row["error_type"], row["error_message"]),
            }
            for row in rows
        ]

    def history(
        self, limit: int, task: str | None = None, state: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        "Finished jobs, newest first."
        where, params = [_FINISHED], []
        for clause, value in (("task = ?", task), ("state = ?", state), ("finished_at >= ?", since)):
            if value is not None:
                where.append(clause)
                params.append(value)
        return self._jobs(" AND ".join(where), "finished_at DESC", limit, params)

    def finished_since(self, since: float, task: str | None = None) -> list[dict[str, Any]]:
        "What `stats` counts: every finished job since `since`, as raw numbers."
        sql = f"SELECT task, state, finished_at, duration FROM taskctl_jobs WHERE queue = ? AND {_FINISHED} "
        sql += "AND finished_at >= ?" + (" AND task = ?" if task else "")
        return list(self.db.query(sql, [self.queue, since, *([task] if task else [])]))

    def last_run(self, task: str) -> dict[str, Any] | None:
        "The task's latest job that ran to an end (succeeded or failed)."
        jobs = self._jobs(
            f"task = ? AND {_FINISHED} AND state IN ('succeeded', 'failed')", "finished_at DESC", 1, [task]
        )
        return jobs[0] if jobs else None

    def retryable(self, limit: int, task: str | None = None) -> list[dict[str, Any]]:
        "Failed jobs not retried yet, in the order they failed."
        where = "state = 'failed' AND retried_as IS NULL" + (" AND task = ?" if task else "")
        return self._jobs(where, "finished_at", limit, [task] if task else [])

    def has_task(self, task: str) -> bool:
        return bool(
            list(self.db.query("SELECT 1 FROM taskctl_jobs WHERE queue = ? AND task = ? LIMIT 1", [self.queue, task]))
        )

    def results(self, limit: int | None = None) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT task, job_id, value, computed_at, duration FROM taskctl_results WHERE queue = ? "
            "ORDER BY task LIMIT ?",
            [self.queue, -1 if limit is None else limit],
        )
        return [self._result(row) for row in rows]

    def result(self, task: str) -> dict[str, Any] | None:
        "The cached result of `task`, by full name or a unique suffix."
        rows = list(
            self.db.query(
                "SELECT task, job_id, value, computed_at, duration FROM taskctl_results "
                "WHERE queue = ? AND (task = ? OR task LIKE ? ESCAPE '\\') ORDER BY task = ? DESC",
                [self.queue, task, "%." + _escape_like(task), task],
            )
        )
        if not rows or (len(rows) > 1 and rows[0]["task"] != task):
            return None
        return self._result(rows[0])

    def _jobs(self, where: str, order: str, limit: int, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        sql = f"SELECT {_JOB_COLUMNS} FROM taskctl_jobs WHERE queue = ? AND {where} ORDER BY {order} LIMIT ?"
        return [self._job(row) for row in self.db.query(sql, [self.queue, *params, limit])]

    def _job(self, row: dict[str, Any]) -> dict[str, Any]:
        worker = None
        if row["worker_host"]:
            worker = f"{row['worker_host']}:{row['worker_pid']}/{row['worker_thread']}"
        return {
            "id": row["id"],
            "task": row["task"],
            "state": "queued" if row["state"] == "due" else row["state"],
            "args": _loads(row["args"], []),
            "kwargs": _loads(row["kwargs"], {}),
            "priority": int(row["priority"]) if row["priority"] == int(row["priority"]) else row["priority"],
            "eta": iso(row["eta"], self.tz),
            "enqueued_at": iso(row["enqueued_at"], self.tz),
            "started_at": iso(row["started_at"], self.tz),
            "finished_at": iso(row["finished_at"], self.tz),
            "duration": row["duration"],
            "attempts": row["attempts"],
            "worker": worker,
            "error": _error(row["error_type"], row["error_message"]),
            "error_type": row["error_type"],
            "traceback": row["traceback"],
            "result_preview": row["result_preview"],
            "retry_of": row["retry_of"],
            "retried_as": row["retried_as"],
        }

    def _result(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "task": row["task"],
            "job_id": row["job_id"],
            "value": json.loads(row["value"]),
            "computed_at": iso(row["computed_at"], self.tz),
            "computed_at_epoch": row["computed_at"],
            "duration": row["duration"],
        }


def _error(kind: str | None, message: str | None) -> str | None:
    if not kind:
        return None
    return f"{kind}: {message}" if message else kind


def _loads(text: str | None, default: Any) -> Any:
    return default if text is None else json.loads(text)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
