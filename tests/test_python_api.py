"""What the README promises a project using taskctl from Python: its task API, and the data helper."""

from __future__ import annotations

import importlib
import threading
from datetime import UTC, datetime, timedelta

from taskctl.app import build_app
from taskctl.config import load_settings
from taskctl.datadb import open_data, writing


def test_schedule_map_and_revoke_as_the_readme_shows(project):
    build_app(load_settings(project.config))
    tasks = importlib.import_module(project.module)
    later = tasks.add.schedule((1, 2), delay=3600)
    at = datetime.now(UTC) + timedelta(days=1)
    dated = tasks.echo.schedule(kwargs={"value": "x"}, eta=at)
    tasks.add.map([(1, 2), (3, 4)])  # a ResultGroup; indexing it would wait for the results
    revoked = tasks.add(5, 6)
    revoked.revoke()
    jobs = {job["id"]: job for job in project.status()["queued"]}
    assert {later.id, dated.id, revoked.id} <= set(jobs) and len(jobs) == 5
    mapped = [job_id for job_id, job in jobs.items() if job["args"] in ([1, 2], [3, 4]) and job_id != later.id]
    assert jobs[later.id]["args"] == [1, 2] and jobs[later.id]["eta"] is not None
    assert jobs[dated.id]["kwargs"] == {"value": "x"}
    assert abs(datetime.fromisoformat(jobs[dated.id]["eta"]) - at) < timedelta(seconds=1)
    project.burst()
    assert project.job(revoked.id)["state"] == "revoked"
    assert sorted(project.job(job_id)["result_preview"] for job_id in mapped) == ["3", "7"]
    assert project.job(later.id)["state"] == "scheduled"


def test_writers_creating_the_same_table_at_once_do_not_collide(tmp_path):
    path, errors, threads = tmp_path / "data.db", [], 8
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        db = open_data(path)
        start.wait()
        try:
            for batch in range(5):
                with writing(db):
                    db["events"].insert_all([{"id": f"{n}-{batch}-{i}", "n": n} for i in range(20)], pk="id")
        except Exception as exc:  # collected: an exception in a thread would pass unseen
            errors.append(exc)
        finally:
            db.close()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    db = open_data(path)
    assert db["events"].count == threads * 5 * 20 and db.journal_mode == "wal"
