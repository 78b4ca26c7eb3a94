"""`status` and `tasks` show what the consumer runs, as it recorded it when it started:
without importing Huey or the task modules, and saying when the disk differs."""

from __future__ import annotations

import json
import signal
import subprocess
from typing import Any

from tests.conftest import Project, stop, subprocess_env, wait_until
from tests.test_fast_start import HEAVY, heavy, loaded


def tasks_json(project: Project) -> dict[str, Any]:
    return json.loads(project.ok("tasks", "--json"))


def recorded(project: Project) -> dict[str, Any] | None:
    "`tasks --json` once a consumer has recorded what it runs."
    found = tasks_json(project)
    return found if found["catalog"]["origin"] == "consumer" else None


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["name"].rsplit(".", 1)[-1]: task for task in document["tasks"]}


def test_before_any_consumer_the_tasks_come_from_disk_and_say_so(project):
    found = tasks_json(project)
    assert found["catalog"]["origin"] == "disk" and found["catalog"]["recorded_at"] is None
    assert "no consumer has run" in found["catalog"]["notice"]
    assert "no consumer has run" in project.ok("tasks")
    assert by_name(found)["yearly"]["schedule"] == "0 0 1 1 *"


def test_after_a_consumer_ran_the_reading_commands_import_neither_huey_nor_the_task_modules(project):
    job_id = project.enqueue("add", "1")
    project.burst()
    found = tasks_json(project)
    assert found["catalog"] == {
        "origin": "consumer", "recorded_at": found["catalog"]["recorded_at"], "changed": [], "notice": None,
    }  # fmt: skip
    assert by_name(found)["flaky"]["retries"] == 2 and by_name(found)["hangs"]["timeout"] == 1
    assert "no consumer" not in project.ok("tasks")
    # A task named by its suffix is found in the catalog, not by importing the modules.
    reading = (["status"], ["tasks"], ["history", "--task", "add"], ["stats", "--task", "add"], ["results", "add"],
               ["show", job_id[:8]], ["check"])  # fmt: skip
    for command in reading:
        # `check` exits 1: no consumer is alive.
        modules = loaded("--config", str(project.config), *command, cwd=project.root, code=int(command == ["check"]))
        needed = ("redis",) if project.engine == "redis" else ()  # the record's own client
        assert project.module not in modules, command
        assert heavy(modules, tuple(name for name in (*HEAVY, "pydantic") if name not in needed)) == [], command
    assert [j["id"] for j in json.loads(project.ok("history", "--task", "add", "--json"))["jobs"]] == [job_id]
    status = project.status()
    assert {job["task"] for job in status["scheduled"]} == {f"{project.module}.yearly", "taskctl.retention.prune"}
    assert status["catalog"]["origin"] == "consumer"


def test_a_running_consumer_s_tasks_are_shown_while_its_modules_are_gone_from_disk(project):
    consumer = project.start_consumer()
    try:
        wait_until(lambda: recorded(project), what="the consumer to record its tasks", consumer=consumer)
        source = project.root / f"{project.module}.py"
        source.rename(project.root / "moved_away.txt")  # no longer importable
        found = tasks_json(project)
        status = project.status()
    finally:
        stop(consumer, signal.SIGTERM)
    assert found["catalog"]["origin"] == "consumer"
    assert found["catalog"]["changed"] == [f"{project.module}.py"]
    assert "restart the consumer to apply" in found["catalog"]["notice"]
    assert "yearly" in by_name(found) and "add" in by_name(found)
    assert status["catalog"] == found["catalog"]
    assert {job["task"] for job in status["scheduled"]} == {f"{project.module}.yearly", "taskctl.retention.prune"}


