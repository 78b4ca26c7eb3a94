"""Code from the database: signed messages, and pickles that commands load as plain data only."""

from __future__ import annotations

import json
import pickle
import sqlite3
import stat
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from huey.serializer import Serializer
from redis import Redis

from taskctl.app import App, build_app
from taskctl.config import load_settings
from taskctl.engines import redis_scripts as lua
from taskctl.signing import NotPlainData, load_trusted
from tests.conftest import Project
from tests.test_errors import assert_one_line_error

KEY_LINE = 'signing_key_file = "taskctl.key"'


class Evil:
    "Unpickling it runs code: it creates the file `marker`."

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (open, (str(self.marker), "w"))


def signed(project: Project) -> None:
    assert project.ok("key", "create").strip() == f"created {project.root / 'taskctl.key'}"
    project.write_config(taskctl=KEY_LINE)


def other_app(project: Project, taskctl: str = "") -> App:
    "An app on the same record without this project's key (or with the line `taskctl`)."
    other = project.root / "other.toml"
    other.write_text(project.config.read_text().replace(KEY_LINE, taskctl))
    return build_app(load_settings(other))


def queue_from(app: App, task: str, *args: Any) -> str:
    job = app.resolve(task).wrapper.task_class(args, {})
    app.huey.enqueue(job)
    return job.id


def test_signed_messages_run_and_retry(project):
    signed(project)
    assert stat.S_IMODE((project.root / "taskctl.key").stat().st_mode) == 0o600
    ok, failed = project.enqueue("add", "2", "3"), project.enqueue("boom", "why")
    project.burst()
    assert project.job(ok)["state"] == "succeeded" and project.job(failed)["error"] == "ValueError: why"
    assert project.ok("retry", failed[:8]).startswith("retried")
    project.burst()
    retried = project.job(failed)["retried_as"]
    assert project.job(retried)["error"] == "ValueError: why"  # its original argument, from the signed message


def test_a_signing_consumer_refuses_unsigned_and_forged_messages(project, tmp_path):
    signed(project)
    marker = tmp_path / "pwned"
    unsigned = queue_from(other_app(project), "echo", Evil(marker))
    assert not marker.exists()  # enqueueing never unpickles: the store reads the message it was handed
    forged = queue_from(other_app(project, 'signing_key_env = "TASKCTL_TEST_OTHER_KEY"'), "add", 1)
    good = project.enqueue("add", "1")
    done = project.burst()
    assert "Traceback" not in done.stderr
    assert not marker.exists()  # never unpickled
    assert project.job(good)["state"] == "succeeded"
    for job_id, why in ((unsigned, "not signed"), (forged, "does not match this key")):
        job = project.job(job_id)
        assert (job["state"], job["error_type"]) == ("failed", "BadSignature"), job
        assert why in job["error"]


@pytest.fixture(autouse=True)
def other_key(monkeypatch):
    monkeypatch.setenv("TASKCTL_TEST_OTHER_KEY", "another key, of someone who is not this project")


def test_commands_without_a_key_never_run_code_from_the_database(project, tmp_path):
    failed = project.enqueue("boom", "why")
    project.burst()
    marker = tmp_path / "pwned"
    app = build_app(load_settings(project.config))
    evil = app.huey.serialize_task(app.resolve("boom").wrapper.task_class((Evil(marker),), {}))
    put_message(project, failed, evil)
    for args in (["status"], ["show", failed[:8]], ["history"], ["results"], ["stats"]):
        assert project.cli(*args).exit_code == 0, args
    result = project.cli("retry", failed[:8])
    assert result.exit_code == 1 and "io.open" in result.stderr and "signing" in result.stderr
    assert not marker.exists()
    assert project.job(failed)["retried_as"] is None


def put_message(project: Project, job_id: str, data: bytes) -> None:
    "What someone who can write the record could do: replace a kept message."
    if project.url:
        Redis.from_url(project.url).hset(lua.job_key(project.module, job_id), "data", data)
        return
    conn = sqlite3.connect(project.database)
    conn.execute("UPDATE taskctl_jobs SET data = ? WHERE id = ?", (data, job_id))
    conn.commit()
    conn.close()


def test_plain_data_loads_without_a_key_and_code_does_not(tmp_path):
    value = {"when": datetime(2026, 11, 30, tzinfo=UTC), "amount": Decimal("9.50"), "pair": (1, "a"), "set": {2}}
    assert load_trusted(Serializer(), pickle.dumps(value)) == value
    with pytest.raises(NotPlainData, match=r"io\.open"):
        load_trusted(Serializer(), pickle.dumps([Evil(tmp_path / "pwned")]))
    assert not (tmp_path / "pwned").exists()
    # A few bytes that would build gigabytes: refused before anything is allocated.
    for bomb in (Sized(bytes, 10**12), Sized(bytearray, 10**12), Sized(list, range(10**10))):
        with pytest.raises(NotPlainData, match="from a size or a range"):
            load_trusted(Serializer(), pickle.dumps(bomb))
    for protocol in range(3, pickle.HIGHEST_PROTOCOL + 1):  # how each Python 3 protocol writes these is plain data
        value = [bytearray(b"ab"), {1, 2}, frozenset({3}), (4,), range(5), deque([6], maxlen=2), b"cd"]
        assert load_trusted(Serializer(), pickle.dumps(value, protocol=protocol)) == value


class Sized:
    def __init__(self, build: type, argument: object) -> None:
        self.build, self.argument = build, argument

    def __reduce__(self) -> tuple[object, ...]:
        return (self.build, (self.argument,))


@pytest.mark.sqlite
def test_a_signing_key_that_is_missing_or_readable_by_others_is_refused(project, monkeypatch):
    project.write_config(taskctl=KEY_LINE)
    assert_one_line_error(project.cli("enqueue", "add", "1"), 1, "does not exist", "taskctl key create")
    assert not project.database.exists()
    project.ok("key", "create")
    assert_one_line_error(project.cli("key", "create"), 1, "exists already")
    (project.root / "taskctl.key").chmod(0o644)
    assert_one_line_error(project.cli("enqueue", "add", "1"), 1, "can be read by others", "chmod 600")
    project.write_config(taskctl='signing_key_env = "TASKCTL_TEST_UNSET_KEY"')
    monkeypatch.delenv("TASKCTL_TEST_UNSET_KEY", raising=False)
    assert_one_line_error(project.cli("enqueue", "add", "1"), 1, "$TASKCTL_TEST_UNSET_KEY, which is not set")
    assert json.loads(project.ok("tasks", "--json"))["tasks"]  # a command that only reads needs no key
