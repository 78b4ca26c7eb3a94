"""Retention: the [retention] settings, `purge` applying them, batched deletes, the built-in prune job."""

from __future__ import annotations

import json
import time

import pytest
from sqlite_utils import Database

from taskctl import retention
from taskctl.app import App, build_app
from taskctl.config import load_settings
from taskctl.engines.sqlite_prune import BATCH

# SQLite's own tables, SQL and query plans; the Redis engine has tests/test_redis_engine.py.
pytestmark = pytest.mark.sqlite

DAY = 86400.0


def finished_jobs(app: App, task: str, n: int, age: float = 0.0, fail: bool = False) -> list[str]:
    "`n` jobs of `task` through the real write path (queue, claim, outcome), finished `age` seconds ago."
    info, storage = app.resolve(task), app.store
    ids = []
    for i in range(n):
        job = info.wrapper.task_class((i,), {})
        app.huey.enqueue(job)
        assert storage.dequeue() is not None
        if fail:
            storage.record_error(job.id, ValueError(f"failure {i}"), "Traceback ...", final=True)
        else:
            storage.record_success(job.id, i)
            app.huey.put(job.id, i)  # as Huey does: its own copy of the value, until read
        ids.append(job.id)
    if age:
        db = Database(app.settings.database)
        with db.conn:
            db.conn.executemany(
                "UPDATE taskctl_jobs SET finished_at = finished_at - ? WHERE id = ?", [(age, i) for i in ids]
            )
    return ids


def counts(db: Database) -> dict[str, int]:
    "Counts by state, checked against the trigger-kept table."
    exact = dict(db.execute("SELECT state, count(*) FROM taskctl_jobs GROUP BY state").fetchall())
    kept = {s: n for s, n in db.execute("SELECT state, n FROM taskctl_counts").fetchall() if n}
    assert exact == kept
    return exact


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("keep = 14", "[retention] keep must be a duration with a unit"),
        ('keep_failed = "soon"', "[retention] keep_failed 'soon' is not a duration"),
        ('keep = "0d"', "[retention] keep must be more than 0"),
        ("max_per_task = 0", "[retention] max_per_task must be a positive integer"),
        ('schedule = "hourly"', "[retention] schedule 'hourly' must be a cron expression"),
        ('forever = "yes"', "unknown setting [retention] forever"),
    ],
)
def test_retention_settings_are_checked(project, setting, message):
    project.write_config(extra=f"[retention]\n{setting}\n")
    result = project.cli("tasks")
    assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_no_schedule_means_no_prune_job(project):
    project.write_config(extra='[retention]\nschedule = ""\n')
    names = [t["name"] for t in json.loads(project.ok("tasks", "--json"))["tasks"]]
    assert "taskctl.retention.prune" not in names and names


def test_purge_applies_retention(project):
    project.write_config(extra='[retention]\nkeep = "1d"\nkeep_failed = "3d"\nmax_per_task = 5\n')
    app = build_app(load_settings(project.config))
    old = finished_jobs(app, "add", 10, age=2 * DAY)
    failed_recently = finished_jobs(app, "boom", 3, age=2 * DAY, fail=True)
    failed_long_ago = finished_jobs(app, "boom", 2, age=4 * DAY, fail=True)
    recent = finished_jobs(app, "echo", 12)
    waiting = project.enqueue("add", "1")
    db = Database(project.database)
    before_kv = db.execute("SELECT count(*) FROM kv").fetchone()[0]

    result = project.cli("purge", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "10  finished jobs older than 1 day (failed ones apart)" in result.stderr
    assert "2  failed jobs older than 3 days" in result.stderr
    assert "7  jobs of" in result.stderr and "beyond the newest 5" in result.stderr
    assert "Deleted 19 rows." in result.stdout

    left = {row[0] for row in db.execute("SELECT id FROM taskctl_jobs").fetchall()}
    assert left == {*failed_recently, *recent[-5:], waiting}
    assert not left & {*old, *failed_long_ago}
    assert counts(db) == {"failed": 3, "succeeded": 5, "queued": 1}
    orphans = "SELECT count(*) FROM taskctl_attempts WHERE job_id NOT IN (SELECT id FROM taskctl_jobs)"
    assert db.execute(orphans).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM kv").fetchone()[0] == before_kv - 17  # the deleted successes' values
    assert "Nothing to purge past [retention] (keep 1 day, failed jobs 3 days" in project.cli("purge", "--yes").stderr


def test_deletes_go_in_small_batches(project):
    app = build_app(load_settings(project.config))
    finished_jobs(app, "add", BATCH * 2 + 50, age=30 * DAY)
    selection = retention.history(time.time() - DAY)
    assert app.store.count(selection) == BATCH * 2 + 50
    batches: list[int] = []
    assert app.store.delete(selection, batches.append) == BATCH * 2 + 50
    assert batches == [BATCH, BATCH, 50]
    assert counts(Database(project.database)) == {}


def test_the_prune_job_runs_in_the_consumer(project):
    app = build_app(load_settings(project.config))
    finished_jobs(app, "add", 20, age=15 * DAY)
    kept = finished_jobs(app, "add", 3)
    prune = project.enqueue("prune")
    project.burst()
    job = project.job(prune)
    assert job["state"] == "succeeded", job["error"]
    db = Database(project.database)
    left = {row[0] for row in db.execute("SELECT id FROM taskctl_jobs").fetchall()}
    assert left == {*kept, prune}
    value = json.loads(project.ok("results", "prune", "--json"))["value"]
    assert value == {"keep": 20, "keep_failed": 0, "max_per_task": 0}


def test_a_large_purge_shows_a_progress_bar_in_a_terminal(project):
    import os
    import pty
    import subprocess
    import threading

    from conftest import subprocess_env

    from taskctl.cli.steer import PROGRESS_FROM

    app = build_app(load_settings(project.config))
    finished_jobs(app, "add", PROGRESS_FROM + 10)
    main, replica = pty.openpty()
    seen: list[bytes] = []

    def read_terminal() -> None:  # drained as it comes, so the bar never blocks on a full terminal
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            project.command("purge", "--history", "--yes"),
            stdout=subprocess.PIPE,
            stderr=replica,
            text=True,
            timeout=120,
            cwd=project.root,
            env={**subprocess_env(), "COLUMNS": "100"},
        )
    finally:
        os.close(replica)
        reader.join(timeout=5)
        os.close(main)
    assert done.returncode == 0 and f"Deleted {PROGRESS_FROM + 10:,} rows." in done.stdout
    terminal = b"".join(seen).decode(errors="replace")
    assert "Deleting" in terminal and f"/{PROGRESS_FROM + 10}" in terminal.replace(",", "")
