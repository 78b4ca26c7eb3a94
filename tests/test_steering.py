"""Steering jobs: cancel, retry and purge, through the real CLI and a real consumer."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest
from conftest import stop, subprocess_env, wait_until
from sqlite_utils import Database


def test_cancel_revokes_queued_and_scheduled_jobs(project):
    later = project.enqueue("add", "2", "--delay", "1h")
    project.burst()  # a worker moves it to the schedule
    queued = project.enqueue("add", "1")
    kept = project.enqueue("add", "3")
    result = project.cli("cancel", queued[:8], later)
    assert result.exit_code == 0, result.stderr
    assert f"revoked {queued} ({project.module}.add); it was queued" in result.stdout
    assert "it was scheduled" in result.stdout
    assert project.status()["counts"]["revoked"] == 2
    project.burst()
    assert project.job(queued)["state"] == "revoked" and project.job(queued)["attempts"] == 0
    assert project.job(later)["state"] == "revoked" and project.job(kept)["state"] == "succeeded"
    revoked = json.loads(project.ok("history", "--state", "revoked", "--json"))["jobs"]
    assert {j["id"] for j in revoked} == {queued, later}


def test_cancel_refuses_finished_unknown_and_running_jobs(project, tmp_path):
    done = project.enqueue("add", "1")
    project.burst()
    result = project.cli("cancel", done, "ffff0000")
    assert result.exit_code == 2  # the unknown id is a usage error, the finished job a refusal
    assert "has already finished (succeeded); only waiting jobs can be cancelled" in result.stderr
    assert "no job with an id starting 'ffff0000'" in result.stderr
    marker = tmp_path / "started"
    running = project.enqueue("slow", "2", f"marker={marker}")
    consumer = project.start_consumer()
    try:
        wait_until(marker.exists, what="the slow job to start")
        result = project.cli("cancel", running)
        assert result.exit_code == 1
        assert "is running on" in result.stderr and "Huey cannot stop a running task" in result.stderr
    finally:
        stop(consumer)
    assert project.job(running)["state"] == "succeeded"


def test_retry_requeues_a_failed_job_with_its_arguments_and_links_both(project):
    failed = project.enqueue("boom", "message=first")
    project.enqueue("add", "1")
    project.burst()
    result = project.cli("retry", failed[:8])
    assert result.exit_code == 0, result.stderr
    new_id = result.stdout.strip().rsplit(" as ", 1)[1]
    new = project.job(new_id)
    assert new["state"] == "queued" and new["kwargs"] == {"message": "first"} and new["retry_of"] == failed
    assert project.job(failed)["retried_as"] == new_id
    shown_new, shown_old = project.ok("show", new_id), project.ok("show", failed)
    assert "retry of" in shown_new and failed in shown_new
    assert "retried as" in shown_old and new_id in shown_old
    again = project.cli("retry", failed)
    assert again.exit_code == 1 and f"was already retried as {new_id}" in again.stderr
    project.burst()
    assert project.job(new_id)["state"] == "failed"
    assert project.job(new_id)["error"] == "ValueError: first"


def test_retry_failed_takes_every_failure_not_yet_retried(project):
    first = project.enqueue("boom")
    second = project.enqueue("boom")
    ok = project.enqueue("add", "1")
    project.burst()
    done = project.cli("retry", "--failed", "--task", "boom")
    assert done.exit_code == 0 and done.stdout.count("retried ") == 2
    assert project.job(first)["retried_as"] and project.job(second)["retried_as"]
    assert project.status()["counts"]["queued"] == 2
    nothing = project.cli("retry", "--failed")
    assert nothing.exit_code == 0 and "No failed jobs to retry" in nothing.stderr
    refused = project.cli("retry", ok)
    assert refused.exit_code == 1 and "did not fail (its state is succeeded)" in refused.stderr
    for args, message in (
        ([], "give the ids of failed jobs, or --failed"),
        ([ok, "--failed"], "not both"),
        ([ok, "--task", "add"], "--task goes with --failed"),
    ):
        result = project.cli("retry", *args)
        assert result.exit_code == 2 and message in result.stderr


def test_a_lost_job_can_be_retried(project, tmp_path):
    marker = tmp_path / "started"
    job_id = project.enqueue("slow", "30", f"marker={marker}")
    consumer = project.start_consumer()
    wait_until(marker.exists, what="the job to start")
    consumer.kill()  # the worker dies mid-job, with no retry left
    consumer.communicate()
    project.burst()  # the next consumer finds it lost
    lost = project.job(job_id)
    assert lost["state"] == "failed" and lost["error_type"] == "WorkerLost"
    attempts = json.loads(project.ok("show", job_id, "--json"))["attempts"]
    assert [a["outcome"] for a in attempts] == ["lost"]
    result = project.cli("retry", job_id)
    assert result.exit_code == 0 and project.job(job_id)["retried_as"]


def test_purge_asks_first_and_refuses_without_a_terminal(project):
    for n in range(3):
        project.enqueue("add", str(n))
    result = project.cli("purge", "--queued")
    assert result.exit_code == 2
    assert "purge would delete 3 rows; pass --yes to confirm" in result.stderr
    assert "3  queued jobs" in result.stderr
    assert project.status()["counts"]["queued"] == 3  # nothing deleted
    assert _purge_in_terminal(project, "n\n").returncode == 1
    assert project.status()["counts"]["queued"] == 3
    done = _purge_in_terminal(project, "y\n")
    assert done.returncode == 0 and "Deleted 3 rows." in done.stdout
    assert project.status()["counts"]["queued"] == 0


def _purge_in_terminal(project, answer: str) -> subprocess.CompletedProcess[str]:
    "`purge --queued` with a terminal on stdin, answering the question with `answer`."
    main, replica = pty.openpty()
    try:
        os.write(main, answer.encode())
        return subprocess.run(
            project.command("purge", "--queued"),
            stdin=replica,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=project.root,
            env=subprocess_env(),
        )
    finally:
        os.close(main)
        os.close(replica)


@pytest.mark.sqlite
def test_purge_each_kind(project):
    project.enqueue("add", "1", "2")
    project.enqueue("boom")
    later = project.enqueue("add", "6", "--delay", "1h")
    project.burst()  # later is on the schedule now
    queued = project.enqueue("add", "5")
    db = Database(project.database)
    # Huey keeps what nobody read: the value of add(1, 2) and the error of boom().
    assert db.execute("SELECT count(*) FROM kv").fetchone()[0] == 2

    out = project.ok("purge", "--results", "--yes")
    assert "Deleted 3 rows." in out
    assert project.status()["results"] == [] and db.execute("SELECT count(*) FROM kv").fetchone()[0] == 0

    project.ok("purge", "--scheduled", "--yes")
    assert project.status()["counts"]["scheduled"] == 0 and project.job(queued)["state"] == "queued"
    assert db.execute("SELECT 1 FROM taskctl_jobs WHERE id = ?", [later]).fetchall() == []

    assert "Nothing to purge." in project.cli("purge", "--history", "--older-than", "1h", "--yes").stderr
    project.ok("purge", "--history", "--state", "failed", "--yes")
    assert project.status()["counts"]["failed"] == 0 and project.status()["counts"]["succeeded"] == 1
    project.ok("purge", "--history", "--yes")
    counts = project.status()["counts"]
    assert counts["succeeded"] == 0 and counts["queued"] == 1  # history only; the queue is untouched
    assert db.execute("SELECT count(*) FROM taskctl_attempts").fetchone()[0] == 0  # attempts went too

    for args, message in (
        (["--older-than", "1d"], "--older-than and --state go with --history"),
        (["--history", "--older-than", "soon"], "is not a duration"),
        (["--task", "add"], "--task goes with"),
    ):
        result = project.cli("purge", *args)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert Path(project.database).exists()


def test_a_failed_job_whose_retry_was_purged_can_be_retried_again(project):
    failed = project.enqueue("boom")
    project.burst()
    project.ok("retry", failed)
    project.ok("purge", "--queued", "--yes")  # the retry is gone before it ran
    assert "No failed jobs to retry" in project.cli("retry", "--failed").stderr  # --failed never repeats one
    again = project.cli("retry", failed[:8].upper())  # prefixes are not case-sensitive
    assert again.exit_code == 0, again.stderr
    assert project.job(failed)["retried_as"] == again.stdout.strip().rsplit(" as ", 1)[1]


def test_purge_refuses_a_bare_number_of_seconds(project):
    project.enqueue("add", "1")
    project.burst()
    result = project.cli("purge", "--history", "--older-than", "7", "--yes")
    assert result.exit_code == 2 and "--older-than '7' needs a unit, like 7d" in result.stderr
    assert project.status()["counts"]["succeeded"] == 1
    assert "[retention]" in project.ok("purge", "--help")  # help text is not read as markup
