"""What output shows and how: the cause of a chained error, escaping in logs and JSON, piped tables."""

from __future__ import annotations

import json

from conftest import TASK_MODULE

CHAINED = """

@task()
def fetch(host="api.github.invalid"):
    "Fails as requests does when a name does not resolve: the cause is three exceptions down."
    import socket

    try:
        try:
            raise socket.gaierror(-2, "Name or service not known")
        except OSError as exc:
            raise OSError(f"Failed to establish a new connection to {host}") from exc
    except OSError:
        raise ConnectionError(f"HTTPSConnectionPool(host={host!r}, port=443): Max retries exceeded " + "x" * 80)
"""


def add_tasks(project, source: str) -> None:
    (project.root / f"{project.module}.py").write_text(TASK_MODULE + source)


def test_a_chained_error_shows_its_innermost_cause_first_and_whole(project):
    add_tasks(project, CHAINED)
    failed, plain = project.enqueue("fetch"), project.enqueue("boom", "plain")
    project.burst()
    job = json.loads(project.ok("show", failed, "--json"))
    assert job["job"]["error_type"] == "ConnectionError"
    assert job["job"]["cause"] == "gaierror: [Errno -2] Name or service not known"
    assert job["job"]["cause_type"] == "gaierror"
    assert job["attempts"][0]["cause_type"] == "gaierror"
    unchained = json.loads(project.ok("show", plain, "--json"))["job"]
    assert unchained["error_type"] == "ValueError" and unchained["cause"] is None and unchained["cause_type"] is None
    status = project.status()
    assert {j["id"]: j["cause_type"] for j in status["failed"]} == {failed: "gaierror", plain: None}
    # The failed table folds the error onto more lines instead of cutting it, cause first.
    table = project.ok("status")
    flat = " ".join(line.strip() for line in table.splitlines())
    assert "gaierror: [Errno -2] Name or service not known ← ConnectionError:" in flat
    assert "x" * 80 in flat and "…" not in flat.partition("Failed")[2]
    history = " ".join(line.strip() for line in project.ok("history").splitlines())
    assert "Name or service not known ← ConnectionError" in history
    assert "cause" in project.ok("show", failed)


HOSTILE_ERROR = "\x1b]8;;https://evil.invalid\x07click\x1b]8;;\x07 \x1b]0;owned\x07 \x1b[2J \u202eevil\nforged line"


def test_consumer_log_lines_escape_control_sequences(project):
    job = project.enqueue("boom", json.dumps(HOSTILE_ERROR))
    for verbose in ((), ("-v",)):
        project.enqueue("boom", json.dumps(HOSTILE_ERROR))
        log = project.burst(*verbose).stderr
        assert f"{job} failed: ValueError:" in log or "failed: ValueError:" in log
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in log, (raw, log)
        if not verbose:  # with -v, Huey's traceback (many lines anyway) follows, its message as raised
            assert "\nforged line" not in log
        assert "\\x1b]8;;https://evil.invalid\\x07click" in log and "\\u202eevil\\nforged line" in log


def test_a_chained_failure_logs_its_cause(project):
    add_tasks(project, CHAINED)
    project.enqueue("fetch")
    log = project.burst().stderr
    assert "failed: ConnectionError: HTTPSConnectionPool(" in log
    assert "(cause: gaierror: [Errno -2] Name or service not known)" in log


def strict(text: str):
    "What a strict parser (JavaScript's JSON.parse, Go's encoding/json) accepts: no NaN or Infinity."

    def refuse(name: str):
        raise AssertionError(f"bare {name} in a JSON document")

    return json.loads(text, parse_constant=refuse)


def test_json_documents_are_strict_and_escape_bidi_controls(project):
    add_tasks(
        project,
        "\n\n@task()\ndef odd():\n"
        "    return {'nan': float('nan'), 'inf': [float('inf'), -float('inf')], 'text': 'a\\u202eb\\x9b'}\n",
    )
    job = project.enqueue("odd")
    project.burst()
    for args in (("status", "--json"), ("results", "--json"), ("results", "odd", "--json"), ("show", job, "--json"),
                 ("history", "--json"), ("tasks", "--json")):  # fmt: skip
        out = project.ok(*args)
        assert "\u202e" not in out and "\x9b" not in out, args
        strict(out)
    value = strict(project.ok("results", "odd", "--json"))["value"]
    assert value == {"nan": "NaN", "inf": ["Infinity", "-Infinity"], "text": "a\u202eb\x9b"}
    assert "\\u202e" in project.ok("results", "odd", "--json")


def test_enqueue_refuses_nan_infinity_and_deep_nesting_in_one_line(project):
    for argument in ("NaN", "[1, Infinity]", 'key={"a": -Infinity}', "[" * 500 + "]" * 500,
                     "k=" + '{"a": ' * 500 + "1" + "}" * 500):  # fmt: skip
        result = project.cli("enqueue", "echo", argument)
        assert result.exit_code == 2, (argument[:20], result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
        assert "NaN or Infinity" in result.stderr or "nested more than 100 levels deep" in result.stderr
    assert not project.has_record() or project.status()["counts"]["queued"] == 0
    assert project.enqueue("echo", '"NaN"') and project.enqueue("echo", "[" * 50 + "]" * 50)


def test_piped_tables_have_no_trailing_spaces(project):
    project.enqueue("boom", "a short error")
    project.enqueue("add", "1", "2")
    project.burst()
    project.enqueue("echo", "queued")
    for command in (("status",), ("history",), ("tasks",), ("stats",), ("results",)):
        out = project.ok(*command)
        assert out.count("\n") > 3, command
        assert [line for line in out.splitlines() if line.endswith(" ")] == [], command
