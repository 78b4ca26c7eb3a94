"""Which consumers are alive, what each runs, and which running jobs are overdue:
what `taskctl workers` lists and `status` sums up. Engine-neutral."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from taskctl.engines.base import Consumer, Record, hostname, pid_alive
from taskctl.model import Job, iso

if TYPE_CHECKING:
    from taskctl.app import App

# A consumer that stopped without saying so is listed as dead this long, then forgotten.
FORGET_AFTER = 24 * 3600.0


def taskctl_version() -> str:
    # Not importlib.metadata: ~25 ms of imports at every consumer start.
    from taskctl import __version__

    return __version__


def me(app: App, started_at: float, workers: int, worker_type: str, pids: list[int]) -> Consumer:
    "What this consumer's heartbeat records of it, now."
    return Consumer(
        owner=app.store.owner,
        host=hostname(),
        pid=os.getpid(),
        started_at=started_at,
        beat_at=time.time(),
        queue=app.settings.name,
        version=taskctl_version(),
        workers=workers,
        worker_type=worker_type,
        config=str(app.settings.path),
        pids=tuple(pids),
    )


def is_alive(consumer: Consumer, now: float, lease: float) -> bool:
    """It beat within a lease (as its jobs' leases say), and, on this host, its
    process still exists: a consumer killed here is seen dead at once."""
    if consumer.beat_at < now - lease:
        return False
    return consumer.host != hostname() or pid_alive(consumer.pid)


@dataclass(frozen=True)
class ConsumerStatus:
    "A consumer as `workers` shows it: alive or dead, and the jobs it is running."

    consumer: Consumer
    alive: bool
    running: list[Job]
    overdue: frozenset[str]  # ids of its running jobs past their task's timeout

    def to_json(self, tz: tzinfo | None = None, now: float = 0.0) -> dict[str, Any]:
        c = self.consumer
        return {
            "owner": c.owner,
            "host": c.host,
            "pid": c.pid,
            "alive": self.alive,
            "started_at": iso(c.started_at, tz),
            "beat_at": iso(c.beat_at, tz),
            "version": c.version or None,
            "workers": c.workers or None,
            "worker_type": c.worker_type or None,
            "config": c.config or None,
            "queue": c.queue,
            "running": [running_json(job, self.overdue, now, tz) for job in self.running],
        }


def running_json(job: Job, overdue: frozenset[str], now: float, tz: tzinfo | None) -> dict[str, Any]:
    "A running job in `--json`: the job object, its elapsed time, and whether it is past its timeout."
    return {**job.to_json(tz), "elapsed": job.elapsed(now), "overdue": job.id in overdue}


def overdue(timeouts: Mapping[str, float | None], jobs: list[Job], now: float) -> frozenset[str]:
    """Running jobs past their task's timeout (`timeouts`: task -> seconds). Huey enforces a timeout
    only in process workers; a thread worker cannot be stopped, so such a job would look healthy forever."""
    late = set()
    for job in jobs:
        timeout = timeouts.get(job.task or "")
        elapsed = job.elapsed(now)
        if timeout and elapsed is not None and elapsed > timeout:
            late.add(job.id)
    return frozenset(late)


def any_alive(record: Record, lease: float, now: float | None = None) -> bool:
    "Is a consumer of this record alive now?"
    now = time.time() if now is None else now
    return any(is_alive(consumer, now, lease) for consumer in record.consumers())


def survey(
    record: Record, running: list[Job], lease: float, timeouts: Mapping[str, float | None], now: float | None = None
) -> list[ConsumerStatus]:
    "Every consumer not yet forgotten, live ones first, each with those of the `running` jobs it runs."
    now = time.time() if now is None else now
    late = overdue(timeouts, running, now)
    found = []
    for consumer in record.consumers():
        if consumer.beat_at < now - FORGET_AFTER:
            continue
        pids = set(consumer.pids) | {consumer.pid}
        mine = [job for job in running if _worker_of(job) in {(consumer.host, pid) for pid in pids}]
        found.append(ConsumerStatus(consumer, is_alive(consumer, now, lease), mine, late))
    return sorted(found, key=lambda s: (not s.alive, -s.consumer.started_at))


def _worker_of(job: Job) -> tuple[str, int] | None:
    "The (host, pid) of a running job's worker (`host:pid/thread`)."
    host, _, pid = (job.worker or "").split("/", 1)[0].rpartition(":")
    return (host, int(pid)) if pid.isdigit() else None
