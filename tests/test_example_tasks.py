"""The offline example tasks, run by a real consumer."""

from __future__ import annotations

import json
import sqlite3


def use_examples(project) -> None:
    project.config.write_text(
        '[taskctl]\nmodules = ["tasks.samples", "tasks.inserts"]\ndatabase = "taskctl.db"\n'
        'poll_interval = 0.1\n\n[data]\ndatabase = "data.db"\n'
    )


def test_sample_system_records_a_measurement(project):
    use_examples(project)
    job_id = project.enqueue("sample_system")
    project.burst()
    job = project.job(job_id)
    assert job["state"] == "succeeded", job["error"]
    row = (
        sqlite3.connect(project.root / "data.db")
        .execute("select load_1m, disk_free_bytes, disk_free_pct from samples")
        .fetchall()
    )
    assert len(row) == 1 and row[0][0] >= 0 and row[0][1] > 0 and 0 < row[0][2] <= 100
    assert json.loads(job["result_preview"])["disk_free_bytes"] == row[0][1]


def test_insert_batches_spread_a_large_insert(project):
    use_examples(project)
    batches = [[{"n": i * 10 + j} for j in range(10)] for i in range(5)]
    for i, rows in enumerate(batches):
        project.enqueue("insert_batch", "numbers", json.dumps(rows), 'pk="n"', "--priority", str(i))
    project.enqueue("insert_batch", "numbers", json.dumps(batches[0]), 'pk="n"')  # a repeat: upserted
    project.burst()
    assert project.status()["counts"]["succeeded"] == 6
    db = sqlite3.connect(project.root / "data.db")
    assert db.execute("select count(*), min(n), max(n) from numbers").fetchone() == (50, 0, 49)
    # Two workers creating the table at once must not cost a retry.
    record = sqlite3.connect(project.database)
    assert record.execute("select max(attempts) from taskctl_jobs").fetchone()[0] == 1
