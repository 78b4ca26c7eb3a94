"""Idle SQLite workers wake within milliseconds of a commit, without polling the queue.

SQLite has no notifications, but `PRAGMA data_version` changes whenever another
connection commits, and reading it takes no lock: it reads the WAL index in
shared memory, a few microseconds. One thread per process reads it every
INTERVAL on a read-only connection of its own (which never commits, so every
commit counts, this process's too) and wakes the workers waiting for work. The
thread stops when no worker has waited for a while, so an app that never
consumes costs nothing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

# Seconds between reads of data_version: the pickup delay it adds, at most. Every 8 ms
# cost an idle consumer 2% of a core; every 12 ms, 1.3%.
INTERVAL = 0.012
IDLE_STOP = 5.0  # seconds without a waiting worker before the thread stops


class CommitWatch:
    "Tickets and waits: `wait(ticket, timeout)` returns once a commit lands after `ticket()`."

    def __init__(self, filename: str, interval: float = INTERVAL) -> None:
        self.filename = filename
        self.interval = interval
        self._pid = -1

    def _ensure(self) -> None:
        # Per process: a forked worker has neither the thread nor a usable lock of its parent's.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._cond = threading.Condition()
            self._changes = 0
            self._waiters = 0
            self._last_wait = time.monotonic()
            self._thread: threading.Thread | None = None
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="taskctl-commit-watch", daemon=True)
                self._thread.start()

    def ticket(self) -> int:
        "Take before looking for work: a commit after it ends the next wait at once."
        self._ensure()
        return self._changes

    def wait(self, ticket: int, timeout: float) -> bool:
        "Wait until a commit lands after `ticket`, or `timeout` seconds; True if one did."
        self._ensure()
        with self._cond:
            self._waiters += 1
            try:
                return self._cond.wait_for(lambda: self._changes != ticket, timeout)
            finally:
                self._waiters -= 1
                self._last_wait = time.monotonic()

    def wake_all(self) -> None:
        "Ends every wait of this process now, as a commit would."
        self._ensure()
        with self._cond:
            self._changes += 1
            self._cond.notify_all()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        last: int | None = None
        try:
            while True:
                time.sleep(self.interval)
                with self._cond:
                    if not self._waiters and time.monotonic() - self._last_wait > IDLE_STOP:
                        self._thread = None
                        return
                try:
                    if conn is None:
                        conn = sqlite3.connect(Path(self.filename).resolve().as_uri() + "?mode=ro", uri=True)
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error:
                    # Gone or not readable for now: waits end by their timeouts, as polling would.
                    conn, version = None, last
                    time.sleep(0.5)
                if version != last:
                    with self._cond:
                        self._changes += 1
                        self._cond.notify_all()
                    last = version
        finally:
            if conn is not None:
                conn.close()
