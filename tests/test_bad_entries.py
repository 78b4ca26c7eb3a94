"""What the consumer does with queue entries it cannot run, and with a database it cannot write."""

from __future__ import annotations

import pickle
import sqlite3

from conftest import Project

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
