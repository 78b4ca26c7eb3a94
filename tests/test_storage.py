"""taskctl's schema and its read side, on real SQLite files."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlite_utils import Database

from taskctl.engines.sqlite_schema import migrate, migrations

# SQLite's own tables, SQL and query plans; the Redis engine has tests/test_redis_engine.py.
pytestmark = pytest.mark.sqlite


def test_migrating_an_empty_database_gives_the_final_schema(tmp_path):
    db = Database(tmp_path / "empty.db")
    migrate(db.conn)
    assert set(db.table_names()) >= {
        "taskctl_jobs", "taskctl_results", "taskctl_counts", "taskctl_attempts", "_sqlite_migrations",
    }  # fmt: skip
    assert set(db["taskctl_jobs"].columns_dict) == {
        "id", "queue", "task", "args", "kwargs", "state", "priority", "eta", "seq", "data",
        "retries", "enqueued_at", "started_at", "finished_at", "duration", "attempts",
        "worker_host", "worker_pid", "worker_thread", "lease_until", "error_type",
        "error_message", "traceback", "result_preview", "owner", "retry_of", "retried_as",
    }  # fmt: skip
    assert set(db["taskctl_results"].columns_dict) == {
        "queue", "task", "job_id", "value", "computed_at", "duration",
    }  # fmt: skip
    # Each index costs every write of a job: these, and no more.
    assert {i.name for i in db["taskctl_jobs"].indexes if not i.name.startswith("sqlite_")} == {
        "taskctl_jobs_queued", "taskctl_jobs_scheduled", "taskctl_jobs_state",
        "taskctl_jobs_finished", "taskctl_jobs_task_finished",
    }  # fmt: skip
    applied = [m.name for m in migrations.applied(db)]
    assert applied == [m.name for m in migrations._migrations]
    migrate(db.conn)  # a second run changes nothing
    assert [m.name for m in migrations.applied(db)] == applied


def test_status_queries_use_indexes(project):
    project.enqueue("add", "1")
    db = Database(project.database)
    plans = {
        "queued": "SELECT id FROM taskctl_jobs WHERE queue = 'taskctl' AND state = 'queued' "
        "ORDER BY priority DESC, seq LIMIT 20",
        "failed": "SELECT id FROM taskctl_jobs WHERE queue = 'taskctl' AND state = 'failed' "
        "ORDER BY finished_at DESC LIMIT 20",
        "scheduled": "SELECT id FROM taskctl_jobs WHERE queue = 'taskctl' "
        "AND state IN ('scheduled', 'retrying') ORDER BY eta, seq LIMIT 20",
    }
    assert_indexed(db, plans)


def assert_indexed(db: Database, plans: dict[str, str]) -> None:
    "Each query searches an index: no table scan, no sort of every match (ties may be sorted)."
    for name, sql in plans.items():
        plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql).fetchall())
        assert "SEARCH taskctl_jobs USING" in plan and "SCAN" not in plan, (name, plan)
        assert "TEMP B-TREE FOR ORDER BY" not in plan, (name, plan)


def test_importing_taskctl_does_not_import_huey():
    code = "import sys, taskctl; from taskctl import latest_result; print('huey' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def exact_counts(db: Database) -> dict[str, int]:
    return dict(db.execute("SELECT state, count(*) FROM taskctl_jobs GROUP BY state").fetchall())


def kept_counts(db: Database) -> dict[str, int]:
    return {s: n for s, n in db.execute("SELECT state, n FROM taskctl_counts").fetchall() if n}


def test_counts_table_follows_every_change(project, tmp_path):
    for _ in range(3):
        project.enqueue("add", "1")
    project.enqueue("boom")
    project.enqueue("flaky", str(tmp_path / "n"))
    project.enqueue("add", "2", "--delay", "1h")
    db = Database(project.database)
    assert kept_counts(db) == exact_counts(db) == {"queued": 6}  # the delayed one too, as in Huey
    project.burst()
    assert kept_counts(db) == exact_counts(db) == {"succeeded": 4, "failed": 1, "scheduled": 1}
    from taskctl.app import build_app
    from taskctl.config import load_settings

    build_app(load_settings(project.config)).store.flush_schedule()
    assert kept_counts(db) == exact_counts(db) == {"succeeded": 4, "failed": 1}
    assert project.status()["counts"]["succeeded"] == 4


def test_counts_migration_backfills_existing_rows(tmp_path):
    db = Database(tmp_path / "old.db")
    migrations.apply(db, stop_before="m003_counts")
    db.execute(
        "INSERT INTO taskctl_jobs (id, queue, state, seq, enqueued_at) VALUES "
        "('a', 'q', 'succeeded', 1, 0), ('b', 'q', 'succeeded', 2, 0), ('c', 'q', 'failed', 3, 0)"
    )
    db.conn.commit()
    migrate(db.conn)
    assert kept_counts(db) == exact_counts(db) == {"succeeded": 2, "failed": 1}


def test_cron_matching_follows_daylight_saving_time(tmp_path):
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from taskctl.app import cron_matcher

    new_york = ZoneInfo("America/New_York")

    def runs(expr: str, start: datetime, hours: int) -> list[str]:
        matches = cron_matcher(expr, new_york)
        minutes = (start + timedelta(minutes=m) for m in range(hours * 60))
        # Huey passes naive UTC datetimes, at any second of the minute.
        return [m.strftime("%H:%M") for m in minutes if matches(m.replace(tzinfo=None, second=17))]

    fall_back = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)  # 00:00 EDT; 01:00-02:00 happens twice
    assert runs("30 1 * * *", fall_back, 5) == ["05:30"]  # once, not twice
    assert runs("0 * * * *", fall_back, 5) == ["04:00", "05:00", "06:00", "07:00", "08:00"]
    spring_forward = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST; 02:00-03:00 never happens
    assert runs("30 2 * * *", spring_forward, 4) == ["07:00"]  # at 03:00 EDT, not skipped
    assert runs("0 * * * *", spring_forward, 4) == ["05:00", "06:00", "07:00", "08:00"]


def two_consumers(project, lease: float):
    "Two apps on one database, as two consumers would be (here in one process)."
    from taskctl.app import build_app
    from taskctl.config import load_settings

    project.write_config(taskctl=f"lease = {lease}")
    return build_app(load_settings(project.config)), build_app(load_settings(project.config))


def test_a_claimed_job_is_lost_only_when_its_lease_runs_out(project):
    import os
    import time

    first, second = two_consumers(project, lease=0.5)
    job_id = project.enqueue("add", "1")
    assert first.store.dequeue() is not None  # claimed by the first consumer
    assert second.store.recover_lost() == 0  # its process is alive, its lease too
    time.sleep(0.3)
    assert first.store.renew_leases([os.getpid()]) == 1
    assert second.store.renew_leases([os.getpid()]) == 0  # not the second one's job
    time.sleep(0.3)
    assert second.store.recover_lost() == 0  # renewed in time
    time.sleep(0.6)
    assert second.store.recover_lost() == 1  # no heartbeat: lost, though the pid lives
    job = project.job(job_id)
    assert (job["state"], job["error_type"]) == ("failed", "WorkerLost")  # no retries left


def test_an_error_never_overwrites_a_finished_job(project):
    (app, _) = two_consumers(project, lease=60)
    job_id = project.enqueue("add", "1")
    assert app.store.dequeue() is not None
    app.store.record_success(job_id, 1)
    app.store.record_error(job_id, RuntimeError("late"), "tb", final=True)
    job = project.job(job_id)
    assert (job["state"], job["error"]) == ("succeeded", None)


def test_a_pre_execute_cancel_is_recorded_as_revoked(project):
    from huey.exceptions import CancelExecution

    (app, _) = two_consumers(project, lease=60)

    @app.huey.pre_execute()
    def refuse(task):
        raise CancelExecution()

    job_id = project.enqueue("add", "1")
    app.huey.execute(app.huey.dequeue())
    job = project.job(job_id)
    assert (job["state"], job["attempts"]) == ("revoked", 0)


def test_next_run_counts_the_current_minute_until_it_has_run(project):
    from datetime import UTC, datetime, timedelta

    from taskctl.app import build_app
    from taskctl.config import load_settings

    project.write_config(schedules='"sample" = "* * * * *"')
    app = build_app(load_settings(project.config))
    info = app.resolve("sample")
    now = datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0)
    assert app.next_run(info, now).timestamp() == minute.timestamp()  # due in this minute
    project.enqueue("sample")  # by hand: it takes no slot
    assert app.next_run(info, now).timestamp() == minute.timestamp()
    for _ in range(2):  # the scheduler's check, twice in the minute (a restart, a second consumer)
        for task in app.huey.read_periodic(now.replace(tzinfo=None)):
            app.huey.enqueue(task)
    assert app.next_run(info, now).timestamp() == (minute + timedelta(minutes=1)).timestamp()
    assert project.status()["counts"]["queued"] == 2  # by hand, and one periodic run (yearly is not due)


def test_a_late_success_of_a_job_failed_as_lost_is_recorded(project):
    import time

    (app, _) = two_consumers(project, lease=0.1)
    job_id = project.enqueue("add", "1")
    retried_id = project.enqueue("add", "2")
    for _ in range(2):
        assert app.store.dequeue() is not None
    time.sleep(0.2)
    assert app.store.recover_lost() == 2  # failed as WorkerLost: no retries
    project.ok("retry", retried_id)
    app.store.record_success(job_id, 1)  # the worker finishes after all
    app.store.record_success(retried_id, 2)
    job = project.job(job_id)
    assert (job["state"], job["error_type"], job["result_preview"]) == ("succeeded", None, "1")
    assert project.job(retried_id)["state"] == "failed"  # retried already: the link to its retry stands
    outcomes = "SELECT outcome, error_type FROM taskctl_attempts WHERE job_id = ?"
    assert Database(project.database).execute(outcomes, [job_id]).fetchall() == [("succeeded", None)]
    assert Database(project.database).execute(outcomes, [retried_id]).fetchall() == [("succeeded", "LateOutcome")]


def test_a_claimed_job_put_back_unrun_is_not_an_attempt(project):
    "Huey reschedules a claimed job that is not ready to run yet (clocks apart between hosts)."
    from datetime import datetime

    (app, _) = two_consumers(project, lease=60)
    job_id = project.enqueue("add", "1")
    task = app.huey.dequeue()
    task.eta = datetime(2100, 1, 1)
    app.huey.execute(task)  # not ready: back on the schedule, not run
    job = project.job(job_id)
    assert (job["state"], job["attempts"], job["started_at"], job["worker"]) == ("scheduled", 0, None, None)
    assert Database(project.database).execute("SELECT count(*) FROM taskctl_attempts").fetchone()[0] == 0


def test_steering_queries_use_indexes(project):
    project.enqueue("add", "1")
    db = Database(project.database)
    plans = {
        "id prefix": "SELECT id FROM taskctl_jobs WHERE id >= 'ab' AND id < 'ac' AND +queue = 'taskctl' "
        "ORDER BY id LIMIT 6",
        "retention keep": "SELECT rowid FROM taskctl_jobs WHERE queue = 'taskctl' "
        "AND state IN ('succeeded', 'revoked', 'expired') AND finished_at < 5 LIMIT 500",
        "history": "SELECT id FROM taskctl_jobs WHERE queue = 'taskctl' AND finished_at IS NOT NULL "
        "ORDER BY finished_at DESC LIMIT 20",
        "history of a task": "SELECT id FROM taskctl_jobs WHERE queue = 'taskctl' AND finished_at IS NOT NULL "
        "AND task = 'x' ORDER BY finished_at DESC LIMIT 20",
    }
    assert_indexed(db, plans)


def test_an_outcome_counts_only_from_the_worker_that_holds_the_claim(project):
    "A's lease ran out and B claimed the job again: A's late success must not overwrite B's run."
    import threading
    import time

    (app, _) = two_consumers(project, lease=0.1)
    job_id = project.enqueue("slow_retried", "0")

    def in_thread(name: str, action) -> None:
        worker = threading.Thread(target=action, name=name)
        worker.start()
        worker.join()

    in_thread("A", app.store.dequeue)
    time.sleep(0.2)
    assert app.store.recover_lost() == 1  # back in the queue, its one retry used up
    in_thread("B", app.store.dequeue)
    in_thread("A", lambda: app.store.record_success(job_id, "from A"))
    job = project.job(job_id)
    assert job["state"] == "running" and job["worker"].endswith("/B")
    in_thread("B", lambda: app.store.record_success(job_id, "from B"))
    assert project.job(job_id)["result_preview"] == '"from B"'
    attempts = (
        Database(project.database)
        .execute("SELECT outcome, error_type FROM taskctl_attempts ORDER BY attempt")
        .fetchall()
    )
    assert attempts == [("succeeded", "LateOutcome"), ("succeeded", None)]  # A's late success, on A's attempt
