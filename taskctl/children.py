"""Worker and scheduler processes die with the consumer that forked them.

Huey's process workers watch a stop flag that is a pipe they hold open
themselves, so a consumer killed with SIGKILL leaves them running as orphans:
they keep claiming jobs that the next consumer recovers and runs again. Each
child asks the kernel for SIGKILL when its parent dies (Linux), or watches its
parent's pid (elsewhere). Its running job is then recovered as lost, by pid at
once on this host.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

from huey.consumer import Consumer, ProcessEnvironment

PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
ORPHAN_CHECK = 0.5  # seconds between checks of the parent's pid, where the kernel cannot signal


class ChildSafeConsumer(Consumer):
    "Huey's consumer, whose worker and scheduler processes end with it."

    def get_environment(self, worker_type: str) -> Any:
        environment = super().get_environment(worker_type)
        if isinstance(environment, ProcessEnvironment):
            return ChildSafeEnvironment(self._graceful_sig, self._interrupt_sig)
        return environment


# The signals a child answers with handlers of its own (init_child). One sent to the
# consumer's process group between the fork and those handlers would run Python's
# defaults in the child: a KeyboardInterrupt traceback from multiprocessing's bootstrap,
# and a scheduler or worker dead before it began.
STARTUP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1}


class ChildSafeEnvironment(ProcessEnvironment):
    "Forked children that die with the consumer process, and start with the group's signals held."

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.parent = os.getpid()

    def create_process(self, runnable: Any, name: str) -> Any:
        process = super().create_process(runnable, name)
        start = process.start

        def start_with_signals_held() -> None:
            # The child inherits the mask: it unblocks them in init_child, after its handlers.
            held = signal.pthread_sigmask(signal.SIG_BLOCK, STARTUP_SIGNALS | {self.graceful, self.interrupt})
            try:
                start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)

        process.start = start_with_signals_held
        return process

    def init_child(self, process: Any) -> None:
        die_with_parent(self.parent)
        super().init_child(process)
        self.set_child_handlers()
        # What arrived since the fork is delivered now, to the child's own handlers.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STARTUP_SIGNALS | {self.graceful, self.interrupt})

    def set_child_handlers(self) -> None:
        "Handlers a subclass adds in the child, before the held signals are let through."


def die_with_parent(parent: int) -> None:
    """Called in a child right after the fork: end this process when `parent` dies.
    PDEATHSIG fires when the *thread* that forked exits, so only the consumer's
    main loop (which lives as long as the consumer) may start children."""
    if _kernel_signals_orphans():
        # The parent may have died between the fork and the prctl: nothing would fire.
        if os.getppid() != parent:
            os._exit(1)
        return
    threading.Thread(target=_watch_parent, args=(parent,), name="taskctl-orphan-check", daemon=True).start()


def _kernel_signals_orphans() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK)
    os.kill(os.getpid(), signal.SIGKILL)
