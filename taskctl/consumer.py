"""Running the consumer: recovery, heartbeats, burst mode, clean shutdown."""

from __future__ import annotations

import logging
import os
import socket
import time

from huey.consumer import Consumer, ConsumerStopped

from taskctl.app import App

logger = logging.getLogger("taskctl.consumer")


def run_consumer(
    app: App,
    workers: int,
    periodic: bool = True,
    burst: bool = False,
    worker_type: str = "thread",
) -> None:
    """Run workers and the scheduler until stopped (Ctrl+C: running jobs finish
    first; a second Ctrl+C interrupts them, and they go back to the queue).
    With `burst`, stop as soon as nothing is queued, due or running."""
    storage, host = app.storage, socket.gethostname()
    found = storage.recover_lost(host, alive={os.getpid()})
    if found:
        logger.warning("Recovered %d job(s) whose worker stopped without finishing them.", found)
    consumer = app.huey.create_consumer(
        workers=workers,
        # Burst runs are for scripts and tests: only the jobs already there.
        periodic=periodic and not burst,
        worker_type=worker_type,
        initial_delay=0.05,
        max_delay=app.settings.poll_interval,
        check_worker_health=True,
    )
    consumer.start()
    beat_every = app.settings.lease / 4
    next_beat = health_ts = time.monotonic()
    try:
        while True:
            health_ts = consumer.loop(health_ts)
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + beat_every
                _heartbeat(app, consumer, host)
            if burst and storage.is_idle():
                consumer.stop(graceful=True)
                break
    except ConsumerStopped:
        pass
    app.huey.notify_interrupted_tasks()


def _heartbeat(app: App, consumer: Consumer, host: str) -> None:
    # Renew our leases, then look for jobs of consumers that died.
    pids = {os.getpid()} | {p.pid for _, p in consumer.worker_threads if getattr(p, "pid", None) is not None}
    try:
        app.storage.renew_leases(host, pids)
        found = app.storage.recover_lost(host, alive=pids)
    except Exception:
        logger.exception("Heartbeat failed; will try again.")
        return
    if found:
        logger.warning("Recovered %d job(s) whose worker stopped without finishing them.", found)
