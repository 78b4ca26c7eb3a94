"""`taskctl move`: copy a SQLite record into Redis, for a user who outgrows one machine.

Queued, scheduled and failed jobs (with their messages, so they still run and
can be retried), finished jobs with their attempts, and the cached results are
copied as they are. A job already in Redis is left alone, so a second run
doubles nothing. The source is then marked as moved: a consumer started on it
refuses, rather than run the copied jobs a second time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from taskctl.app import App
from taskctl.engines.base import Selection
from taskctl.engines.redis_store import RedisJobStorage
from taskctl.engines.sqlite_store import JobStorage
from taskctl.errors import NotPossible
from taskctl.model import State
from taskctl.presence import FORGET_AFTER, is_alive

# What stays behind: a claim belongs to the source's consumer, a lease to its clock.
_NOT_COPIED = ("rowid", "queue", "owner", "lease_until", "attempt_rows")


@dataclass
class Moved:
    jobs: int = 0  # copied now
    present: int = 0  # in Redis already (an earlier move)
    results: int = 0


def check(source: App) -> int:
    "Refuse while the source is in use; returns how many jobs will be looked at."
    store = _sqlite(source)
    now = time.time()
    alive = [c for c in store.consumers(now - FORGET_AFTER) if is_alive(c, now, source.settings.lease)]
    if alive:
        who = ", ".join(f"{c.host}:{c.pid}" for c in alive)
        raise NotPossible(f"a consumer is running on {source.settings.location} ({who}); stop it, then move")
    running = store.count(Selection("running", states=frozenset({State.RUNNING})))
    if running:
        raise NotPossible(
            f"{running} job(s) are running on {source.settings.location} with no consumer alive; "
            "start `taskctl run-consumer --burst` once to recover them, then move"
        )
    return store.count(Selection("all jobs"))


def move(source: App, target: RedisJobStorage, progress: Callable[[int], None] = lambda n: None) -> Moved:
    store, done = _sqlite(source), Moved()
    for batch in store.export():
        for row in batch:
            job = {k: v for k, v in row.items() if k not in _NOT_COPIED}
            if job["state"] == "due":  # between the schedule and the queue: queued
                job["state"] = State.QUEUED.value
            attempts = [{k: v for k, v in a.items() if k != "job_id"} for a in row["attempt_rows"]]
            if target.import_job(job, attempts):
                done.jobs += 1
            else:
                done.present += 1
        progress(len(batch))
    for task, job_id, value, computed_at, duration in store.export_results():
        target.import_result(task, job_id, value, computed_at, duration)
        done.results += 1
    store.mark_moved(target_location(target))
    return done


def target_location(target: RedisJobStorage) -> str:
    from taskctl.config import redact

    return redact(target.url)


def _sqlite(app: App) -> JobStorage:
    if not isinstance(app.store, JobStorage):
        raise NotPossible("`taskctl move` copies a SQLite database to Redis; this config's database is not SQLite")
    return app.store
