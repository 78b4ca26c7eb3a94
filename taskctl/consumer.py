"""Running the consumer: recovery, heartbeats, burst mode, clean shutdown."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any, NoReturn

from huey.consumer import Consumer, ConsumerStopped

from taskctl import catalog, catchup, presence
from taskctl.app import App
from taskctl.engines.faults import persistent
from taskctl.errors import StorageFailure
from taskctl.stopping import StoppingConsumer

logger = logging.getLogger("taskctl.consumer")
# Burst mode with process workers stops after the queue has looked idle for this
# long: a process worker records a success a moment before it queues the pipeline's
# next step, and its activity is counted in its own process. A thread worker's is
# counted in this one (TaskctlHuey.activity()), so threads need none.
BURST_SETTLE = 0.3


def run_consumer(
    app: App,
    workers: int,
    periodic: bool = True,
    burst: bool = False,
    worker_type: str = "thread",
    grace: float | None = None,
) -> None:
    """Run workers and the scheduler until stopped (Ctrl+C or SIGTERM: running jobs
    finish first, for `grace` seconds at most; a second signal interrupts them, and
    they go back to the queue; see stopping.py).
    With `burst`, stop as soon as nothing is queued, due, retrying or running."""
    app.huey.storage_failure = None
    heartbeat = Heartbeat(app, workers, worker_type, catch_up=periodic and not burst)
    heartbeat.beat()  # recover what a previous consumer left behind, and catch up missed runs, before taking work
    heartbeat.check()
    app.store.register_tasks(list(app.tasks))  # latest_result tells a typo from "not yet" by these
    runs = catalog.of_app(app)  # `status` and `tasks` read what this consumer runs, without building the app
    app.store.record_catalog(runs.to_text(), runs.recorded_at or time.time())
    consumer = StoppingConsumer(
        app.huey,
        grace=grace,
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
    heartbeat.start()
    health_ts = time.monotonic()
    settle = BURST_SETTLE if worker_type == "process" else 0.0
    idle_since: float | None = None
    try:
        while True:
            # Before the loop's wait (0.1 s): a burst with nothing to do ends at once.
            if burst:
                before = app.huey.activity()
                if before[0] or not app.store.is_idle() or app.huey.activity() != before:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                if idle_since is not None and time.monotonic() - idle_since >= settle:
                    consumer.stop(graceful=True)
                    break
            health_ts = consumer.loop(health_ts)
            if heartbeat.failure or app.huey.storage_failure:
                consumer.stop(graceful=True)
                heartbeat.failure = heartbeat.failure or app.huey.storage_failure
                heartbeat.check()
    except ConsumerStopped:
        pass
    except KeyboardInterrupt:  # a second signal, raised outside Huey's loop (is_idle, a check)
        consumer.stop(graceful=False)
    except Exception as exc:
        if (reason := persistent(exc)) is None:
            raise
        consumer.stop(graceful=True)
        heartbeat.failure = reason
        heartbeat.check()
    finally:
        app.huey.notify_interrupted_tasks()
        heartbeat.stop()
    if consumer.restarting and not heartbeat.failure:
        restart()


def restart() -> NoReturn:
    """SIGHUP, as in Huey's consumer: once its jobs have finished, the consumer runs its
    own command line again, in the same process, with the config and the task code on
    disk now (what `taskctl tasks` asks for with 'restart the consumer to apply')."""
    logger.warning("Restarting: the same command again, with the config and task code on disk now.")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # orig_argv keeps how Python was started (`python -m taskctl`, or the `taskctl` script).
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


class Heartbeat(threading.Thread):
    """Renews the leases of this consumer's running jobs, and recovers jobs whose
    worker died. Its own thread, so it keeps beating while a graceful shutdown
    waits for long jobs: a lapsed lease would let another consumer run them again."""

    def __init__(self, app: App, workers: int = 1, worker_type: str = "thread", catch_up: bool = False):
        super().__init__(name="taskctl-heartbeat", daemon=True)
        self.app = app
        self.workers, self.worker_type = workers, worker_type
        self.clock = catchup.ClockWatch() if catch_up else None  # None: periodic runs are off
        self._caught_up = False
        self.consumer: Consumer | None = None
        self.interval = app.settings.lease / 4
        self.started_at = time.time()
        self.failure: str | None = None  # a storage error no retry fixes: the consumer stops
        self._halt = threading.Event()

    def run(self) -> None:
        self.beat()  # at once: the pids of the worker processes just started
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
        pids = [os.getpid(), *(p.pid for p in self._worker_processes() if p.pid is not None and p.is_alive())]
        me = presence.me(self.app, self.started_at, self.workers, self.worker_type, pids)
        try:
            self.app.store.beat(me, time.time() - presence.FORGET_AFTER)
            self.app.store.renew_leases(pids)
            found = self.app.store.recover_lost()
        except Exception as exc:
            self.failure = persistent(exc)
            if self.failure is None:
                logger.exception("Heartbeat failed; will try again.")
            return
        if found:
            logger.warning("Recovered %d job(s) whose worker stopped without finishing them.", found)
        # At start, and after a suspend: Huey's scheduler skips the minutes it slept through.
        if self.clock is not None and (self.clock.jumped() or not self._caught_up):
            self._caught_up = True
            catchup.catch_up(self.app)

    def check(self) -> None:
        "Stop if the record cannot be written."
        if self.failure:
            raise StorageFailure(f"cannot write the record at {self.app.settings.location}: {self.failure}")

    def _worker_processes(self) -> list[Any]:
        if self.consumer is None or self.consumer.worker_type != "process":
            return []
        return [process for _, process in self.consumer.worker_threads]
