"""`taskctl check`: what monitoring (or a laptop without cron) wants to be told.

Each problem is one line: no consumer alive, a periodic run that was due and
never queued, a task whose recent runs all failed. Engine-neutral: it asks the
record, never SQL or Redis, about the tasks of the catalog (what the consumer
runs), so a check loads neither Huey nor the task modules once a consumer ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from cronsim import CronSim

from taskctl.engines.base import Record
from taskctl.model import State, iso

if TYPE_CHECKING:
    from taskctl.catalog import Catalog
    from taskctl.config import Settings

LATE = 300.0  # seconds a periodic run may lag its minute (a busy queue) before it counts as missed
HORIZON = 86400.0  # how far back a missed run is looked for: both engines remember a slot for 2 days
FAILING_RUNS = 3  # this many failures in a row, and nothing since: a task keeps failing


@dataclass(frozen=True)
class Problem:
    kind: str  # no-database, no-consumer, overdue, failing
    message: str
    task: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "task": self.task, "message": self.message}


def check(
    settings: Settings,
    record: Record | None,
    tasks: Catalog,
    now: float,
    late: float = LATE,
    failing_runs: int = FAILING_RUNS,
) -> list[Problem]:
    "Every problem found, in a stable order: the consumer, then tasks by name. No record: none written yet."
    if record is None:
        return [Problem("no-database", f"no database at {settings.database} yet: no consumer has run; start one")]
    problems = []
    # The record's read, not the store's (which forgets old entries): a check writes nothing.
    if not any(c.beat_at >= now - settings.lease for c in record.consumers()):
        problems.append(
            Problem("no-consumer", f"no consumer is alive on {settings.location}: start `taskctl run-consumer`")
        )
    for entry in sorted(tasks.periodic(), key=lambda entry: entry.name):
        due = last_due(entry.cron or "", settings.tz, now - late)
        if due is not None and due >= now - HORIZON and not record.slot_taken(entry.name, due):
            missed = f"{entry.name} was due at {_when(due, settings.tz)} ({entry.cron}) and did not run"
            problems.append(Problem("overdue", missed, entry.name))
        if found := failing(record, entry.name, failing_runs, settings.tz):
            problems.append(found)
    on_demand = sorted(entry.name for entry in tasks.tasks if not entry.cron)
    problems += [found for name in on_demand if (found := failing(record, name, failing_runs, settings.tz))]
    return problems


def last_due(cron: str, tz: tzinfo, before: float) -> float | None:
    "The latest minute at or before `before` that the schedule matches (epoch seconds), as its slot names it."
    # A second into the minute: going back, cronsim skips the minute it starts in.
    start = datetime.fromtimestamp(before, UTC).astimezone(tz).replace(second=1, microsecond=0)
    try:
        return next(CronSim(cron, start, reverse=True)).timestamp()
    except StopIteration:
        return None


def failing(record: Record, task: str, runs: int, tz: tzinfo) -> Problem | None:
    "The task's last `runs` finished jobs all failed."
    last = record.history(runs, task=task)
    if len(last) < runs or any(job.state is not State.FAILED for job in last):
        return None
    error = last[0].cause.text if last[0].cause else last[0].error
    when = _when(last[0].finished_at, tz)
    return Problem("failing", f"{task} failed its last {runs} runs (latest at {when}: {error})", task)


def _when(epoch: float | None, tz: tzinfo) -> str:
    return (iso(epoch, tz) or "?")[:19].replace("T", " ")
