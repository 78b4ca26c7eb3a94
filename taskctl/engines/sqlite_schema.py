"""Append-only schema steps for taskctl's own tables.

Huey's tables (task, schedule, kv, counter) are Huey's: taskctl's are prefixed
`taskctl_`. Never edit a step that has shipped; add a new one below it, and its
name to STEPS in sqlite_file.py (which readers check without sqlite-utils).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from taskctl.engines.sqlite_file import APPLICATION_ID

migrations = Migrations("taskctl")


@migrations()
def m001_jobs(db: Database) -> None:
    # One row per job: it is the record *and* the queue entry (data is the
    # serialized message while the job waits or runs), so the two can never
    # disagree.
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS taskctl_jobs (
            id TEXT PRIMARY KEY,
            queue TEXT NOT NULL,
            task TEXT,
            args TEXT,
            kwargs TEXT,
            state TEXT NOT NULL,
            priority REAL NOT NULL DEFAULT 0,
            eta REAL,
            seq INTEGER NOT NULL,
            data BLOB,
            retries INTEGER NOT NULL DEFAULT 0,
            enqueued_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            duration REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            worker_host TEXT,
            worker_pid INTEGER,
            worker_thread TEXT,
            lease_until REAL,
            error_type TEXT,
            error_message TEXT,
            traceback TEXT,
            result_preview TEXT
        )
        """
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS taskctl_jobs_queued "
        "ON taskctl_jobs (queue, priority DESC, seq) WHERE state = 'queued'"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS taskctl_jobs_scheduled "
        "ON taskctl_jobs (queue, eta) WHERE state IN ('scheduled', 'retrying')"
    )
    db.execute("CREATE INDEX IF NOT EXISTS taskctl_jobs_state ON taskctl_jobs (queue, state, finished_at)")
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS taskctl_results (
            queue TEXT NOT NULL,
            task TEXT NOT NULL,
            job_id TEXT NOT NULL,
            value TEXT NOT NULL,
            computed_at REAL NOT NULL,
            duration REAL,
            PRIMARY KEY (queue, task)
        )
        """
    )


@migrations()
def m002_jobs_by_task(db: Database) -> None:
    # Periodic de-duplication asks "was this task queued this minute?", and
    # per-task history and stats ask the same shape of question.
    db.execute("CREATE INDEX IF NOT EXISTS taskctl_jobs_task ON taskctl_jobs (queue, task, enqueued_at)")


@migrations()
def m003_counts(db: Database) -> None:
    # `status` shows counts by state; counting a million history rows takes
    # ~100ms, so triggers keep the counts as the rows change, in the same
    # transaction, whoever writes them (Huey's flush, a purge, a migration).
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS taskctl_counts (
            queue TEXT NOT NULL,
            state TEXT NOT NULL,
            n INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (queue, state)
        ) WITHOUT ROWID
        """
    )
    db.execute("DELETE FROM taskctl_counts")
    db.execute(
        "INSERT INTO taskctl_counts (queue, state, n) "
        "SELECT queue, state, count(*) FROM taskctl_jobs GROUP BY queue, state"
    )
    add = (
        "INSERT INTO taskctl_counts (queue, state, n) VALUES (new.queue, new.state, 1) "
        "ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;"
    )
    remove = "UPDATE taskctl_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;"
    db.execute(f"CREATE TRIGGER IF NOT EXISTS taskctl_count_insert AFTER INSERT ON taskctl_jobs BEGIN {add} END")
    db.execute(f"CREATE TRIGGER IF NOT EXISTS taskctl_count_delete AFTER DELETE ON taskctl_jobs BEGIN {remove} END")
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS taskctl_count_update AFTER UPDATE OF state ON taskctl_jobs "
        f"WHEN old.state IS NOT new.state BEGIN {remove} {add} END"
    )


@migrations()
def m004_owner(db: Database) -> None:
    # Which consumer claimed a running job: its heartbeat renews only those leases.
    db.execute("ALTER TABLE taskctl_jobs ADD COLUMN owner TEXT")


