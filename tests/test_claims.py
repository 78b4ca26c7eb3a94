"""Only the worker holding a job's claim may end or move it, on each engine.

A worker whose lease ran out (it stalled: a GC pause, a suspended laptop) has its
job recovered and claimed by another. What the stale worker reports afterwards
must not touch the job its successor is running.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest
from conftest import Project

from taskctl.app import App, build_app
from taskctl.config import load_settings


def in_thread(name: str, action: Any, *args: Any) -> Any:
    "Run `action` in a thread called `name` (a worker's identity is host, pid and thread)."
    out: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: out.setdefault("value", action(*args)), name=name)
    worker.start()
    worker.join()
    return out.get("value")


def stalled(project: Project, task: str, *args: Any) -> tuple[App, str, Any]:
    "A job claimed by A, whose lease runs out, and recovered; returns A's task."
    project.write_config(taskctl="lease = 0.2")
    app = build_app(load_settings(project.config))
    job_id = app.resolve(task).wrapper(*args).id
    stale = in_thread("A", app.huey.dequeue)
    time.sleep(0.3)
    assert app.store.recover_lost() == 1
    return app, job_id, stale


def test_a_stale_workers_retry_does_not_take_the_job_from_its_new_worker(project: Project, tmp_path) -> None:
    app, job_id, stale = stalled(project, "flaky", str(tmp_path / "n"), 9)
    assert in_thread("B", app.huey.dequeue).id == job_id  # a retry was left: B has it now
    in_thread("A", app.huey.execute, stale)  # A's late attempt fails, and Huey retries it
    job = project.job(job_id)
    assert job["state"] == "running" and job["worker"].endswith("/B")
    assert project.status()["counts"]["queued"] == 0  # not back in the queue for a third worker


def test_a_stale_worker_cannot_mark_a_recovered_job_expired(project: Project) -> None:
    app, job_id, stale = stalled(project, "perishable")  # no retries: recovery fails it
    time.sleep(1.1)  # past its `expires`: A's late look at it finds it expired
    in_thread("A", app.huey.execute, stale)
    job = project.job(job_id)
    assert (job["state"], job["error_type"], job["attempts"]) == ("failed", "WorkerLost", 1)


@pytest.mark.sqlite
def test_two_apps_in_one_process_keep_their_jobs_apart(project: Project) -> None:
    "An app owns its bindings: a task of app A calling a task queues it on A, not on the app built last."
    other = project.root / "other.toml"
    other.write_text(project.config.read_text().replace('"taskctl.db"', '"other.db"'))
    first = build_app(load_settings(project.config))
    second = build_app(load_settings(other))  # built last
    first.wrapper(f"{project.module}.fan_out")(2)
    first.huey.execute(first.huey.dequeue())
    assert [j.task for j in first.record.queued(10)] == [f"{project.module}.add"] * 2
    assert second.record.queued(10) == [] and second.record.history(10) == []
    second.wrapper(f"{project.module}.add")(1)  # and through the second app, to its own database
    assert len(second.record.queued(10)) == 1 and len(first.record.queued(10)) == 2


def test_the_heartbeat_renews_only_the_job_a_worker_thread_is_running(project: Project) -> None:
    "A thread that claimed again never wrote its earlier job's outcome: that job's lease runs out."
    project.write_config(taskctl="lease = 1")
    app = build_app(load_settings(project.config))
    abandoned, current = app.resolve("add").wrapper(1).id, app.resolve("add").wrapper(2).id
    in_thread("A", app.huey.dequeue)
    in_thread("A", app.huey.dequeue)  # its outcome of the first job never reached the record
    time.sleep(1.1)
    assert app.store.renew_leases([os.getpid()]) == 1
    assert app.store.recover_lost() == 1
    assert (project.job(abandoned)["state"], project.job(abandoned)["error_type"]) == ("failed", "WorkerLost")
    assert project.job(current)["state"] == "running"
