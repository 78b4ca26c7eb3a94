"""The database file: taskctl writes only to its own, only when a command writes,
and makes its files private."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import uuid
from pathlib import Path

import pytest
from redis import Redis
from redis_support import start_redis
from redis_support import stop as stop_redis

from taskctl.engines.sqlite_file import APPLICATION_ID
from tests.conftest import stop, wait_until
from tests.test_errors import assert_one_line_error

READING = (["status"], ["history"], ["results"], ["stats"], ["tasks"])


def files_of(database: Path) -> list[str]:
    return sorted(p.name for p in database.parent.glob(database.name + "*"))


@pytest.mark.sqlite
@pytest.mark.parametrize("table", ["kv", "task", "schedule"])
@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_another_programs_database_with_a_huey_table_name_is_left_byte_identical(project, table, journal):
    other = sqlite3.connect(project.database)
    other.execute(f"PRAGMA journal_mode = {journal}")
    other.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, note TEXT)")
    other.execute(f"INSERT INTO {table} (note) VALUES ('mine')")
    other.commit()
    other.close()
    before = project.database.read_bytes()
    for args in (*READING, ["enqueue", "add", "1"], ["run-consumer", "--burst"], ["upgrade"]):
        assert_one_line_error(project.cli(*args), 1, "another program's SQLite database", table, "untouched")
    assert project.database.read_bytes() == before
    assert files_of(project.database) == ["taskctl.db"]  # no -wal or -shm left beside it


@pytest.mark.sqlite
def test_a_new_database_is_marked_as_taskctls(project):
    project.enqueue("add", "1")
    conn = sqlite3.connect(project.database)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


@pytest.mark.sqlite
def test_reading_commands_never_write(project):
    job = project.enqueue("add", "1")
    project.burst()
    project.enqueue("boom")
    watcher = sqlite3.connect(project.database)
    # data_version changes when another connection commits to the file.
    (version,) = watcher.execute("PRAGMA data_version").fetchone()
    for args in (*READING, ["show", job[:8]], ["status", "--json"], ["upgrade"]):
        assert project.cli(*args).exit_code == 0, args
        assert watcher.execute("PRAGMA data_version").fetchone() == (version,), args
    watcher.close()


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["enqueue", "nope"], "unknown task 'nope'"),
        (["enqueue", "add"], "missing a required argument"),
        (["enqueue", "add", "1", "c=2"], "has no argument 'c'"),
    ],
)
def test_a_failing_enqueue_leaves_no_database_behind(project, args, fragment):
    assert_one_line_error(project.cli(*args), 2, fragment)
    assert files_of(project.database) == []


@pytest.mark.sqlite
def test_an_enqueue_whose_module_fails_to_import_leaves_no_database_behind(project, tmp_path):
    (tmp_path / f"{project.module}.py").write_text("import requestz\n")
    assert_one_line_error(project.cli("enqueue", "add", "1"), 1, "cannot import task module")
    assert files_of(project.database) == []


@pytest.mark.sqlite
def test_upgrade_without_a_database_creates_none(project):
    assert_one_line_error(project.cli("upgrade"), 1, "no database at")
    assert files_of(project.database) == []


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("umask", "setting", "mode"), [(0o000, "", 0o600), (0o022, "", 0o600), (0o077, "group_readable = true", 0o640)]
)
def test_the_database_and_its_wal_files_are_created_private_whatever_the_umask(project, umask, setting, mode):
    project.write_config(taskctl=setting)
    old = os.umask(umask)
    try:
        project.enqueue("add", "1")
        consumer = project.start_consumer()  # the subprocess inherits the umask
        # 60 s: the consumer starts on a loaded CI machine; a timeout shows what it printed.
        wait_until(lambda: project.status()["counts"]["succeeded"] == 1, 60, "the job to run", consumer)
        modes = {name: stat.S_IMODE((project.root / name).stat().st_mode) for name in files_of(project.database)}
        stop(consumer)
    finally:
        os.umask(old)
    assert modes == {"taskctl.db": mode, "taskctl.db-shm": mode, "taskctl.db-wal": mode}


@pytest.mark.sqlite  # a Redis server of its own, with a password
def test_a_redis_password_is_never_written_to_the_record_or_the_logs(project, monkeypatch):
    secret = "s3cret-" + uuid.uuid4().hex
    url, server = start_redis()
    try:
        Redis.from_url(url).config_set("requirepass", secret)
        monkeypatch.setenv("TASKCTL_TEST_SECRET", secret)
        text = project.config.read_text().replace(project.database_line.split("\n")[0], f'database = "{url}"')
        project.config.write_text(text.replace("[taskctl]", '[taskctl]\npassword_env = "TASKCTL_TEST_SECRET"', 1))
        project.enqueue("add", "1")
        project.enqueue("boom", "failing")
        done = project.run("run-consumer", "--burst", "-v")
        assert done.returncode == 0, done.stderr
        shown = [project.ok("status", "--json"), project.ok("history", "--json"), done.stdout, done.stderr]
        assert "failing" in shown[1] and not any(secret in text for text in shown)
        client = Redis.from_url(url, password=secret)
        stored = [client.dump(key) or b"" for key in client.keys("*")]
        assert stored and not any(secret.encode() in value for value in stored)
    finally:
        stop_redis(server)


def test_a_large_argument_is_kept_once_with_a_marked_preview(project):
    big = "x" * 1_000_000
    job_id = project.enqueue("echo", json.dumps(big))
    shown = json.loads(project.ok("show", job_id, "--json"))["job"]
    assert shown["args"] is None and shown["kwargs"] is None
    assert shown["args_preview"].startswith('["xxx') and shown["args_preview"].endswith("(cut: 1,000,004 characters)")
    assert "(cut: 1,000,004 characters)" in project.ok("show", job_id)
    assert len(project.ok("status")) < 20_000  # the listing prints a preview, not the value
    project.burst()
    assert json.loads(project.ok("results", "echo", "--json"))["value"] == big  # the job ran with the whole argument
    small = project.enqueue("add", "1", "b=2")
    job = json.loads(project.ok("show", small, "--json"))["job"]
    assert (job["args"], job["kwargs"], job["args_preview"]) == ([1], {"b": 2}, None)
    if not project.url:
        conn = sqlite3.connect(project.database)
        (stored,) = conn.execute(
            "SELECT length(args) + length(kwargs) FROM taskctl_jobs WHERE id = ?", (job_id,)
        ).fetchone()
        conn.close()
        assert stored < 1_000


def test_listings_print_a_large_cached_value_as_a_marked_preview(project):
    big = {"rows": ["y" * 100] * 200}  # 20,6xx characters as JSON
    project.enqueue("echo", json.dumps(big))
    project.enqueue("add", "1")
    project.burst()
    listing = {r["task"].rsplit(".", 1)[1]: r for r in json.loads(project.ok("results", "--json"))["results"]}
    assert listing["add"]["value"] == 1 and listing["add"]["value_preview"] is None
    assert listing["echo"]["value"] is None and listing["echo"]["value_preview"].startswith('{"rows": ["yyy')
    assert listing["echo"]["value_preview"].endswith(f"(cut: {len(json.dumps(big)):,} characters)")
    status = {r["task"].rsplit(".", 1)[1]: r for r in project.status()["results"]}
    assert status["echo"]["value_preview"] == listing["echo"]["value_preview"]
    assert json.loads(project.ok("results", "echo", "--json"))["value"] == big  # one task: whole
