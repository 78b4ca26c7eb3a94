"""Running the consumer: recovery, heartbeats, burst mode, clean shutdown."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from huey.consumer import Consumer, ConsumerStopped

from taskctl.app import App
from taskctl.engines.faults import persistent
from taskctl.errors import StorageFailure

logger = logging.getLogger("taskctl.consumer")
# Burst mode stops after the queue has looked idle for this long: a process
# worker records a success a moment before it queues the pipeline's next step.
BURST_SETTLE = 0.3


def run_consumer(
    app: App,
    workers: int,
    periodic: bool = True,
    burst: bool = False,
    worker_type: str = "thread",
) -> None:
    """Run workers and the scheduler until stopped (Ctrl+C: running jobs finish
    first; a second Ctrl+C interrupts them, and they go back to the queue).
    With `burst`, stop as soon as nothing is queued, due, retrying or running."""
    app.huey.storage_failure = None
    heartbeat = Heartbeat(app)
    heartbeat.beat()  # recover what a previous consumer left behind, before taking work
    heartbeat.check()
    consumer = app.huey.create_consumer(
        workers=workers,
        # Burst runs are for scripts and tests: only the jobs already there.
        periodic=periodic and not burst,
        worker_type=worker_type,
        initial_delay=0.05,
        max_delay=app.settings.poll_interval,
        check_worker_health=True,
    )
    heartbeat.consumer = consumer
    consumer.start()
    _announce_graceful_stop()
    heartbeat.start()
    health_ts = time.monotonic()
    idle_since: float | None = None
    try:
        while True:
            health_ts = consumer.loop(health_ts)
            if heartbeat.failure or app.huey.storage_failure:
                consumer.stop(graceful=True)
                heartbeat.failure = heartbeat.failure or app.huey.storage_failure
                heartbeat.check()
            if not burst:
                continue
            if app.huey.busy() or not app.store.is_idle():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= BURST_SETTLE:
                consumer.stop(graceful=True)
                break
    except ConsumerStopped:
        pass
    except Exception as exc:
        if (reason := persistent(exc)) is None:
            raise
        consumer.stop(graceful=True)
        heartbeat.failure = reason
        heartbeat.check()
    finally:
        app.huey.notify_interrupted_tasks()
        heartbeat.stop()


def _announce_graceful_stop() -> None:
    "Say what the first Ctrl+C does; Huey's handler does it, then arms the second."
    huey_handler = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        logger.warning("Stopping: running jobs finish first. Ctrl+C again interrupts them (they go back to the queue).")
        if callable(huey_handler):
            huey_handler(signum, frame)

    signal.signal(signal.SIGINT, handler)


class Heartbeat(threading.Thread):
    """Renews the leases of this consumer's running jobs, and recovers jobs whose
    worker died. Its own thread, so it keeps beating while a graceful shutdown
    waits for long jobs: a lapsed lease would let another consumer run them again."""

    def __init__(self, app: App):
        super().__init__(name="taskctl-heartbeat", daemon=True)
        self.app = app
        self.consumer: Consumer | None = None
        self.interval = app.settings.lease / 4
        self.started_at = time.time()
        self.failure: str | None = None  # a storage error no retry fixes: the consumer stops
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self._halt.set()
        if self.failure:
            return  # it could not be recorded
        try:
            self.app.store.leave()
        except Exception:
            logger.exception("Could not record that this consumer stopped.")

    def beat(self) -> None:
        children = [p.pid for p in self._worker_processes() if p.pid is not None and p.is_alive()]
        try:
            self.app.store.beat(self.started_at)
            self.app.store.renew_leases([os.getpid(), *children])
            found = self.app.store.recover_lost()
        except Exception as exc:
            self.failure = persistent(exc)
            if self.failure is None:
                logger.exception("Heartbeat failed; will try again.")
            return
        if found:
            logger.warning("Recovered %d job(s) whose worker stopped without finishing them.", found)

    def check(self) -> None:
        "Stop if the record cannot be written."
        if self.failure:
            raise StorageFailure(f"cannot write the record at {self.app.settings.location}: {self.failure}")

    def _worker_processes(self) -> list[Any]:
        if self.consumer is None or self.consumer.worker_type != "process":
            return []
        return [process for _, process in self.consumer.worker_threads]
