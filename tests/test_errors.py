"""Bad input: one `Error:` line on stderr, exit 2 for usage and 1 for runtime errors,
no traceback, and nothing destroyed."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest


def assert_one_line_error(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_unknown_task_suggests_close_names(project):
    result = project.cli("enqueue", "ad")
    assert_one_line_error(result, 2, "unknown task 'ad'", "did you mean", ".add")


def test_ambiguous_suffix_lists_the_candidates(project, tmp_path):
    (tmp_path / "other_tasks_x.py").write_text("from taskctl import task\n\n@task()\ndef add(a):\n    return a\n")
    project.write_config(taskctl="", extra="")
    text = project.config.read_text().replace(
        f'modules = ["{project.module}"]', f'modules = ["{project.module}", "other_tasks_x"]'
    )
    project.config.write_text(text)
    assert_one_line_error(project.cli("enqueue", "add", "1"), 2, "ambiguous", "other_tasks_x.add")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["add", "my-key=3"], "malformed KEY=VALUE"),
        (["add", "=3"], "malformed KEY=VALUE"),
        (["add", "b=1", "2"], "follows KEY=VALUE"),
        (["add", "1", "2", "3"], "too many positional arguments"),
        (["add", "1", "c=1"], "has no argument 'c'; it takes: a, b=0"),
        (["add", "b=1"], "missing a required argument: 'a'; it takes: a, b=0"),
        (["add", "1", "--delay", "-5s"], "must not be negative"),
        (["add", "1", "--delay", "soon"], "is not a duration"),
        (["add", "1", "--at", "tomorrow"], "is not an ISO 8601 time"),
        (["add", "1", "--delay", "1m", "--at", "2100-01-01T00:00"], "not both"),
        (["add", "1", "--delay", "99999999999w"], "more than 10 years"),
        (["add", "1", "--at", "9999-12-31T23:59-05:00"], "more than 10 years"),
        (["add", "1", "--wait", "--timeout", "nan"], "--timeout must be a positive number"),
    ],
)
def test_malformed_arguments_are_usage_errors(project, args, fragment):
    assert_one_line_error(project.cli("enqueue", *args), 2, fragment)
    assert not project.database.exists() or project.status()["counts"]["queued"] == 0


def test_at_in_the_past(project):
    past = (datetime.now().astimezone() - timedelta(hours=1)).isoformat()
    assert_one_line_error(project.cli("enqueue", "add", "1", "--at", past), 2, "is in the past")


def test_config_after_the_command_says_where_it_goes(project):
    result = project.cli("tasks", "--config", "x.toml", config=False)
    assert_one_line_error(result, 2, "No such option: --config", "goes before the command")


def test_click_usage_errors_are_one_line_too(project):
    assert_one_line_error(project.cli("enqueue", "add", "--priority", "high"), 2, "--priority")
    assert_one_line_error(project.cli("status", "--bogus"), 2, "--bogus")


def test_missing_config(project, tmp_path):
    project.config.unlink()
    assert_one_line_error(project.cli("status"), 1, "config file not found", "--config", "TASKCTL_CONFIG")


def test_invalid_toml_names_the_line(project):
    project.config.write_text('[taskctl]\nmodules = "a" "b"\ndatabase = "x.db"\n')
    assert_one_line_error(project.cli("status"), 1, "not valid TOML", "line")


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('[taskctl]\ndatabase = "x.db"\n', "[taskctl] modules is missing"),
        ('[taskctl]\nmodules = ["m"]\n', "[taskctl] database is missing"),
        ('[taskctl]\nmodules = ["m"]\ndatabase = "x.db"\nworkers = "two"\n', "[taskctl] workers must be"),
        ('[taskctl]\nmodules = ["m"]\ndatabase = "x.db"\nsynchronous = "off"\n', "[taskctl] synchronous"),
        ('[taskctl]\nmodules = ["m"]\ndatabase = "x.db"\ntimezone = "Mars/Olympus"\n', "timezone"),
        ('[taskctl]\nmodules = ["m"]\ndatabase = "x.db"\ntimezone = "America"\n', "not a known time zone"),
        ('[taskctl]\nmodules = ["m"]\ndatabase = "x.db"\nwrokers = 2\n', "unknown setting [taskctl] wrokers"),
        ("modules = []\n", "missing the [taskctl] table"),
    ],
)
def test_invalid_config_names_the_key(project, body, fragment):
    project.config.write_text(body)
    assert_one_line_error(project.cli("tasks"), 1, fragment)


def test_invalid_cron_names_the_key(project):
    project.write_config(schedules='"sample" = "61 * * * *"')
    assert_one_line_error(project.cli("tasks"), 1, "[schedules] 'sample'", "not a valid cron expression", "Bad minute")


def test_schedule_for_unknown_task(project):
    project.write_config(schedules='"nope" = "* * * * *"')
    assert_one_line_error(project.cli("tasks"), 1, "[schedules] 'nope'", "unknown task")


def test_schedule_for_task_with_required_arguments(project):
    project.write_config(schedules='"add" = "* * * * *"')
    assert_one_line_error(project.cli("tasks"), 1, ".add has required arguments")


def test_task_module_that_fails_to_import(project, tmp_path):
    (tmp_path / f"{project.module}.py").write_text("import requestz\n")
    assert_one_line_error(
        project.cli("tasks"), 1, f"cannot import task module '{project.module}'", "No module named 'requestz'"
    )


@pytest.mark.sqlite
def test_database_that_is_a_directory(project):
    project.database.mkdir()
    assert_one_line_error(project.cli("status"), 1, "is a directory")
    assert project.database.is_dir()


@pytest.mark.sqlite
def test_database_that_is_not_sqlite_is_left_untouched(project):
    content = b"these are my notes, not a database\n" * 100
    project.database.write_bytes(content)
    assert_one_line_error(project.cli("enqueue", "add", "1"), 1, "is not a SQLite database", "untouched")
    assert project.database.read_bytes() == content


@pytest.mark.sqlite
def test_locked_database(project):
    project.write_config(taskctl="busy_timeout = 0.2")
    project.enqueue("add", "1")  # create the database
    holder = sqlite3.connect(project.database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert_one_line_error(project.cli("enqueue", "add", "1"), 1, "is locked", "busy_timeout")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert project.enqueue("add", "2")
    assert project.status()["counts"]["queued"] == 2


@pytest.mark.sqlite
def test_read_commands_do_not_create_a_missing_database(project, tmp_path):
    project.config.write_text(f'[taskctl]\nmodules = ["{project.module}"]\ndatabase = "typo/jobs.db"\n')
    assert_one_line_error(project.cli("status"), 1, "no database at", "typo/jobs.db", "[taskctl] database")
    assert project.ok("tasks")  # listing tasks needs no database
    assert not (tmp_path / "typo").exists()


@pytest.mark.sqlite
def test_another_programs_sqlite_database_is_left_untouched(project):
    other = sqlite3.connect(project.database)
    other.execute("create table users (id integer primary key, name text)")
    other.execute("insert into users (name) values ('ada')")
    other.commit()
    other.close()
    before = project.database.read_bytes()
    for args in (["status"], ["enqueue", "add", "1"], ["run-consumer", "--burst"]):
        assert_one_line_error(project.cli(*args), 1, "another program's SQLite database", "users")
    assert project.database.read_bytes() == before


@pytest.mark.sqlite  # the config names its own Redis URLs
@pytest.mark.parametrize(
    ("database", "fragment"),
    [
        ("postgres://db/1", "unknown scheme 'postgres'"),
        ("redis://:s3cret@127.0.0.1:6379/0", "has a password in it"),
        ("redis://127.0.0.1:6379/0?password=s3cret", "has a password in it"),
        ("redis://127.0.0.1:notaport/0", "the port must be a number"),
        ("redis://127.0.0.1:6379/abc", "the database after the host is a number"),
        ("redis:/127.0.0.1:6379/0", "lacks '//'"),
    ],
)
def test_a_database_url_taskctl_does_not_take(project, database, fragment):
    project.config.write_text(project.config.read_text().replace('database = "taskctl.db"', f'database = "{database}"'))
    result = project.cli("status")
    assert result.exit_code == 1 and fragment in result.stderr and "s3cret" not in result.stderr
    assert not [p for p in project.root.iterdir() if p.name.startswith(("postgres", "redis"))]  # no folder made


@pytest.mark.sqlite
def test_redis_that_does_not_answer_or_a_missing_password(project, monkeypatch):
    text = project.config.read_text()
    project.config.write_text(text.replace('database = "taskctl.db"', 'database = "redis://127.0.0.1:1/0"'))
    for command in (["status"], ["enqueue", "add", "1"], ["run-consumer", "--burst"]):
        result = project.cli(*command)
        assert result.exit_code == 1, command
        assert "cannot use Redis at redis://127.0.0.1:1/0" in result.stderr and "Traceback" not in result.stderr
    monkeypatch.delenv("TASKCTL_TEST_REDIS_PASSWORD", raising=False)
    project.config.write_text(
        text.replace(
            'database = "taskctl.db"',
            'database = "redis://127.0.0.1:1/0"\npassword_env = "TASKCTL_TEST_REDIS_PASSWORD"',
        )
    )
    result = project.cli("status")
    assert result.exit_code == 1 and "$TASKCTL_TEST_REDIS_PASSWORD, which is not set" in result.stderr
