"""The shipped GitHub task against a local HTTP server standing in for the API."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from taskctl.app import build_app
from taskctl.config import load_settings


def repo(i: int) -> dict:
    return {
        "id": 1000 + i,
        "full_name": f"owner{i}/repo{i}",
        "stargazers_count": 500_000 - i * 1000,
        "language": ["Python", "Rust", None][i % 3],
        "description": f"repository {i}",
        "html_url": f"https://github.com/owner{i}/repo{i}",
    }


@dataclass
class FakeGitHub:
    url: str = ""
    # Each request takes the next answer: (status, headers, body, delay); the last one repeats.
    answers: list[tuple[int, dict, dict, float]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def ok(self, count: int = 100) -> tuple[int, dict, dict, float]:
        return (200, {}, {"total_count": count, "items": [repo(i) for i in range(count)]}, 0.0)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append({"path": self.path, "headers": dict(self.headers), "at": time.time()})
            status, headers, body, delay = fake.answers[0] if len(fake.answers) == 1 else fake.answers.pop(0)
            time.sleep(delay)
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the timeout tests hang up on purpose; the broken pipe is expected

    server = QuietServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def gh_project(project, github):
    project.config.write_text(
        f"""
[taskctl]
modules = ["tasks.github", "tasks.reports"]
database = "taskctl.db"
poll_interval = 0.1

[github]
api_url = "{github.url}"
token_env = "TASKCTL_TEST_GITHUB_TOKEN"
timeout = 0.5

[data]
database = "data.db"
"""
    )
    return project


def stored_repos(project) -> int:
    db = sqlite3.connect(project.root / "data.db")
    return db.execute("select count(*) from repos").fetchone()[0]


def test_fetch_stores_the_top_repositories(gh_project, github, monkeypatch):
    monkeypatch.setenv("TASKCTL_TEST_GITHUB_TOKEN", "s3cret")
    github.answers = [github.ok()]
    job_id = gh_project.enqueue("top_repos")
    gh_project.burst()
    job = gh_project.job(job_id)
    assert job["state"] == "succeeded", job["error"]
    assert stored_repos(gh_project) == 100
    summary = json.loads(job["result_preview"])
    assert summary["count"] == 100 and summary["top"][0] == "owner0/repo0"
    request = github.requests[0]
    assert request["path"].startswith("/search/repositories?")
    assert "sort=stars" in request["path"] and "per_page=100" in request["path"]
    assert request["headers"]["User-Agent"].startswith("taskctl")
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    # The token is read from the environment, never stored. (Read through SQLite:
    # opening the file directly would drop this process's SQLite locks on it.)
    dump = "\n".join(sqlite3.connect(gh_project.database).iterdump())
    assert "s3cret" not in dump and b"s3cret".hex() not in dump.lower()

    # The report precomputes from that data, and becomes a cached result.
    gh_project.enqueue("stars_by_language")
    gh_project.burst()
    report = next(r for r in gh_project.status()["results"] if r["task"].endswith("stars_by_language"))
    assert {row["language"] for row in report["value"]} == {"Python", "Rust", "unknown"}
    assert sum(row["repos"] for row in report["value"]) == 100


def test_rate_limit_answer_is_retried_after_retry_after(gh_project, github):
    github.answers = [(403, {"Retry-After": "1"}, {"message": "API rate limit exceeded"}, 0.0), github.ok(10)]
    job_id = gh_project.enqueue("top_repos")
    gh_project.burst()
    job = gh_project.job(job_id)
    assert job["state"] == "succeeded" and job["attempts"] == 2
    assert len(github.requests) == 2
    assert github.requests[1]["at"] - github.requests[0]["at"] >= 0.9
    assert stored_repos(gh_project) == 10


def test_rate_limit_without_retries_left_fails_with_the_reset_time(gh_project, github):
    from tasks.github import RateLimited, top_repos

    build_app(load_settings(gh_project.config))
    reset = int(time.time()) + 120
    github.answers = [(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, {}, 0.0)]
    with pytest.raises(RateLimited) as caught:
        top_repos.func()
    assert 100 <= caught.value.wait <= 121


def test_failed_fetches_keep_the_last_good_data(gh_project, github):
    from tasks.github import top_repos

    build_app(load_settings(gh_project.config))
    github.answers = [github.ok(50)]
    assert top_repos.func()["count"] == 50
    github.answers = [(500, {}, {"message": "boom"}, 0.0)]
    with pytest.raises(requests.HTTPError):
        top_repos.func()
    github.answers = [(200, {}, {"items": []}, 2.0)]  # slower than the 0.5s timeout
    with pytest.raises(requests.Timeout):
        top_repos.func()
    assert stored_repos(gh_project) == 50


def test_a_timeout_is_recorded_as_a_failed_attempt(gh_project, github):
    github.answers = [(200, {}, {"items": []}, 2.0)]
    job_id = gh_project.enqueue("top_repos")
    consumer = gh_project.start_consumer("--no-periodic")
    try:
        from conftest import stop, wait_until

        job = wait_until(lambda: (j := gh_project.job(job_id))["error_type"] and j, what="the first attempt to fail")
    finally:
        stop(consumer)
    assert job["error_type"] in ("ReadTimeout", "ConnectionError")
    assert "timed out" in job["error"].lower()
    assert job["state"] in ("retrying", "running")  # retries=3, retry_delay=30s
