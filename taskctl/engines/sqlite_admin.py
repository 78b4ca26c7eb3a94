"""The SQLite store's housekeeping, apart from job states: which consumers are alive,
whether the database was moved, and the export that `taskctl move` copies."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from taskctl.engines.base import Consumer


class SqliteAdmin:
    "Mixed into JobStorage (a Huey SqliteStorage): `sql`, `db`, `name` and `owner` are its."

    name: str
    owner: str
    sql: Any
    db: Any

    def beat(self, me: Consumer, forget_before: float) -> None:
        "This consumer is alive (`move` refuses while one is, `workers` lists it); long-dead ones are forgotten."
        with self.db(commit=True) as curs:
            curs.execute(
                "INSERT INTO taskctl_consumers (owner, queue, host, pid, started_at, beat_at, about) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET beat_at = excluded.beat_at, about = excluded.about",
                (self.owner, self.name, me.host, me.pid, me.started_at, me.beat_at, me.about()),
            )
            curs.execute("DELETE FROM taskctl_consumers WHERE queue = ? AND beat_at < ?", (self.name, forget_before))

    def register_tasks(self, names: list[str]) -> None:
        "The tasks a consumer serves, kept (with those of earlier ones) for readers that import no task module."
        key = f"tasks/{self.name}"
        with self.db(commit=True) as curs:
            row = curs.execute("SELECT value FROM taskctl_meta WHERE key = ?", (key,)).fetchone()
            known = sorted(set(json.loads(row[0]) if row else ()) | set(names))
            curs.execute("INSERT OR REPLACE INTO taskctl_meta (key, value) VALUES (?, ?)", (key, json.dumps(known)))

    def record_catalog(self, text: str, at: float) -> None:
        "What this consumer runs (catalog.py's JSON), replacing what an earlier one recorded."
        self.sql(
            "INSERT OR REPLACE INTO taskctl_catalog (queue, recorded_at, catalog) VALUES (?, ?, ?)",
            (self.name, at, text),
            commit=True,
        )

    def leave(self) -> None:
        self.sql("DELETE FROM taskctl_consumers WHERE owner = ?", (self.owner,), commit=True)

    def consumers(self, alive_since: float) -> list[Consumer]:
        "Consumers whose last beat is at or after `alive_since`; older entries are forgotten."
        with self.db(commit=True) as curs:
            curs.execute("DELETE FROM taskctl_consumers WHERE queue = ? AND beat_at < ?", (self.name, alive_since))
            rows = curs.execute(
                "SELECT owner, host, pid, started_at, beat_at, queue, about FROM taskctl_consumers "
                "WHERE queue = ? ORDER BY started_at",
                (self.name,),
            ).fetchall()
        return [Consumer.recorded(*row) for row in rows]

    def moved_to(self) -> str | None:
        "Where `taskctl move` copied this database (a URL without its password), if it did."
        rows = self.sql("SELECT value FROM taskctl_meta WHERE key = 'moved_to'", results=True)
        return rows[0][0] if rows else None

    def mark_moved(self, where: str) -> None:
        self.sql("INSERT OR REPLACE INTO taskctl_meta (key, value) VALUES ('moved_to', ?)", (where,), commit=True)

    def export(self, batch: int = 500) -> Iterable[list[dict[str, Any]]]:
        """Every job of this queue with its message and attempts, oldest first, in
        batches: what `taskctl move` copies. Nothing is unpickled."""
        after = -1
        while True:
            with self.db() as curs:
                curs.row_factory = sqlite3.Row
                rows = curs.execute(
                    "SELECT rowid, * FROM taskctl_jobs WHERE queue = ? AND rowid > ? ORDER BY rowid LIMIT ?",
                    (self.name, after, batch),
                ).fetchall()
                jobs = [dict(row) for row in rows]
                for job in jobs:
                    job["attempt_rows"] = [
                        dict(a)
                        for a in curs.execute(
                            "SELECT * FROM taskctl_attempts WHERE job_id = ? ORDER BY attempt", (job["id"],)
                        )
                    ]
            if not jobs:
                return
            after = jobs[-1]["rowid"]
            yield jobs

    def export_results(self) -> list[tuple[str, str, str, float, float | None]]:
        "The cached results: task, job id, the value as JSON, computed at, duration."
        sql = "SELECT task, job_id, value, computed_at, duration FROM taskctl_results WHERE queue = ? ORDER BY task"
        return [tuple(row) for row in self.sql(sql, (self.name,), results=True)]  # type: ignore[misc]
