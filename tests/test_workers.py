"""Consumers you can see: `taskctl workers`, the consumers line of `status`, overdue jobs."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import replace

import pytest
from conftest import stop, wait_until

from taskctl import presence
from taskctl.app import build_app
from taskctl.config import load_settings


def _workers(project) -> list[dict]:
    return json.loads(project.ok("workers", "--json"))["consumers"]


def test_workers_lists_a_live_consumer_with_its_job_and_a_clean_stop_deregisters_it(project, tmp_path):
    marker = tmp_path / "started"
    job_id = project.enqueue("slow", "10", f"marker={marker}")  # running while read, even on a loaded machine
    consumer = project.start_consumer("--workers", "2")
    try:
        wait_until(marker.exists, what="the job to start", consumer=consumer)
        [listed] = wait_until(lambda: _workers(project), what="the consumer to register", consumer=consumer)
        status = project.status()
        table = project.ok("workers")
    finally:
        consumer.send_signal(signal.SIGTERM)  # a graceful stop; the second interrupts the job
        time.sleep(0.2)
        _, err = stop(consumer, signal.SIGTERM)
    assert consumer.returncode == 0, err
    assert (listed["pid"], listed["alive"]) == (consumer.pid, True)
    assert (listed["workers"], listed["worker_type"]) == (2, "thread")
    assert listed["config"] == str(project.config) and listed["version"] == presence.taskctl_version()
    assert [job["id"] for job in listed["running"]] == [job_id]
    assert listed["running"][0]["overdue"] is False
    assert [c["pid"] for c in status["consumers"]] == [consumer.pid]
    assert f":{consumer.pid}" in table and "alive" in table and "slow" in table
    # Stopped cleanly: gone from the list at once.
    assert _workers(project) == []
    assert "No consumer is running, and none died lately" in project.ok("workers")


def test_a_killed_consumer_is_shown_dead_then_forgotten(project):
    project.enqueue("add", "1")  # the database exists before `workers` reads it
    consumer = project.start_consumer()
    try:
        wait_until(lambda: _workers(project), what="the consumer to register", consumer=consumer)
    finally:
        stop(consumer, signal.SIGKILL)
    [dead] = _workers(project)
    assert (dead["pid"], dead["alive"]) == (consumer.pid, False)
    assert "dead" in project.ok("workers")
    assert project.status()["consumers"] == []

    # One dead for more than a day is not shown, and the next consumer's heartbeat forgets it.
    app = build_app(load_settings(project.config))
    [entry] = app.record.consumers()
    long_ago = time.time() - presence.FORGET_AFTER - 60
    app.store.beat(replace(entry, owner=app.store.owner, beat_at=long_ago, started_at=long_ago), forget_before=0)
    assert len(app.record.consumers()) == 2
    assert [c["pid"] for c in _workers(project)] == [consumer.pid]
    project.burst()
    assert [c.owner for c in app.record.consumers()] == [entry.owner]


@pytest.mark.sqlite  # engine-neutral; both engines list consumers above
def test_status_says_plainly_when_jobs_wait_and_no_consumer_is_alive(project):
    project.enqueue("add", "1")
    out = project.ok("status")
    assert "No consumer is running: 1 job(s) wait" in out
    assert project.status()["consumers"] == []
    project.burst()
    assert "Consumers: none running" in project.ok("status")


def test_a_job_past_its_timeout_on_a_thread_worker_is_flagged_overdue(project):
    job_id = project.enqueue("hangs", "30")  # timeout=1, which a thread worker cannot enforce
    consumer = project.start_consumer()
    try:
        running = wait_until(
            lambda: [j for j in project.status()["running"] if j["overdue"]], what="the job to be overdue"
        )
        table = project.ok("status")
        [listed] = _workers(project)
    finally:
        stop(consumer, signal.SIGKILL)
    assert [j["id"] for j in running] == [job_id]
    assert "overdue" in table
    assert [(j["id"], j["overdue"]) for j in listed["running"]] == [(job_id, True)]


def test_the_schema_keeps_what_workers_shows(tmp_path):
    from sqlite_utils import Database

    from taskctl.engines.sqlite_schema import migrate

    db = Database(tmp_path / "empty.db")
    migrate(db.conn)
    assert set(db["taskctl_consumers"].columns_dict) == {
        "owner", "queue", "host", "pid", "started_at", "beat_at", "about",
    }  # fmt: skip
