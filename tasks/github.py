"""Every 10 minutes: the 100 most-starred GitHub repositories, stored for later pages.

Settings ([github] in config.toml): api_url, token_env (the *name* of an
environment variable holding a token; the token itself is never stored),
timeout, count.
"""

from __future__ import annotations

import os
import time
from typing import Any

import requests
from huey.api import Task
from huey.exceptions import RetryTask

from taskctl import settings, task
from tasks.data import data_db, utcnow, writing

USER_AGENT = "taskctl-example (+https://github.com/)"
MAX_RATE_LIMIT_WAIT = 3600.0


class RateLimited(Exception):
    "GitHub refused the request until its rate limit resets"

    def __init__(self, wait: float):
        super().__init__(f"GitHub rate limit hit; retry in {wait:.0f}s")
        self.wait = wait


def rate_limit_wait(response: requests.Response, now: float | None = None) -> float | None:
    "Seconds to wait if `response` is a rate-limit answer, else None."
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    if "Retry-After" in headers:
        try:
            return min(max(float(headers["Retry-After"]), 1.0), MAX_RATE_LIMIT_WAIT)
        except ValueError:
            return 60.0
    if headers.get("X-RateLimit-Remaining") == "0" and "X-RateLimit-Reset" in headers:
        reset = float(headers["X-RateLimit-Reset"]) - (now or time.time())
        return min(max(reset, 1.0), MAX_RATE_LIMIT_WAIT)
    return 60.0 if response.status_code == 429 else None


def fetch_top_repos(api_url: str, count: int = 100, timeout: float = 10.0, token: str | None = None) -> list[dict]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/vnd.github+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = requests.get(
        f"{api_url.rstrip('/')}/search/repositories",
        params={"q": "stars:>1", "sort": "stars", "order": "desc", "per_page": count},
        headers=headers,
        timeout=timeout,
    )
    wait = rate_limit_wait(response)
    if wait is not None:
        raise RateLimited(wait)
    response.raise_for_status()
    return response.json()["items"]


def store_repos(items: list[dict], fetched_at: str) -> int:
    "Upsert in one transaction: a failed fetch never reaches here, so the last good data stays."
    rows = [
        {
            "full_name": item["full_name"],
            "id": item["id"],
            "stars": item["stargazers_count"],
            "language": item.get("language"),
            "description": item.get("description"),
            "html_url": item.get("html_url"),
            "fetched_at": fetched_at,
        }
        for item in items
    ]
    db = data_db()
    with writing(db):
        db["repos"].upsert_all(rows, pk="full_name", alter=True)
        db["fetches"].insert({"fetched_at": fetched_at, "count": len(rows)})
    return len(rows)


@task(retries=3, retry_delay=30, retry_backoff=2, context=True)
def top_repos(task: Task | None = None) -> dict[str, Any]:
    """Fetch the most-starred repositories and store them in the data database."""
    config = settings().section("github")
    token_env = config.get("token_env", "GITHUB_TOKEN")
    try:
        items = fetch_top_repos(
            config.get("api_url", "https://api.github.com"),
            count=int(config.get("count", 100)),
            timeout=float(config.get("timeout", 10)),
            token=os.environ.get(token_env) if token_env else None,
        )
    except RateLimited as exc:
        if task is None or not task.retries:
            raise
        # Huey's RetryTask does not use up a retry; a rate limit should.
        task.retries -= 1
        raise RetryTask(str(exc), delay=exc.wait) from exc
    fetched_at = utcnow()
    count = store_repos(items, fetched_at)
    return {"count": count, "fetched_at": fetched_at, "top": [i["full_name"] for i in items[:5]]}
