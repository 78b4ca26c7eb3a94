"""What the consumer does with queue entries it cannot run, and with a database it cannot write."""

from __future__ import annotations

import os
import pickle
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Project, wait_until
from redis import Redis
from redis_support import start_redis
from redis_support import stop as stop_redis

from taskctl.app import build_app
from taskctl.config import load_settings
from taskctl.engines import redis_scripts


def kept_bytes(project: Project, job_id: str) -> bytes | None:
    "The queue entry's bytes as the record keeps them."
    if project.engine == "sqlite":
        (data,) = sqlite3.connect(project.database).execute("SELECT data FROM taskctl_jobs WHERE id = ?", (job_id,))
        return bytes(data[0])
    app = build_app(load_settings(project.config))
    return app.store.conn.hget(redis_scripts.job_key(project.module, job_id), "data")  # type: ignore[attr-defined]


def test_a_corrupt_or_foreign_queue_entry_fails_at_once_and_is_kept(project: Project) -> None:
    app = build_app(load_settings(project.config))
    entries = [b"\x80\x04not a pickle", pickle.dumps({"a": "foreign message"})]
    for data in entries:
        app.store.enqueue(data)  # as another program writing Huey's queue would
    fine = project.enqueue("add", "1", "2")

    project.run("run-consumer", "--burst", timeout=30)  # it ends: nothing is left running
    status = project.status()
    assert status["counts"].get("running", 0) == 0
    failed = {job["id"]: job for job in status["failed"]}
    assert len(failed) == 2 and {job["error_type"] for job in failed.values()} == {"UndeliverableMessage"}
    assert all("kept for inspection" in job["error"] for job in failed.values())
    assert sorted(kept_bytes(project, job_id) or b"" for job_id in failed) == sorted(entries)
    assert project.job(fine)["state"] == "succeeded"


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """The file made read-only for its owner; as root, whom permissions do not stop,
    immutable (chattr +i) instead, else the test is skipped."""
    path.chmod(0o444)
    immutable = False
    if os.access(path, os.W_OK):
        immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
        if not immutable:
            path.chmod(0o644)
            pytest.skip("running as root without chattr +i: no way to make the database read-only")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(done.stderr.splitlines()) == 2, done.stderr  # the banner, then the error
    return error


@pytest.mark.sqlite
def test_a_consumer_on_a_read_only_database_stops_with_one_line(project: Project) -> None:
    job_id = project.enqueue("add", "1", "2")
    with read_only(project.database):
        for args in (["--burst"], []):  # the long-running consumer too
            error = one_error_line(project.run("run-consumer", *args, timeout=30))
            assert f"cannot write the record at {project.database}: the database is read-only" in error
    assert project.job(job_id)["state"] == "queued"  # nothing lost: it runs once the file is writable
    project.burst()
    assert project.job(job_id)["state"] == "succeeded"


@pytest.mark.redis
def test_a_consumer_stops_when_redis_refuses_writes_mid_run(project: Project) -> None:
    url, server = start_redis()  # its own: it is made a replica, which no other test may see
    consumer = None
    try:
        project.url = url
        project.write_config(taskctl="lease = 1")  # a heartbeat every 0.25 s
        first = project.enqueue("add", "1", "2")
        consumer = project.start_consumer()
        wait_until(lambda: project.job(first)["state"] == "succeeded", what="the first job", consumer=consumer)
        Redis.from_url(url).replicaof("127.0.0.1", "1")  # a replica of nothing: every write is refused
        _, err = consumer.communicate(timeout=30)
        done = subprocess.CompletedProcess(consumer.args, consumer.returncode, "", err)
        assert "Redis refuses writes (a read-only replica)" in one_error_line(done)
    finally:
        if consumer is not None and consumer.poll() is None:
            consumer.kill()
        stop_redis(server)
