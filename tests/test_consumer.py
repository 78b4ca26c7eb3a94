"""A real consumer in a subprocess, on a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from datetime import datetime

import pytest
from conftest import stop, wait_until

from taskctl import latest_result


def test_burst_runs_a_job_and_records_success(project):
    job_id = project.enqueue("add", "2", "3")
    project.burst()
    job = project.job(job_id)
    assert job["state"] == "succeeded"
    assert job["attempts"] == 1
    assert job["result_preview"] == "5"
    assert job["started_at"] and job["finished_at"] and job["duration"] >= 0
    assert job["worker"].split(":")[0] == os.uname().nodename
    status = project.status()
    assert status["counts"]["succeeded"] == 1 and status["counts"]["queued"] == 0
    result = next(r for r in status["results"] if r["task"].endswith(".add"))
    assert (result["value"], result["job_id"]) == (5, job_id)


def test_failing_job_keeps_its_traceback_and_the_consumer_goes_on(project):
    bad = project.enqueue("boom", "message=disk on fire")
    good = project.enqueue("add", "1")
    log = project.burst().stderr
    assert f".boom {bad} failed: ValueError: disk on fire" in log
    assert "Traceback" not in log  # one line in the log; the traceback is in the record
    job = project.job(bad)
    assert job["state"] == "failed"
    assert job["error"] == "ValueError: disk on fire"
    assert "Traceback (most recent call last)" in job["traceback"]
    assert "raise ValueError(message)" in job["traceback"]
    assert project.job(good)["state"] == "succeeded"
    failed = project.status()["failed"]
    assert [f["id"] for f in failed] == [bad] and failed[0]["attempts"] == 1


def test_job_that_retries_then_succeeds(project, tmp_path):
    marker = tmp_path / "attempts"
    job_id = project.enqueue("flaky", str(marker), "failures=2")
    project.burst()
    job = project.job(job_id)
    assert job["state"] == "succeeded"
    assert job["attempts"] == 3
    assert marker.read_text() == "3"
    assert job["result_preview"] == '"ok after 3"'


def test_job_that_exhausts_its_retries_fails(project, tmp_path):
    job_id = project.enqueue("flaky", str(tmp_path / "n"), "failures=5")
    project.burst()
    job = project.job(job_id)
    assert (job["state"], job["attempts"]) == ("failed", 3)
    assert job["error"] == "RuntimeError: attempt 3 fails"


def test_wait_prints_the_result(project):
    consumer = project.start_consumer()
    try:
        done = project.run("enqueue", "add", "20", "22", "--wait", "--timeout", "30")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == 42
        failed = project.run("enqueue", "boom", "--wait", "--timeout", "30")
        assert failed.returncode == 1
        assert failed.stdout == ""
        assert "ValueError: boom" in failed.stderr and "Traceback" not in failed.stderr
    finally:
        stop(consumer)


def test_wait_times_out_clearly_without_a_consumer(project):
    done = project.run("enqueue", "add", "1", "--wait", "--timeout", "0.5")
    assert done.returncode == 1
    assert "still queued after 0.5s" in done.stderr and "run-consumer" in done.stderr


def test_periodic_task_from_config_runs_as_a_job(project):
    project.write_config(schedules='"sample" = "* * * * *"')
    consumer = project.start_consumer()
    try:
        wait_until(project.record_ready, what="the consumer to create the database")
        wait_until(
            lambda: any(r["task"].endswith(".sample") for r in project.status()["results"]),
            60,
            "the periodic task to run",
            consumer,
        )
    finally:
        _, err = stop(consumer)
    assert consumer.returncode == 0, err
    status = project.status()
    assert status["counts"]["succeeded"] >= 1
    result = next(r for r in status["results"] if r["task"].endswith(".sample"))
    assert result["value"] == {"value": 42}


def test_cached_results_survive_a_restart_and_are_readable_from_python(project):
    first = project.enqueue("echo", "value=first")
    project.burst()
    project.burst()  # a second consumer run: the cache is in the database, not the process
    cached = latest_result("echo", config=project.config)
    assert cached is not None and cached.value == "first" and cached.job_id == first
    value, computed_at, *_ = cached
    assert value == "first" and computed_at.tzinfo is not None

    second = project.enqueue("echo", "value=[1, 2]")
    project.burst()
    # Straight from the database (a SQLite path, or a redis:// URL and the queue's name).
    database, queue = (project.url, project.module) if project.url else (project.database, "taskctl")
    cached = latest_result(f"{project.module}.echo", database=database, queue=queue)
    assert (cached.value, cached.job_id) == ([1, 2], second)
    assert latest_result("add", config=project.config) is None


def test_ctrl_c_lets_the_running_job_finish(project, tmp_path):
    marker = tmp_path / "started"
    job_id = project.enqueue("slow", "1.5", f"marker={marker}")
    consumer = project.start_consumer()
    try:
        wait_until(marker.exists, what="the job to start", consumer=consumer)
        assert project.job(job_id)["state"] == "running"
    finally:
        _, err = stop(consumer, signal.SIGINT)
    assert consumer.returncode == 0, err
    assert "Traceback" not in err
    assert "Stopping (SIGINT): running jobs finish first" in err
    job = project.job(job_id)
    assert job["state"] == "succeeded" and job["result_preview"] == "1.5"


@pytest.mark.sqlite
def test_a_killed_consumer_loses_nothing(project, tmp_path):
    marker = tmp_path / "started"
    once = project.enqueue("slow", "30", f"marker={marker}")
    retried = project.enqueue("slow_retried", "30", f"marker={tmp_path / 'retry'}")
    consumer = project.start_consumer("--workers", "2")
    try:
        wait_until(lambda: marker.exists() and (tmp_path / "retry").exists(), what="both jobs to start")
    finally:
        stop(consumer, signal.SIGKILL)
    assert {project.job(once)["state"], project.job(retried)["state"]} == {"running"}

    # The next consumer on this host sees the dead worker at once.
    project.burst()
    lost = project.job(once)
    assert lost["state"] == "failed" and lost["error_type"] == "WorkerLost"
    recovered = project.job(retried)
    assert recovered["state"] == "succeeded" and recovered["result_preview"] == '"second run"'
    assert recovered["attempts"] == 2
    # The lost attempt used up the job's one retry, in the message Huey reads too.
    db = sqlite3.connect(project.database)
    assert db.execute("select retries from taskctl_jobs where id = ?", (retried,)).fetchone()[0] == 0


@pytest.mark.sqlite
def test_synchronous_normal_by_default_and_full_on_request(project):
    project.enqueue("add", "1")
    from taskctl.app import build_app
    from taskctl.config import load_settings

    app = build_app(load_settings(project.config))
    assert app.store.sql("pragma synchronous", results=True)[0][0] == 1  # NORMAL
    assert app.store.sql("pragma journal_mode", results=True)[0][0] == "wal"
    project.write_config(taskctl='synchronous = "full"')
    app = build_app(load_settings(project.config))
    assert app.store.sql("pragma synchronous", results=True)[0][0] == 2  # FULL


@pytest.mark.sqlite
def test_record_and_queue_are_one_row(project):
    job_id = project.enqueue("add", "1")
    db = sqlite3.connect(project.database)
    assert db.execute("select count(*) from task").fetchone()[0] == 0  # Huey's own queue stays empty
    state, data = db.execute("select state, data from taskctl_jobs where id = ?", (job_id,)).fetchone()
    assert state == "queued" and data is not None
    project.burst()
    state, data = db.execute("select state, data from taskctl_jobs where id = ?", (job_id,)).fetchone()
    assert state == "succeeded" and data is None


def test_revoked_and_expired_jobs_are_recorded_and_not_run(project):
    from taskctl.app import build_app
    from taskctl.config import load_settings

    revoked = project.enqueue("add", "1")
    build_app(load_settings(project.config)).huey.revoke_by_id(revoked)
    expired = project.enqueue("perishable")
    time.sleep(1.2)
    project.burst()
    assert (project.job(revoked)["state"], project.job(revoked)["attempts"]) == ("revoked", 0)
    assert (project.job(expired)["state"], project.job(expired)["result_preview"]) == ("expired", None)
    counts = project.status()["counts"]
    assert counts["revoked"] == 1 and counts["expired"] == 1


def test_process_workers_stop_a_task_that_hangs(project):
    hung = project.enqueue("hangs", "30")
    fine = project.enqueue("add", "1", "1")
    project.burst("--worker-type", "process", "--workers", "2")
    job = project.job(hung)
    assert job["state"] == "failed" and job["error_type"] == "TaskTimeout"
    assert job["duration"] < 10
    assert project.job(fine)["state"] == "succeeded"


def test_calling_a_task_enqueues_it_and_func_is_the_plain_function(project):
    import importlib

    from taskctl.app import build_app
    from taskctl.config import load_settings

    build_app(load_settings(project.config))
    module = importlib.import_module(project.module)
    assert module.add.func(2, 3) == 5
    handle = module.add(2, 3)
    job = project.job(handle.id)
    assert (job["state"], job["args"]) == ("queued", [2, 3])
    project.burst()
    assert handle.get(blocking=True, timeout=5) == 5


def test_minimal_two_line_config_works(project):
    project.config.write_text(f'[taskctl]\nmodules = ["{project.module}"]\ndatabase = "data/jobs.db"\n')
    job_id = project.enqueue("add", "4")
    assert (project.root / "data" / "jobs.db").exists()  # relative to the config, folder created
    done = project.run("run-consumer", "--burst")
    assert done.returncode == 0, done.stderr
    assert project.status()["counts"]["succeeded"] == 1
    assert job_id


@pytest.mark.sqlite
def test_a_restart_in_the_same_minute_does_not_run_a_periodic_task_twice(project):
    project.write_config(schedules='"sample" = "* * * * *"')
    for _ in range(2):
        consumer = project.start_consumer()
        try:
            wait_until(project.record_ready, what="the consumer to create the database")
            wait_until(lambda: project.status()["counts"]["succeeded"] >= 1, what="the periodic run", consumer=consumer)
            time.sleep(0.5)  # the restarted scheduler has checked the schedule by now
        finally:
            stop(consumer)
    started = [datetime.fromisoformat(j) for j in _enqueued_times(project)]
    minutes = {t.replace(second=0, microsecond=0) for t in started}
    assert len(started) == len(minutes), started  # one run per minute at most


def _enqueued_times(project) -> list[str]:
    db = sqlite3.connect(project.database)
    return [
        datetime.fromtimestamp(t).isoformat()
        for (t,) in db.execute("select enqueued_at from taskctl_jobs where task like '%.sample'")
    ]


def test_a_job_whose_task_is_gone_fails_clearly(project, tmp_path):
    job_id = project.enqueue("add", "1")
    module = tmp_path / f"{project.module}.py"
    module.write_text(module.read_text().replace("def add(", "def renamed_add("))
    project.burst()
    job = project.job(job_id)
    assert job["state"] == "failed" and job["error_type"] == "UnknownTask"
    assert f"{project.module}.add is not a task of this consumer" in job["error"]


def test_task_output_is_shown_as_text_not_markup(project):
    job_id = project.enqueue("echo", "[red]alert\x1b[2J")
    project.burst()
    out = project.ok("status")
    assert "[red]alert" in out and "\\u001b[2J" in out  # the value as JSON, its escape escaped
    assert "\x1b" not in out
    assert project.job(job_id)["state"] == "succeeded"


def test_a_task_that_exits_fails_instead_of_hanging_the_queue(project):
    job_id = project.enqueue("exits", "3")
    after = project.enqueue("add", "1")
    done = project.run("run-consumer", "--burst", timeout=30)
    assert done.returncode == 0, done.stderr
    job = project.job(job_id)
    assert job["state"] == "failed" and job["error_type"] == "SystemExit"
    assert project.job(after)["state"] == "succeeded"


def test_context_tasks_take_no_task_argument_from_the_command_line(project):
    job_id = project.enqueue("whoami")
    project.burst()
    assert project.job(job_id)["result_preview"] == json.dumps(job_id)


def test_burst_waits_for_the_next_step_of_a_pipeline(project):
    import importlib

    from taskctl.app import build_app
    from taskctl.config import load_settings

    build_app(load_settings(project.config))
    module = importlib.import_module(project.module)
    pipeline = module.add.s(1, 2).then(module.add, 10).then(module.add, 100)
    results = module.add.huey.enqueue(pipeline)
    project.burst()
    assert [r.get(blocking=True, timeout=5) for r in results] == [3, 13, 113]
    assert project.status()["counts"]["succeeded"] == 3


def test_ctrl_c_keeps_the_job_owned_while_it_finishes(project, tmp_path):
    # A short lease: without heartbeats during the graceful shutdown, a second
    # consumer would take the job and run it again.
    project.write_config(taskctl="lease = 1")
    marker = tmp_path / "started"
    job_id = project.enqueue("slow", "3", f"marker={marker}")
    first = project.start_consumer()
    try:
        wait_until(marker.exists, what="the job to start")
        first.send_signal(signal.SIGINT)
        time.sleep(1.5)  # past the lease
        second = project.run("run-consumer", "--burst")
        assert second.returncode == 0, second.stderr
    finally:
        _, err = stop(first)
    job = project.job(job_id)
    assert (job["state"], job["attempts"]) == ("succeeded", 1), err


def test_a_task_cancelling_itself_for_a_retry_is_retried(project, tmp_path):
    job_id = project.enqueue("cancels_once", str(tmp_path / "marker"))
    project.burst()
    job = project.job(job_id)
    assert (job["state"], job["attempts"], job["result_preview"]) == ("succeeded", 2, '"ran"')


def test_burst_with_process_workers_waits_for_the_next_step_of_a_pipeline(project):
    import importlib

    from taskctl.app import build_app
    from taskctl.config import load_settings

    build_app(load_settings(project.config))
    module = importlib.import_module(project.module)
    results = module.add.huey.enqueue(module.add.s(1, 2).then(module.add, 10).then(module.add, 100))
    project.burst("--worker-type", "process")
    assert [r.get(blocking=True, timeout=5) for r in results] == [3, 13, 113]


def test_an_idle_consumer_wakes_for_a_job_without_polling(project):
    "With a poll interval of a minute, a job queued while the consumer idles still runs at once."
    project.config.write_text(project.config.read_text().replace("poll_interval = 0.1", "poll_interval = 60"))
    consumer = project.start_consumer("--no-periodic")
    try:
        first = project.enqueue("add", "1", "1")
        wait_until(lambda: project.job(first)["state"] == "succeeded", what="the first job", consumer=consumer)
        time.sleep(1)  # the worker is waiting now, with 59 s of its wait left
        second = project.enqueue("add", "2", "2")
        wait_until(
            lambda: project.job(second)["state"] == "succeeded",
            timeout=30,
            what="the job queued while idle",
            consumer=consumer,
        )
    finally:
        stop(consumer)


@pytest.mark.sqlite
def test_a_commit_by_any_connection_ends_a_wait(project):
    from taskctl.engines.sqlite_watch import CommitWatch

    project.enqueue("add", "1")  # the database exists
    watch = CommitWatch(str(project.database))
    while watch.wait(watch.ticket(), 0.5):  # its first read of the version wakes waiters once
        pass
    ticket = watch.ticket()
    conn = sqlite3.connect(project.database)
    conn.execute("UPDATE taskctl_meta SET value = value WHERE 0")  # a write transaction that commits
    conn.execute("INSERT INTO kv (queue, key, value) VALUES ('x', 'y', x'00')")
    conn.commit()
    assert watch.wait(ticket, 30)
    assert watch.wait(ticket, 30)  # a ticket taken before the commit never waits again