def test_a_schedule_edited_while_the_consumer_runs_is_shown_as_it_runs_until_a_restart(project):
    consumer = project.start_consumer()
    try:
        wait_until(lambda: recorded(project), what="the consumer to record its tasks", consumer=consumer)
        project.write_config(schedules='"sample" = "*/7 * * * *"\n"yearly" = "0 3 * * *"')
        running = tasks_json(project)
        text = project.ok("tasks")
    finally:
        stop(consumer, signal.SIGTERM)
    assert by_name(running)["yearly"]["schedule"] == "0 0 1 1 *"  # what the consumer runs
    assert by_name(running)["sample"]["kind"] == "on-demand"
    assert running["catalog"]["changed"] == ["config.toml"]
    assert "config.toml changed since the consumer started" in text and "restart the consumer to apply" in text
    # No consumer runs now: the next one runs what is on disk, and that is what is shown.
    after = tasks_json(project)
    assert after["catalog"]["origin"] == "disk" and "no consumer is running" in after["catalog"]["notice"]
    assert by_name(after)["yearly"]["schedule"] == "0 3 * * *"
    assert by_name(after)["sample"]["schedule"] == "*/7 * * * *"
    project.burst()  # a new consumer records the new schedules
    assert by_name(tasks_json(project))["sample"]["schedule"] == "*/7 * * * *"
    assert tasks_json(project)["catalog"]["changed"] == []


def test_status_watch_reads_the_catalog_again_for_each_frame(project):
    project.enqueue("add", "1")  # a record, and no consumer yet
    process = subprocess.Popen(
        project.command("status", "--watch", "--interval", "0.2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=project.root, env=subprocess_env(),
    )  # fmt: skip
    assert process.stdout is not None

    def next_frame() -> str:
        "The lines up to the next frame's header (in a pipe, frames follow one another)."
        lines = []
        while not (line := process.stdout.readline()).startswith("taskctl status ·"):
            if not line:
                raise AssertionError(f"status --watch ended: {process.wait(timeout=30)}, {process.stderr.read()}")
            lines.append(line)
        return "".join(lines)

    try:
        next_frame()  # whatever came before the first header
        assert "no consumer has run" in next_frame()
        project.burst()
        for _ in range(100):  # frames until one reads what the consumer recorded
            frame = next_frame()
            if "Jobs:" in frame and "no consumer has run" not in frame:
                break
        else:
            raise AssertionError(f"every frame still says no consumer has run: {frame}")
    finally:  # not communicate(): the rest of stdout may begin inside a character readline() split
        process.send_signal(signal.SIGINT)
        process.stdout.close()
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()


def test_a_task_added_since_the_consumer_started_is_found_by_its_suffix_in_the_history(project):
    consumer = project.start_consumer()
    try:
        wait_until(lambda: recorded(project), what="the consumer to record its tasks", consumer=consumer)
        with (project.root / f"{project.module}.py").open("a") as source:
            source.write("\n\n@task()\ndef mul(a, b):\n    return a * b\n")
        queued = project.run("enqueue", "mul", "2", "3")  # a new process: it imports the module as it is now
        assert queued.returncode == 0, queued.stderr
        job_id = queued.stdout.strip()
        # The consumer does not have `mul`: the job fails, and is in the history.
        wait_until(lambda: project.job(job_id)["state"] == "failed", what="the job to fail", consumer=consumer)
        found = [json.loads(project.ok(*command, "--json")) for command in (["history", "--task", "mul"],
                                                                            ["stats", "--task", "mul"])]  # fmt: skip
    finally:
        stop(consumer, signal.SIGTERM)
    assert [job["id"] for job in found[0]["jobs"]] == [job_id]
    assert [row["task"] for row in found[1]["tasks"]] == [f"{project.module}.mul"]
    assert "did you mean" in project.cli("history", "--task", "mull").stderr


def test_history_and_stats_without_a_task_read_the_record_alone(project):
    job_id = project.enqueue("add", "1")
    project.burst()
    (project.root / f"{project.module}.py").write_text("this is not python\n")  # and no consumer is alive
    # New processes: this one has the module imported already.
    history, stats = project.run("history", "--json"), project.run("stats", "--json")
    assert history.returncode == stats.returncode == 0, history.stderr + stats.stderr
    assert [job["id"] for job in json.loads(history.stdout)["jobs"]] == [job_id]
    assert [row["runs"] for row in json.loads(stats.stdout)["tasks"]] == [1]
