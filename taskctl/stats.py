"""Per-task figures over a window of finished jobs: what `taskctl stats` shows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

BUCKETS = 24
RAN = ("succeeded", "failed")  # revoked and expired jobs never ran


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    "Nearest-rank percentile of an ascending list: a value that really occurred."
    if not sorted_values:
        return None
    rank = max(math.ceil(fraction * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def task_stats(
    rows: Iterable[dict[str, Any]], since: float, now: float, buckets: int = BUCKETS
) -> list[dict[str, Any]]:
    """Rows of (task, state, finished_at, duration) -> one summary per task, busiest
    first: runs, failures, failure rate, p50/p95/max duration, the last run and its
    outcome, and runs and failures per time bucket (oldest first)."""
    width = max(now - since, 1e-9) / buckets
    by_task: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["state"] not in RAN:
            continue
        entry = by_task.setdefault(
            row["task"] or "?",
            {"durations": [], "runs": 0, "failed": 0, "last": None, "runs_by_bucket": [0] * buckets,
             "failed_by_bucket": [0] * buckets},
        )  # fmt: skip
        entry["runs"] += 1
        bucket = min(int((row["finished_at"] - since) / width), buckets - 1)
        entry["runs_by_bucket"][bucket] += 1
        if row["state"] == "failed":
            entry["failed"] += 1
            entry["failed_by_bucket"][bucket] += 1
        if row["duration"] is not None:
            entry["durations"].append(row["duration"])
        if entry["last"] is None or row["finished_at"] > entry["last"]["finished_at"]:
            entry["last"] = row
    summaries = []
    for task, entry in by_task.items():
        durations = sorted(entry["durations"])
        summaries.append(
            {
                "task": task,
                "runs": entry["runs"],
                "failures": entry["failed"],
                "failure_rate": round(entry["failed"] / entry["runs"], 4),
                "p50": percentile(durations, 0.50),
                "p95": percentile(durations, 0.95),
                "max": durations[-1] if durations else None,
                "last_run_epoch": entry["last"]["finished_at"],
                "last_outcome": entry["last"]["state"],
                "runs_by_bucket": entry["runs_by_bucket"],
                "failures_by_bucket": entry["failed_by_bucket"],
            }
        )
    summaries.sort(key=lambda s: (-s["runs"], s["task"]))
    return summaries
