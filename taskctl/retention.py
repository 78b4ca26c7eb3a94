"""What to delete from the record: the retention policy, and `taskctl purge`.

A purge is a list of `Selection`s, each counted before anything is deleted (so
`purge` can say how many rows it will remove and ask first), then deleted by
the engine in small batches that never hold up a worker for long.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from taskctl.config import Retention
from taskctl.decorators import TaskProxy
from taskctl.engines.base import Record, Selection, Store
from taskctl.model import FINAL, State

if TYPE_CHECKING:
    from taskctl.app import App

KEPT_APART = frozenset({State.FAILED})  # failed jobs have their own, longer, keep
OTHER_FINAL = FINAL - KEPT_APART


def waiting(states: frozenset[State], task: str | None = None) -> Selection:
    "Jobs still waiting to run (queued, or scheduled and retrying)."
    label = " and ".join(sorted(s.value for s in states)) + " jobs" + (f" of {task}" if task else "")
    return Selection(label, states=states, task=task)


def history(before: float, task: str | None = None, state: State | None = None, label: str = "") -> Selection:
    "Finished jobs that finished before `before` (epoch seconds)."
    label = label or "finished jobs" + (f" of {task}" if task else "") + (f" that {state.value}" if state else "")
    states = frozenset({state}) if state else FINAL
    return Selection(label, states=states, task=task, finished_before=before)


def results(task: str | None = None) -> list[Selection]:
    """The cached results (`taskctl results`), and Huey's stored return values
    of jobs in the record that nobody has read (`Result.get()`)."""
    of = f" of {task}" if task else ""
    return [
        Selection("cached results" + of, kind="results", task=task),
        Selection("return values Huey stores until read (Result.get)" + of, kind="huey_results", task=task),
    ]


def policy(record: Record, retention: Retention, now: float | None = None) -> list[Selection]:
    "What the retention settings remove now: old jobs, then each task's jobs beyond its cap."
    now = time.time() if now is None else now
    selections = [
        # By state: failed jobs kept longer sit among the oldest rows, and every
        # batch would walk past them again.
        Selection(
            f"finished jobs older than {span(retention.keep)} (failed ones apart)",
            states=OTHER_FINAL,
            finished_before=now - retention.keep,
            rule="keep",
        ),
        Selection(
            f"failed jobs older than {span(retention.keep_failed)}",
            states=KEPT_APART,
            finished_before=now - retention.keep_failed,
            rule="keep_failed",
        ),
    ]
    for task in record.tasks_with_history():
        # The finish time of the newest job past the cap: it and everything older go.
        cutoff = record.nth_finished(task, retention.max_per_task, KEPT_APART)
        if cutoff is not None:
            selections.append(
                Selection(
                    f"jobs of {task} beyond the newest {retention.max_per_task:,}",
                    states=OTHER_FINAL,
                    task=task,
                    # Newer than `keep`, so no row is counted twice.
                    finished_from=now - retention.keep,
                    finished_until=cutoff,
                    rule="max_per_task",
                )
            )
    return selections


def prune(store: Store, record: Record, retention: Retention) -> dict[str, int]:
    "Apply the retention settings; what the built-in maintenance job runs. Rows deleted, by setting."
    done = {"keep": 0, "keep_failed": 0, "max_per_task": 0}
    for selection in policy(record, retention):
        done[selection.rule] += store.delete(selection)
    store.forget_slots(time.time() - 2 * 86400)  # a periodic slot guards its own minute only
    return done


def prune_task(app: App) -> TaskProxy:
    "The maintenance job of `app`: a periodic task on its [retention] schedule."

    def prune_job() -> dict[str, int]:
        "Built in: deletes what [retention] says is too old or too many, in small batches."
        return prune(app.store, app.record, app.settings.retention)

    prune_job.__module__ = __name__  # its name stays taskctl.retention.prune
    return TaskProxy(prune_job, {"name": "prune"})


def describe(retention: Retention) -> str:
    return (
        f"keep {span(retention.keep)}, failed jobs {span(retention.keep_failed)}, "
        f"at most {retention.max_per_task:,} finished jobs per task"
    )


def span(seconds: float) -> str:
    "14 days, 12 hours, 1.5 hours, 30 minutes, 45 seconds."
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = round(seconds / size, 1)
            return f"{amount:g} {unit}" + ("" if amount == 1 else "s")
    return f"{seconds:g} second" + ("" if seconds == 1 else "s")
