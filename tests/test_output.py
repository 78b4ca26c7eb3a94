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