@migrations()
def m005_attempts_and_history(db: Database) -> None:
    # `show` lists every attempt of a job, not only the last; a job row keeps
    # its latest error, an attempt row its own.
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS taskctl_attempts (
            job_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            duration REAL,
            worker TEXT,
            outcome TEXT NOT NULL,
            error_type TEXT,
            error_message TEXT,
            traceback TEXT,
            PRIMARY KEY (job_id, attempt)
        )
        """
    )
    # Whoever deletes a job (a purge, retention, Huey's flush) deletes its attempts.
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS taskctl_attempts_cascade AFTER DELETE ON taskctl_jobs "
        "BEGIN DELETE FROM taskctl_attempts WHERE job_id = old.id; END"
    )
    # `taskctl retry` makes a new job; each of the two names the other.
    db.execute("ALTER TABLE taskctl_jobs ADD COLUMN retry_of TEXT")
    db.execute("ALTER TABLE taskctl_jobs ADD COLUMN retried_as TEXT")
    # Only finished jobs have finished_at: history, stats, `tasks` and
    # retention read them newest first, overall or per task.
    db.execute(
        "CREATE INDEX IF NOT EXISTS taskctl_jobs_finished "
        "ON taskctl_jobs (queue, finished_at) WHERE finished_at IS NOT NULL"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS taskctl_jobs_task_finished "
        "ON taskctl_jobs (queue, task, finished_at) WHERE finished_at IS NOT NULL"
    )


@migrations()
def m006_consumers_and_meta(db: Database) -> None:
    # Which consumers are alive (a heartbeat each), so `move` can refuse while one
    # runs; and facts about the database itself, such as where it was moved.
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS taskctl_consumers (
            owner TEXT PRIMARY KEY,
            queue TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at REAL NOT NULL,
            beat_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE TABLE IF NOT EXISTS taskctl_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migrations()
def m007_periodic_slots(db: Database) -> None:
    # One row per periodic run queued: (task, minute) is unique, and written in the
    # enqueue's transaction, so two consumers (or a restart) never queue one slot twice.
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS taskctl_slots (
            queue TEXT NOT NULL,
            task TEXT NOT NULL,
            slot REAL NOT NULL,
            job_id TEXT NOT NULL,
            PRIMARY KEY (queue, task, slot)
        ) WITHOUT ROWID
        """
    )


@migrations()
def m008_consumer_details(db: Database) -> None:
    # What `taskctl workers` shows of a consumer: its version, workers, config, and
    # the pids of its worker processes (the jobs it runs), as one JSON text.
    db.execute("ALTER TABLE taskctl_consumers ADD COLUMN about TEXT")


@migrations()
def m009_catalog(db: Database) -> None:
    # What a consumer runs (its tasks, schedules, options), written as it starts, so
    # `status` and `tasks` show it without importing Huey or the task modules.
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS taskctl_catalog (
            queue TEXT PRIMARY KEY,
            recorded_at REAL NOT NULL,
            catalog TEXT NOT NULL
        )
        """
    )


@migrations()
def m010_no_jobs_by_enqueue_time(db: Database) -> None:
    # m002's index served periodic de-duplication, which taskctl_slots does now; it
    # only cost every enqueue a page. A task's history reads taskctl_jobs_task_finished.
    db.execute("DROP INDEX IF EXISTS taskctl_jobs_task")


def migrate(conn: sqlite3.Connection, huey_ddl: Sequence[str] = ()) -> list[str]:
    """Make the database taskctl's and apply pending steps, in one transaction (Huey's
    own tables too), so no crash leaves a half-made database that is not marked as
    taskctl's. BEGIN IMMEDIATE makes concurrent first opens take turns. Returns the
    steps applied."""
    db = Database(conn, execute_plugins=False)
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    if app_id == APPLICATION_ID and not migrations.pending(db):
        return []
    conn.execute("BEGIN IMMEDIATE")
    try:
        pending = [m.name for m in migrations.pending(db)]  # again: another process may have applied them
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        for sql in huey_ddl:
            conn.execute(sql)
        migrations.apply(db)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return pending
