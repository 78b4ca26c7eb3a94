"""Operations: `taskctl check`, `taskctl backup`, and databases on network filesystems."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta

import pytest
from conftest import stop, wait_until

from taskctl.app import build_app
from taskctl.config import load_settings
from taskctl.engines import filesystems

NO_PRUNE = '[retention]\nschedule = ""'  # the hourly prune would be "overdue" in a fresh project


def check(project, *args: str):
    result = project.cli("check", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_check_says_each_problem_in_a_line_and_exits_1(project):
    project.write_config(extra=NO_PRUNE, schedules=f'"{project.module}.sample" = "* * * * *"')
    if project.engine == "sqlite":
        result = check(project)
        assert result.exit_code == 1 and result.stdout.startswith("no-database: no database at")
    for _ in range(3):
        project.enqueue("boom", "disk full")
    project.enqueue("add", "1")
    project.burst()
    result = check(project, "--late", "0")
    lines = result.stdout.splitlines()
    assert result.exit_code == 1, result.stdout
    assert lines[0].startswith("no-consumer: no consumer is alive on")
    assert lines[1].startswith(f"overdue: {project.module}.sample was due at") and "(* * * * *)" in lines[1]
    assert lines[2] == lines[-1] and lines[2].startswith(f"failing: {project.module}.boom failed its last 3 runs")
    assert "ValueError: disk full" in lines[2]
    assert not any("yearly" in line for line in lines)  # due last 1 January: beyond what a slot remembers
    document = json.loads(check(project, "--json", "--late", "0").stdout)
    assert document["ok"] is False
    assert [(p["kind"], p["task"]) for p in document["problems"]] == [
        ("no-consumer", None), ("overdue", f"{project.module}.sample"), ("failing", f"{project.module}.boom"),
    ]  # fmt: skip
    assert "failing" not in check(project, "--failures", "4").stdout


def test_check_passes_with_a_consumer_alive_and_the_periodic_run_queued(project):
    # Due once an hour, five minutes ago: the test may take a while on a loaded machine.
    due = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) - timedelta(minutes=5)
    cron = f'"{project.module}.sample" = "{due.minute} * * * *"'
    project.write_config(extra=NO_PRUNE, schedules=cron, taskctl='timezone = "UTC"')
    # What the consumer's scheduler did in that minute: queue the periodic runs due, taking their slots.
    app = build_app(load_settings(project.config))
    for task in app.huey.read_periodic(due):
        app.huey.enqueue(task)
    consumer = project.start_consumer("--no-periodic")
    try:
        wait_until(lambda: check(project, "--late", "0").exit_code == 0, what="a consumer alive and nothing due")
        result = check(project, "--late", "0")
    finally:
        stop(consumer)
    assert result.stdout.startswith("ok: a consumer is alive, 2 periodic task(s) on time"), result.stdout


@pytest.mark.sqlite
def test_check_writes_nothing(project):
    # A monitor runs `check` every minute, maybe as a user who can only read the file.
    project.enqueue("add", "1")
    project.burst()
    conn = sqlite3.connect(project.database)
    with conn:
        conn.execute(
            "INSERT INTO taskctl_consumers (owner, queue, host, pid, started_at, beat_at) "
            "VALUES ('gone', ?, 'elsewhere', 1, 0, 0)",
            (load_settings(project.config).name,),
        )
    (version,) = conn.execute("PRAGMA data_version").fetchone()
    assert check(project).stdout.startswith("no-consumer:")
    # data_version changes when another connection commits: none did.
    assert conn.execute("PRAGMA data_version").fetchone() == (version,)
    assert conn.execute("SELECT owner FROM taskctl_consumers").fetchall() == [("gone",)]
    conn.close()


@pytest.mark.sqlite
def test_backup_copies_a_live_database_and_refuses_to_overwrite(project, tmp_path):
    ids = [project.enqueue("add", str(i)) for i in range(5)]
    project.burst()
    queued = project.enqueue("echo", "waiting")
    target = tmp_path / "backups" / "copy.db"
    target.parent.mkdir()
    out = project.ok("backup", str(target))
    assert out.startswith(f"Backed up {project.database} to {target} (6 job(s),")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert not list(target.parent.glob(".*part"))
    # Restore: the copy, as the database of a config, holds every job.
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / f"{project.module}.py").write_text((project.root / f"{project.module}.py").read_text())
    (restored / "config.toml").write_text(project.config.read_text().replace("taskctl.db", str(target)))
    status = json.loads(project.cli("--config", str(restored / "config.toml"), "status", "--json", config=False).stdout)
    assert status["counts"]["succeeded"] == 5 and [j["id"] for j in status["queued"]] == [queued]
    again = project.cli("backup", str(target))
    assert again.exit_code == 2 and "exists; give a new file name" in again.stderr
    assert len(ids) == 5


@pytest.mark.redis
def test_backup_on_redis_says_what_to_use_instead(project, tmp_path):
    result = project.cli("backup", str(tmp_path / "copy.db"))
    assert result.exit_code == 2 and "BGSAVE" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "copy.db").exists()


def test_mounted_type_finds_the_deepest_mount():
    table = (
        "/dev/sda1 / ext4 rw 0 0\n"
        "server:/export /srv/shared nfs4 rw,relatime 0 0\n"
        "//nas/share /mnt/my\\040share cifs rw 0 0\n"
        "/dev/sdb1 /srv/shared/local ext4 rw 0 0\n"
    )
    assert filesystems.mounted_type("/srv/shared/app/taskctl.db", table) == "nfs4"
    assert filesystems.mounted_type("/mnt/my share/taskctl.db", table) == "cifs"
    assert filesystems.mounted_type("/srv/shared/local/taskctl.db", table) is None
    assert filesystems.mounted_type("/srv/sharedx/taskctl.db", table) is None
    assert filesystems.mounted_type("/home/me/taskctl.db", table) is None


@pytest.mark.sqlite
def test_a_database_on_a_network_filesystem_is_refused(project, monkeypatch, tmp_path_factory):
    mounts = tmp_path_factory.mktemp("proc") / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/export {project.root} nfs4 rw 0 0\n")
    monkeypatch.setattr(filesystems, "MOUNTS", mounts)
    for command in (("enqueue", "add", "1"), ("status",), ("run-consumer", "--burst")):
        result = project.cli(*command)
        assert result.exit_code == 1, (command, result.stdout, result.stderr)
        assert result.stderr.startswith(f"Error: database {project.database} is on a network filesystem (nfs4)")
        assert len(result.stderr.splitlines()) == 1
    assert not project.database.exists()
