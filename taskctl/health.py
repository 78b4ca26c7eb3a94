"""`taskctl check`: what monitoring (or a laptop without cron) wants to be told.

Each problem is one line: no consumer alive, a periodic run that was due and
never queued, a task whose recent runs all failed. Engine-neutral: it asks the
app's store and record, never SQL or Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from cronsim import CronSim

from taskctl.engines.base import Record
from taskctl.model import State, iso

if TYPE_CHECKING:
    from taskctl.app import App

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


def check(app: App, now: float, late: float = LATE, failing_runs: int = FAILING_RUNS) -> list[Problem]:
    "Every problem found, in a stable order: the consumer, then tasks by name."
    settings = app.settings
    if not app.exists:
        return [Problem("no-database", f"no database at {settings.database} yet: no consumer has run; start one")]
    problems = []
    # The record's read, not the store's (which forgets old entries): a check writes nothing.
    if not any(c.beat_at >= now - settings.lease for c in app.record.consumers()):
        problems.append(
            Problem("no-consumer", f"no consumer is alive on {settings.location}: start `taskctl run-consumer`")
        )
    for info in sorted(app.periodic(), key=lambda info: info.name):
        due = last_due(info.cron or "", settings.tz, now - late)
        if due is not None and due >= now - HORIZON and not app.store.slot_taken(info.name, due):
            missed = f"{info.name} was due at {_when(due, settings.tz)} ({info.cron}) and did not run"
            problems.append(Problem("overdue", missed, info.name))
        if found := failing(app.record, info.name, failing_runs, settings.tz):
            problems.append(found)
    on_demand = sorted(name for name, info in app.tasks.items() if not info.cron)
    problems += [found for name in on_demand if (found := failing(app.record, name, failing_runs, settings.tz))]
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
