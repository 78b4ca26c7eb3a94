"""Per-task figures over a window of finished jobs: what `taskctl stats` shows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from taskctl.model import RAN, Run, State, iso

BUCKETS = 24


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    "Nearest-rank percentile of an ascending list: a value that really occurred."
    if not sorted_values:
        return None
    rank = max(math.ceil(fraction * len(sorted_values)), 1)
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class TaskStats:
    task: str
    runs: int
    failures: int
    p50: float | None
    p95: float | None
    max: float | None
    last_run: float
    last_outcome: State
    runs_by_bucket: tuple[int, ...]  # oldest first
    failures_by_bucket: tuple[int, ...]

    @property
    def failure_rate(self) -> float:
        return round(self.failures / self.runs, 4)

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        return {
            "task": self.task,
            "runs": self.runs,
            "failures": self.failures,
            "failure_rate": self.failure_rate,
            "p50": self.p50,
            "p95": self.p95,
            "max": self.max,
            "last_run": iso(self.last_run, tz),
            "last_outcome": self.last_outcome.value,
            "runs_by_bucket": list(self.runs_by_bucket),
            "failures_by_bucket": list(self.failures_by_bucket),
        }


def task_stats(jobs: Iterable[Run], since: float, now: float, buckets: int = BUCKETS) -> list[TaskStats]:
    """Finished jobs -> one summary per task, busiest first: runs, failures, p50/p95/max
    duration, the last run and its outcome, and runs and failures per time bucket."""
    width = max(now - since, 1e-9) / buckets
    runs: dict[str, list[Run]] = {}
    for job in jobs:
        if job.state in RAN:
            runs.setdefault(job.task or "?", []).append(job)
    summaries = []
    for task, done in runs.items():
        by_bucket, failed_by_bucket = [0] * buckets, [0] * buckets
        for job in done:
            bucket = min(int((job.finished_at - since) / width), buckets - 1)
            by_bucket[bucket] += 1
            failed_by_bucket[bucket] += job.state is State.FAILED
        durations = sorted(job.duration for job in done if job.duration is not None)
        last = max(done, key=lambda job: job.finished_at)
        summaries.append(
            TaskStats(
                task=task,
                runs=len(done),
                failures=sum(job.state is State.FAILED for job in done),
                p50=percentile(durations, 0.50),
                p95=percentile(durations, 0.95),
                max=durations[-1] if durations else None,
                last_run=last.finished_at,
                last_outcome=last.state,
                runs_by_bucket=tuple(by_bucket),
                failures_by_bucket=tuple(failed_by_bucket),
            )
        )
    summaries.sort(key=lambda s: (-s.runs, s.task))
    return summaries
