"""The CLI's happy paths, in-process through Typer's CliRunner, on a real SQLite file."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import typer

from taskctl.cli import app

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JOB_KEYS = {
    "id", "task", "state", "args", "kwargs", "enqueued_at", "started_at",
    "finished_at", "attempts", "error",
}  # fmt: skip


def test_enqueue_prints_only_the_job_id(project):
    result = project.cli("enqueue", "add", "1", "2")
    assert result.exit_code == 0
    assert UUID.match(result.stdout.strip()), result.stdout
    assert result.stdout.count("\n") == 1
    job = project.job(result.stdout.strip())
    assert job["task"] == f"{project.module}.add"
    assert job["state"] == "queued"
    assert job["args"] == [1, 2]


def test_enqueue_parses_json_values_and_keeps_text(project):
    job_id = project.enqueue("echo", 'value={"a": [1, 2], "b": null}')
    assert project.job(job_id)["kwargs"] == {"value": {"a": [1, 2], "b": None}}
    job_id = project.enqueue("echo", "hello world")
    assert project.job(job_id)["args"] == ["hello world"]
    job_id = project.enqueue("add", "a=1.5", "b=true")
    assert project.job(job_id)["kwargs"] == {"a": 1.5, "b": True}


def test_full_name_and_suffix_both_resolve(project):
    by_suffix = project.enqueue("add", "1")
    by_full = project.enqueue(f"{project.module}.add", "1")
    assert project.job(by_suffix)["task"] == project.job(by_full)["task"]


def test_delay_and_at_schedule_the_job(project):
    before = time.time()
    delayed = project.enqueue("add", "1", "--delay", "1h30m")
    job = project.job(delayed)
    # As in Huey: in the queue until a worker sees it is not due, then on the schedule.
    assert job["state"] == "queued"
    eta = datetime.fromisoformat(job["eta"]).timestamp()
    assert 5400 - 5 <= eta - before <= 5400 + 5

    at = (datetime.now().astimezone() + timedelta(days=1)).replace(microsecond=0)
    timed = project.enqueue("add", "1", "--at", at.isoformat())
    assert datetime.fromisoformat(project.job(timed)["eta"]) == at
    assert "runs at" in project.ok("status")

    project.burst()
    assert project.job(delayed)["state"] == project.job(timed)["state"] == "scheduled"
    assert project.job(delayed)["attempts"] == 0
    status = project.status()
    assert {j["id"] for j in status["scheduled"]} >= {delayed, timed}
    assert status["counts"]["scheduled"] == 2


def test_priority_orders_the_queue(project):
    low = project.enqueue("add", "1")
    high = project.enqueue("add", "2", "--priority", "10")
    assert [j["id"] for j in project.status()["queued"]] == [high, low]


def test_status_json_shape(project):
    project.enqueue("add", "1", "2")
    status = project.status()
    assert set(status) == {"counts", "consumers", "queued", "scheduled", "running", "failed", "results", "catalog"}
    assert status["counts"]["queued"] == 1
    for state in ("queued", "scheduled", "retrying", "running", "succeeded", "failed", "revoked", "expired"):
        assert state in status["counts"]
    job = status["queued"][0]
    assert set(job) >= JOB_KEYS
    assert job["enqueued_at"].endswith(("+00:00", "Z")) or re.search(r"[+-]\d\d:\d\d$", job["enqueued_at"])
    # The code-declared periodic task shows as an upcoming scheduled run.
    yearly = [j for j in status["scheduled"] if j["task"].endswith(".yearly")]
    assert yearly and yearly[0]["state"] == "periodic" and yearly[0]["id"] is None
    assert datetime.fromisoformat(yearly[0]["eta"]).strftime("%m-%d %H:%M") == "01-01 00:00"


def test_status_tables(project):
    project.enqueue("add", "1", "2")
    project.enqueue("add", "3")
    out = project.ok("status")
    assert "Queued" in out and ".add" in out and "queued 2" in out
    assert "Cached results: none yet" in out and "Times are in" in out
    assert "1 of 2 shown; raise --limit" in project.ok("status", "--limit", "1")


def test_tasks_lists_every_task_with_schedule_and_next_run(project):
    project.write_config(schedules='"sample" = "*/5 * * * *"')
    data = json.loads(project.ok("tasks", "--json"))["tasks"]
    by_name = {t["name"].rsplit(".", 1)[1]: t for t in data}
    assert set(by_name) == {
        "add", "echo", "boom", "flaky", "slow", "slow_retried", "hangs", "perishable", "sample", "yearly",
        "exits", "whoami", "cancels_once", "fan_out", "prune",
    }  # fmt: skip
    assert by_name["prune"]["name"] == "taskctl.retention.prune"  # the built-in maintenance job
    assert by_name["prune"]["schedule"] == "7 * * * *"
    assert by_name["sample"]["kind"] == "periodic"
    assert by_name["sample"]["schedule"] == "*/5 * * * *"
    assert by_name["sample"]["schedule_source"] == "config"
    next_run = datetime.fromisoformat(by_name["sample"]["next_run"])
    # The current minute, if it matches, is still ahead until a run is queued in it.
    this_minute = datetime.now().astimezone().replace(second=0, microsecond=0)
    assert next_run.minute % 5 == 0 and next_run >= this_minute - timedelta(minutes=1)
    assert next_run - this_minute <= timedelta(minutes=5)
    assert by_name["yearly"]["schedule_source"] == "code"
    assert by_name["flaky"]["retries"] == 2
    assert by_name["add"]["kind"] == "on-demand" and by_name["add"]["next_run"] is None
    table = project.ok("tasks")
    assert "*/5 * * * *" in table and "periodic" in table


def test_config_schedule_wins_over_code(project):
    project.write_config(schedules='"yearly" = "30 6 * * 1"')
    data = json.loads(project.ok("tasks", "--json"))["tasks"]
    yearly = next(t for t in data if t["name"].endswith(".yearly"))
    assert (yearly["schedule"], yearly["schedule_source"]) == ("30 6 * * 1", "config")


def test_config_from_environment_variable(project, monkeypatch, tmp_path):
    monkeypatch.setenv("TASKCTL_CONFIG", str(project.config))
    monkeypatch.chdir(tmp_path.parent)
    result = project.cli("enqueue", "add", "1", config=False)
    assert result.exit_code == 0, result.stderr
    assert project.job(result.stdout.strip())["args"] == [1]


def test_every_command_has_help():
    command = typer.main.get_command(app)
    assert command.help
    assert {"run-consumer", "enqueue", "status", "tasks"} <= set(command.commands)
    for name, sub in command.commands.items():
        assert sub.help and sub.help.strip(), f"{name} has no help"
        for param in sub.params:
            if param.param_type_name == "option":
                assert param.help, f"{name} {param.name} has no help"
            else:
                assert param.help or param.name == "ctx", f"{name} argument {param.name} has no help"


def test_text_is_utf8_as_is_in_json_and_tables(project):
    job_id = project.enqueue("echo", '"café ☕"')
    for command in (["status", "--json"], ["show", job_id, "--json"], ["status"], ["show", job_id]):
        out = project.ok(*command)
        assert "café ☕" in out and "\\u00e9" not in out, command
    shown = project.ok("show", job_id, "--json")
    assert re.search(r'"enqueued_at": "[^"]+\.\d{6}[+-]\d\d:\d\d"', shown)  # to the microsecond
