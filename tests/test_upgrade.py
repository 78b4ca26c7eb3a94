"""A database written by an earlier release keeps working: its queued pickles
run, and its history, failures and cached results read as before.

tests/data/legacy-1e8c527.sqlite was made by commit 1e8c527 with the task
module tests/data/legacy_jobs.py: add(1, 2), boom("why") and echo({"café": [1, 2]})
ran; add(40, b=2), add(5) at priority 3 and a 30-day delayed echo("later") wait.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest

from taskctl.engines.sqlite_file import APPLICATION_ID
from tests.conftest import Project

DATA = Path(__file__).parent / "data"
QUEUED = ("10262e39-4588-4454-904c-d5c110230bb1", "56e721b2-b017-4649-9efe-036112b93514")
SCHEDULED = "8b368ed2-f595-46e5-af5e-6703400e3c18"
FAILED = "36cb2fcc-02a6-4940-be92-29da02ca4eff"


@pytest.fixture
def legacy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.delenv("TASKCTL_CONFIG", raising=False)
    shutil.copy(DATA / "legacy-1e8c527.sqlite", tmp_path / "taskctl.db")
    shutil.copy(DATA / "legacy_jobs.py", tmp_path / "legacy_jobs.py")
    project = Project(tmp_path, "legacy_jobs")
    project.config.write_text(
        textwrap.dedent("""
            [taskctl]
            modules = ["legacy_jobs"]
            database = "taskctl.db"
            poll_interval = 0.1
        """)
    )
    return project


READING = (["status"], ["show", FAILED[:8]], ["history"], ["results"], ["stats"], ["tasks"])


def test_reading_commands_do_not_upgrade_an_old_database_but_say_what_does(legacy: Project) -> None:
    before = legacy.database.read_bytes()
    for args in READING:
        result = legacy.cli(*args)
        assert result.exit_code == 1, args
        assert "written by an earlier taskctl" in result.stderr and "taskctl upgrade" in result.stderr, args
        assert "Traceback" not in result.stderr
    assert legacy.database.read_bytes() == before
    assert sorted(p.name for p in legacy.root.glob("taskctl.db*")) == ["taskctl.db"]  # no -wal, no -shm
    upgraded = legacy.ok("upgrade")
    assert upgraded.startswith("upgraded") and "m006_consumers_and_meta" in upgraded
    assert legacy.ok("upgrade").strip().endswith("is up to date")
    conn = sqlite3.connect(legacy.database)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_an_old_database_reads_as_before(legacy: Project) -> None:
    legacy.ok("upgrade")
    status = legacy.status()
    assert status["counts"]["queued"] == 2 and status["counts"]["scheduled"] == 1
    assert status["counts"]["succeeded"] == 2 and status["counts"]["failed"] == 1
    assert [j["id"] for j in status["queued"]] == [QUEUED[1], QUEUED[0]]  # priority 3 first
    assert status["failed"][0]["error"] == "ValueError: why"
    results = {r["task"]: r["value"] for r in status["results"]}
    assert results == {"legacy_jobs.add": 3, "legacy_jobs.echo": {"café": [1, 2]}}
    shown = json.loads(legacy.ok("show", FAILED[:8], "--json"))
    assert shown["job"]["args"] == ["why"] and shown["attempts"][0]["outcome"] == "failed"
    assert "ValueError: why" in shown["attempts"][0]["traceback"]


def test_an_old_database_runs_its_queued_jobs_and_retries(legacy: Project) -> None:
    assert legacy.ok("retry", FAILED[:8]).startswith("retried")
    legacy.burst()
    history = json.loads(legacy.ok("history", "--json", "--limit", "100"))["jobs"]
    states = {j["id"]: j["state"] for j in history}
    assert states[QUEUED[0]] == states[QUEUED[1]] == "succeeded"
    assert legacy.job(SCHEDULED)["state"] == "scheduled"  # 30 days away still
    results = {r["task"]: r["value"] for r in legacy.status()["results"]}
    assert results["legacy_jobs.add"] in (42, 5)
    retried = json.loads(legacy.ok("show", FAILED, "--json"))["job"]["retried_as"]
    assert legacy.job(retried)["state"] == "failed"  # boom("why") fails again, with its original argument
    assert legacy.job(retried)["error"] == "ValueError: why"
