"""How a consumer stops: SIGTERM (what systemd, launchd and Docker send) and Ctrl+C
both ask for a graceful stop, in which running jobs finish; a second one of either,
or the grace period running out, interrupts them and they go back to the queue."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from taskctl.children import ChildSafeConsumer, ChildSafeEnvironment

logger = logging.getLogger("taskctl.consumer")

GRACEFUL = (signal.SIGINT, signal.SIGTERM)
# What the consumer sends its worker processes to interrupt them: neither graceful
# signal can be it, since a terminal (Ctrl+C) and systemd's default KillMode signal
# every process of the group, and a worker must then go on with its job.
INTERRUPT = signal.SIGUSR1


class StoppingConsumer(ChildSafeConsumer):
    "Huey's consumer, with SIGTERM as graceful as SIGINT, and `grace` seconds at most for running jobs."

    def __init__(self, huey: Any, grace: float | None = None, **options: Any) -> None:
        super().__init__(huey, shutdown_timeout=grace, **options)
        self._signal_actions.update(dict.fromkeys(GRACEFUL, (False, True)))  # (restart, graceful)
        self._interrupt_now = False
        huey.stopping = self.stop_flag  # set by stop(): from then on no worker starts a job

    def start(self) -> None:
        # Huey installs its handlers after starting the workers: a SIGTERM as the first
        # job starts would kill the consumer outright instead of stopping it. Forked
        # workers set their own handlers (ChildSafeEnvironment.init_child).
        self._set_signal_handlers()
        super().start()

    @property
    def restarting(self) -> bool:
        "Stopped by SIGHUP, which Huey's consumer answers by starting again."
        return bool(self._restart)

    def get_environment(self, worker_type: str) -> Any:
        if worker_type == "process":
            return WorkerProcesses(signal.SIGINT, INTERRUPT)
        return super().get_environment(worker_type)

    def _handle_signal(self, signum: int, frame: Any) -> None:
        super()._handle_signal(signum, frame)
        if self._restart:
            logger.warning("Restarting (SIGHUP): running jobs finish first.")
            return
        # Huey arms only the signal received; a SIGTERM after a Ctrl+C interrupts too.
        for other in GRACEFUL:
            signal.signal(other, self._handle_second_signal)
        within = "" if self.shutdown_timeout is None else f" (for {self.shutdown_timeout:g}s at most)"
        logger.warning(
            "Stopping (%s): running jobs finish first%s. Ctrl+C or SIGTERM again interrupts them "
            "(they go back to the queue).",
            signal.Signals(signum).name,
            within,
        )

    def _handle_second_signal(self, signum: int, frame: Any) -> None:
        # Raised where the main thread waits: in the join of a graceful stop, or,
        # before that began, in Huey's loop, which would then start one (see stop).
        self._interrupt_now = True
        raise KeyboardInterrupt

    def stop(self, graceful: bool = False) -> None:
        self.stop_flag.set()
        # Idle thread workers wait in the store for work (SQLite: the next commit): they
        # see the stop now, not at the end of their wait.
        if wake := getattr(self.huey.storage, "wake_waiters", None):
            wake(len(self.worker_threads))
        super().stop(graceful=graceful and not self._interrupt_now)

    def _interrupt_workers(self) -> None:
        super()._interrupt_workers()
        if self.environment.forks:
            # The scheduler process ignores SIGTERM too: one stuck in a slow storage call
            # would hang multiprocessing's exit.
            self.scheduler.join(2)
            if self.environment.is_alive(self.scheduler):
                self.scheduler.kill()
            return
        # Thread workers cannot be stopped: their jobs go back to the queue now. An idle
        # worker waiting on Redis may wake for such a job, claim it and give it back in
        # turn (TaskctlHuey.dequeue): a moment for that, or the job would stay claimed.
        self.huey.notify_interrupted_tasks()
        deadline = time.monotonic() + getattr(self.huey.storage, "read_timeout", 0) + 0.5
        for _, thread in self.worker_threads:
            thread.join(max(deadline - time.monotonic(), 0))


class WorkerProcesses(ChildSafeEnvironment):
    "Worker processes that leave stopping to the consumer, which interrupts them with INTERRUPT."

    def set_child_handlers(self) -> None:
        # Huey's init_child ignores SIGINT (the graceful signal here) and interrupts on INTERRUPT.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def interrupt_workers(self, procs: list[Any]) -> None:
        super().interrupt_workers(procs)
        # A worker still alive would hang the exit: it ignores the SIGTERM that
        # multiprocessing sends at exit. Its job is then recovered as lost.
        for proc in procs:
            if proc.is_alive():
                proc.kill()
