"""Reading the record: show, history, stats, results, tasks, status --watch, and how task output is rendered."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import threading

import pytest
from conftest import subprocess_env
from rich.console import Console

from taskctl.app import build_app
from taskctl.config import load_settings
from taskctl.model import Run, State
from taskctl.render import status_view
from taskctl.render_detail import job_detail
from taskctl.stats import percentile, task_stats

HOSTILE = "[red]x\x1b[2J"  # rich markup, and the escape sequence that clears a terminal


@pytest.fixture
def ran(project, tmp_path):
    "A record with a success, a failure, a success after one failed attempt, and a hostile value."
    ids = {
        "add": project.enqueue("add", "1", "2"),
        "boom": project.enqueue("boom", json.dumps(HOSTILE)),
        "flaky": project.enqueue("flaky", str(tmp_path / "marker"), "failures=1"),
        "echo": project.enqueue("echo", json.dumps(HOSTILE)),
    }
    project.burst()
    return ids


def test_show_has_every_attempt_and_the_traceback(project, ran):
    out = project.ok("show", ran["flaky"][:8])
    assert ran["flaky"] in out and f"{project.module}.flaky" in out
    assert "Attempts" in out and "RuntimeError: attempt 1 fails" in out
    assert "Traceback of attempt 1" in out and 'raise RuntimeError(f"attempt {attempt} fails")' in out
    data = json.loads(project.ok("show", ran["flaky"], "--json"))
    assert data["job"]["state"] == "succeeded" and data["job"]["attempts"] == 2
    assert [a["outcome"] for a in data["attempts"]] == ["failed", "succeeded"]
    first, second = data["attempts"]
    assert first["error"] == "RuntimeError: attempt 1 fails" and "Traceback" in first["traceback"]
    assert second["error"] is None and second["traceback"] is None
    assert first["worker"] and first["duration"] is not None and first["finished_at"] >= first["started_at"]
    assert data["job"]["kwargs"] == {"failures": 1} and data["job"]["result_preview"] == '"ok after 2"'


def test_show_refuses_unknown_short_and_ambiguous_ids(project):
    app = build_app(load_settings(project.config))
    info = app.resolve("add")
    for suffix in ("1111", "2222"):
        app.huey.enqueue(info.wrapper.task_class((1,), {}, id=f"abcd{suffix}-0000-4000-8000-000000000000"))
    result = project.cli("show", "abcd")
    assert result.exit_code == 2
    assert "prefix 'abcd' is ambiguous (abcd1111, abcd2222); give more characters" in result.stderr
    assert json.loads(project.ok("show", "abcd2", "--json"))["job"]["id"].startswith("abcd2222")
    for prefix, message in (("abc", "give at least 4 characters"), ("ffff0000", "no job with an id starting")):
        result = project.cli("show", prefix)
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_history_newest_first_with_filters(project, ran):
    data = json.loads(project.ok("history", "--json"))
    assert [j["id"] for j in data["jobs"]][-1] in ran.values() and data["more"] is False
    finished = [j["finished_at"] for j in data["jobs"]]
    assert finished == sorted(finished, reverse=True) and len(finished) == 4
    assert all(j["duration"] is not None for j in data["jobs"])
    failed = json.loads(project.ok("history", "--state", "failed", "--json"))["jobs"]
    assert [j["id"] for j in failed] == [ran["boom"]]
    only_add = json.loads(project.ok("history", "--task", "add", "--since", "1h", "--json"))["jobs"]
    assert [j["id"] for j in only_add] == [ran["add"]]
    limited = json.loads(project.ok("history", "--limit", "1", "--json"))
    assert len(limited["jobs"]) == 1 and limited["more"] is True
    assert "raise --limit to see more" in project.ok("history", "--limit", "1")
    for args, message in (
        (["--state", "done"], "--state 'done' is not a finished state"),
        (["--since", "yesterday"], "--since 'yesterday' is not a duration"),
        (["--task", "nope"], "unknown task 'nope'"),
    ):
        result = project.cli("history", *args)
        assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_stats_per_task(project, ran):
    data = json.loads(project.ok("stats", "--json"))
    by_task = {row["task"].rsplit(".", 1)[1]: row for row in data["tasks"]}
    assert set(by_task) == {"add", "boom", "flaky", "echo"}
    boom = by_task["boom"]
    assert (boom["runs"], boom["failures"], boom["failure_rate"], boom["last_outcome"]) == (1, 1, 1.0, "failed")
    assert by_task["add"]["failure_rate"] == 0.0 and by_task["add"]["p50"] == by_task["add"]["max"]
    for row in data["tasks"]:
        assert len(row["runs_by_bucket"]) == 24 and sum(row["runs_by_bucket"]) == row["runs"]
        assert row["runs_by_bucket"][-1] == row["runs"]  # they all just ran
    table = project.ok("stats", "--since", "1h")
    assert "p95" in table and "█" in table and "100.0" in table
    result = project.cli("stats", "--since", "0s")
    assert result.exit_code == 2 and "--since must be more than 0" in result.stderr


def test_percentiles_and_buckets():
    assert percentile([], 0.5) is None
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0)) == (50.0, 95.0, 100.0)
    rows = [
        Run("t", State.SUCCEEDED, 10.0, 1.0),
        Run("t", State.FAILED, 95.0, 3.0),
        Run("t", State.REVOKED, 96.0, None),  # never ran: not a run
    ]
    (row,) = task_stats(rows, since=0, now=100, buckets=10)
    assert (row.runs, row.failures, row.failure_rate, row.max) == (2, 1, 0.5, 3.0)
    assert row.runs_by_bucket == (0, 1, 0, 0, 0, 0, 0, 0, 0, 1)
    assert row.failures_by_bucket == (0,) * 9 + (1,)
    assert (row.last_outcome, row.last_run) == (State.FAILED, 95.0)


def test_results_list_and_one_value_in_full(project, ran):
    long_value = {"items": list(range(100)), "note": "x" * 300}
    project.enqueue("echo", json.dumps(long_value))
    project.burst()
    listing = json.loads(project.ok("results", "--json"))
    assert {r["task"].rsplit(".", 1)[1] for r in listing["results"]} == {"add", "echo", "flaky"}
    assert set(listing["results"][0]) == {"task", "job_id", "value", "value_preview", "computed_at", "duration", "age"}
    assert "…" in project.ok("results")  # cut in the table
    whole = project.ok("results", "echo")
    assert "x" * 300 in whole and '"items": [' in whole  # whole, pretty-printed
    assert json.loads(project.ok("results", "echo", "--json"))["value"] == long_value
    assert project.ok("results", "echo").splitlines()[1:] == whole.splitlines()[1:]  # reading deleted nothing
    result = project.cli("results", "boom")
    assert result.exit_code == 1 and "no cached result" in result.stderr and "has not succeeded" in result.stderr
    result = project.cli("results", "nope")
    assert result.exit_code == 2 and "unknown task 'nope'" in result.stderr
    assert len(json.loads(project.ok("results", "--json", "--limit", "1"))["results"]) == 1


def test_tasks_show_the_last_run(project, ran):
    tasks = {t["name"].rsplit(".", 1)[1]: t for t in json.loads(project.ok("tasks", "--json"))["tasks"]}
    assert tasks["boom"]["last_run"]["state"] == "failed" and tasks["boom"]["last_run"]["id"] == ran["boom"]
    assert tasks["add"]["last_run"]["duration"] is not None and tasks["slow"]["last_run"] is None
    assert "last run" in project.ok("tasks") and "failed" in project.ok("tasks")
    assert len(json.loads(project.ok("tasks", "--json", "--limit", "2"))["tasks"]) == 2


def test_task_output_prints_literally(project, ran):
    "Markup is not interpreted and control characters cannot reach the terminal, in any view."
    project.enqueue("echo", json.dumps(HOSTILE))  # one queued too
    outputs = [
        project.ok("status"),
        project.ok("history"),
        project.ok("results"),
        project.ok("results", "echo"),
        project.ok("show", ran["boom"]),
        project.ok("show", ran["echo"]),
    ]
    for out in outputs:
        assert "\x1b" not in out
        assert "[red]x" in out
        assert "\\x1b[2J" in out or "\\u001b[2J" in out


def test_status_view_builder_renders_to_a_string(project, ran):
    from taskctl import jobs

    app = build_app(load_settings(project.config))
    record = app.record
    project.enqueue("echo", json.dumps("y" * 500))
    out = io.StringIO()
    Console(file=out, width=100, color_system=None).print(status_view(jobs.snapshot(app, record, 20), "UTC"))
    text = out.getvalue()
    assert "Jobs:" in text and "Queued" in text and "Failed" in text and "Cached results" in text
    assert "y" * 500 not in text and "…" in text  # cut to the width
    assert max(len(line) for line in text.splitlines()) <= 100
    job = record.job(ran["boom"])
    assert job is not None
    detail = io.StringIO()
    Console(file=detail, width=60, color_system=None).print(job_detail(job, record.attempts(job.id)))
    assert "ValueError" in detail.getvalue() and max(len(line) for line in detail.getvalue().splitlines()) <= 60


def test_status_watch_refreshes_until_ctrl_c(project):
    project.enqueue("add", "1")
    process = subprocess.Popen(
        project.command("status", "--watch", "--interval", "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=project.root,
        env=subprocess_env(),
    )
    assert process.stdout is not None
    seen: list[str] = []  # in a pipe, a frame per interval: read two, then Ctrl+C
    while sum("Ctrl+C to quit" in line for line in seen) < 2 and len(seen) < 500:
        seen.append(process.stdout.readline())
    # The rest read through the same text stream: communicate() would read the pipe's bytes
    # past what readline() buffered, and could start in the middle of a UTF-8 character.
    process.send_signal(signal.SIGINT)
    killer = threading.Timer(30, process.kill)  # a frozen watch fails the test, not the run
    killer.start()
    try:
        out, err = "".join(seen) + process.stdout.read(), process.stderr.read()
        process.wait()
    finally:
        killer.cancel()
    assert process.returncode == 0, err
    assert "Jobs:" in out and "queued 1" in out and "Ctrl+C to quit" in out
    assert out.count("Ctrl+C to quit") >= 2  # frame after frame
    assert "Traceback" not in err
    result = project.cli("status", "--watch", "--json")
    assert result.exit_code == 2 and "--watch is a live view" in result.stderr


@pytest.mark.sqlite
def test_commands_never_create_a_database_to_read_or_steer(project):
    for command in (["history"], ["stats"], ["results"], ["show", "abcd1234"], ["cancel", "abcd1234"],
                    ["retry", "abcd1234"], ["purge", "--yes"]):  # fmt: skip
        result = project.cli(*command)
        assert result.exit_code == 1 and "no database at" in result.stderr, command
    assert not project.database.exists()


def test_status_limit_counts_jobs_not_periodic_runs(project):
    project.write_config(schedules='"sample" = "*/5 * * * *"')
    later = project.enqueue("add", "1", "--delay", "2h")
    project.enqueue("add", "2", "--delay", "3h")
    project.burst()  # a worker moves them to the schedule
    data = json.loads(project.ok("status", "--json", "--limit", "1"))
    assert [j["id"] for j in data["scheduled"] if j["id"]] == [later]
    assert {j["task"].rsplit(".", 1)[1] for j in data["scheduled"] if not j["id"]} == {"sample", "yearly", "prune"}
    assert "1 of 2 shown" in project.ok("status", "--limit", "1")


def test_show_gives_the_whole_result_while_it_is_kept(project):
    value = "A" * 500
    first = project.enqueue("echo", json.dumps(value))
    project.burst()
    assert value in "".join(project.ok("show", first).split())  # the cached result of echo, folded to the width
    second = project.enqueue("echo", "short")
    project.burst()
    # No longer the cached result: the preview only. Huey's unread copy is a pickle,
    # and `show` never unpickles what the database holds.
    assert "result" not in json.loads(project.ok("show", first, "--json"))["job"]
    out = project.ok("show", first)
    assert "result (preview)" in out and value not in out and "…" in out
    assert json.loads(project.ok("show", second, "--json"))["job"]["result"] == "short"
    project.ok("purge", "--results", "--yes")
    assert "result" not in json.loads(project.ok("show", second, "--json"))["job"]


def test_an_empty_task_name_or_a_huge_limit_is_refused(project):
    project.enqueue("add", "1")
    for command in (
        ["history", "--task", ""],
        ["retry", "--failed", "--task", ""],
        ["purge", "--queued", "--task", ""],
    ):
        result = project.cli(*command)
        assert result.exit_code == 2 and "unknown task ''" in result.stderr, command
    for command in (["history", "--limit", "9223372036854775807"], ["status", "--watch", "--interval", "inf"]):
        result = project.cli(*command)
        assert result.exit_code == 2 and "Traceback" not in result.stderr, command
    assert project.status()["counts"]["queued"] == 1


JOB_KEYS = {
    "id", "task", "state", "args", "kwargs", "priority", "eta", "enqueued_at", "started_at", "finished_at",
    "duration", "attempts", "worker", "error", "error_type", "cause", "cause_type", "traceback", "result_preview",
    "retry_of", "retried_as", "args_preview",
}  # fmt: skip
ATTEMPT_KEYS = {
    "attempt", "started_at", "finished_at", "duration", "worker", "outcome", "error", "error_type",
    "error_message", "cause", "cause_type", "traceback",
}  # fmt: skip
RESULT_KEYS = {"task", "job_id", "value", "value_preview", "computed_at", "duration", "age"}
STATS_KEYS = {
    "task", "runs", "failures", "failure_rate", "p50", "p95", "max", "last_run", "last_outcome",
    "runs_by_bucket", "failures_by_bucket",
}  # fmt: skip
TASK_KEYS = {
    "name", "kind", "schedule", "schedule_source", "next_run", "retries", "timeout", "last_run", "catch_up", "missed",
    "caught_up",
}  # fmt: skip
CATALOG_KEYS = {"origin", "recorded_at", "changed", "notice"}


def test_json_documents_have_the_documented_keys(project, ran):
    "The README documents these shapes: a failing test here means the README must change too."
    status = json.loads(project.ok("status", "--json"))
    assert set(status) == {"counts", "consumers", "queued", "scheduled", "running", "failed", "results", "catalog"}
    assert set(status["catalog"]) == CATALOG_KEYS
    assert set(status["failed"][0]) == JOB_KEYS and set(status["results"][0]) == RESULT_KEYS
    shown = json.loads(project.ok("show", ran["flaky"], "--json"))
    assert set(shown) == {"job", "attempts"} and set(shown["job"]) == JOB_KEYS | {"result"}
    assert set(shown["attempts"][0]) == ATTEMPT_KEYS
    history = json.loads(project.ok("history", "--json"))
    assert set(history) == {"jobs", "more"} and set(history["jobs"][0]) == JOB_KEYS
    stats = json.loads(project.ok("stats", "--json"))
    assert set(stats) == {"since", "window_seconds", "tasks"} and set(stats["tasks"][0]) == STATS_KEYS
    results = json.loads(project.ok("results", "--json"))
    assert set(results) == {"results", "more"} and set(results["results"][0]) == RESULT_KEYS
    assert set(json.loads(project.ok("results", "add", "--json"))) == RESULT_KEYS
    tasks = json.loads(project.ok("tasks", "--json"))
    assert set(tasks) == {"tasks", "more", "catalog"} and set(tasks["tasks"][0]) == TASK_KEYS
    assert set(tasks["catalog"]) == CATALOG_KEYS
    assert set(tasks["tasks"][0]["last_run"]) == JOB_KEYS


def test_narrow_terminals_drop_columns_rather_than_cut_what_matters(project, ran):
    from typer.testing import CliRunner

    from taskctl.cli import app

    must_show = {
        "status": ["ValueError", "failed at"],
        "history": ["ValueError", "result / error"],
        "tasks": ["last run", "next run"],
        "stats": ["runs", "failed"],
    }
    chart = CliRunner().invoke(app, ["--config", str(project.config), "stats"], env={"COLUMNS": "80"})
    assert "runs over time" in chart.stdout and "█" in chart.stdout  # dropped last, below 80 columns here
    for command, needed in must_show.items():
        result = CliRunner().invoke(app, ["--config", str(project.config), command], env={"COLUMNS": "60"})
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 60, (command, result.stdout)
        assert all(text in result.stdout for text in needed), (command, result.stdout)
        assert not any(re.search(r"\d\d:\d?…|\d\d:\d\d:$", line.rstrip()) for line in lines), result.stdout
