"""`taskctl move`: a SQLite record copied into Redis, whole, once; the source refuses to run it again."""

from __future__ import annotations

import json

import pytest
from conftest import Project, stop, wait_until

pytestmark = pytest.mark.sqlite  # the source is SQLite; the target is the session's redis-server


def documents(project: Project) -> dict[str, object]:
    "What a user sees of the record, minus what moves with time (ages, next periodic runs)."
    status = project.status()
    history = json.loads(project.ok("history", "--json", "--limit", "100"))
    results = json.loads(project.ok("results", "--json"))["results"]
    return {
        "counts": status["counts"],
        "queued": status["queued"],
        "failed": status["failed"],
        "scheduled": [j for j in status["scheduled"] if j["id"]],
        "history": history,
        "results": [{k: v for k, v in r.items() if k != "age"} for r in results],
    }


@pytest.fixture
def moved(project: Project, redis_url: str) -> tuple[Project, str, dict[str, object]]:
    project.write_config(taskctl=f'name = "{project.module}"')  # a queue of its own on the shared server
    project.enqueue("echo", '"kept"')
    project.enqueue("boom", "why")
    later = project.enqueue("add", "1", "--delay", "1h")
    project.burst()  # echo succeeds, boom fails, the delayed add moves to the schedule
    project.enqueue("add", "40", "b=2", "--priority", "5")
    before = documents(project)
    out = project.ok("move", "--to", redis_url)
    assert "Moved 4 job(s) and 1 cached result(s)" in out
    assert project.job(later)["state"] == "scheduled"  # the source itself is left as it was
    return project, redis_url, before


def test_move_copies_the_whole_record_and_runs_it_there(moved: tuple[Project, str, dict[str, object]]) -> None:
    project, url, before = moved
    project.url = url  # the config now names Redis, and the same queue
    project.write_config()
    assert documents(project) == before  # the same JSON, job for job, to the microsecond
    failed = before["failed"][0]["id"]  # type: ignore[index]
    shown = json.loads(project.ok("show", failed, "--json"))
    assert shown["attempts"][0]["outcome"] == "failed" and "ValueError: why" in shown["attempts"][0]["traceback"]
    assert project.ok("retry", failed).startswith("retried")  # its pickled message came along
    project.burst()
    status = project.status()
    assert status["counts"]["succeeded"] == 2 and status["counts"]["failed"] == 2
    assert {r["task"].rsplit(".", 1)[1]: r["value"] for r in status["results"]} == {"echo": "kept", "add": 42}


def test_a_second_move_doubles_nothing_and_the_source_refuses_to_run(
    moved: tuple[Project, str, dict[str, object]],
) -> None:
    project, url, _ = moved
    again = project.ok("move", "--to", url)
    assert "Moved 0 job(s)" in again and "(4 were there already)" in again
    for command in (["run-consumer", "--burst"], ["enqueue", "add", "1"]):
        result = project.cli(*command)
        assert result.exit_code == 1 and "was moved to redis://" in result.stderr, command
    assert "Traceback" not in project.run("run-consumer", "--burst").stderr
    assert project.status()["counts"]["queued"] == 1  # reading the old record still works


def test_move_refuses_while_a_consumer_runs_and_checks_its_target(project: Project, redis_url: str) -> None:
    project.enqueue("add", "1")
    consumer = project.start_consumer("--no-periodic")
    try:
        wait_until(
            lambda: project.status()["counts"]["succeeded"] == 1, what="the consumer to run a job", consumer=consumer
        )
        result = project.cli("move", "--to", redis_url)
        assert result.exit_code == 1 and "a consumer is running" in result.stderr
    finally:
        stop(consumer)
    for target, fragment in (("postgres://x/1", "unknown scheme"), ("redis://:secret@127.0.0.1:1/0", "password")):
        result = project.cli("move", "--to", target)
        assert result.exit_code == 2 and fragment in result.stderr and "secret" not in result.stderr
        assert result.stderr.startswith("Error: --to ") and str(project.config) not in result.stderr
    result = project.cli("move", "--to", "redis://127.0.0.1:1/0")  # nothing listens there
    assert result.exit_code == 1 and "cannot use Redis at redis://127.0.0.1:1/0" in result.stderr
    assert "Traceback" not in result.stderr
