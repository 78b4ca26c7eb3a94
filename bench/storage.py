"""In one process: the per-job storage cost, status on a large record, the prune while enqueueing.

1. Per-job cost: enqueue N no-op jobs through the Python API (`task(i)`), then drain
   them in one thread (dequeue + execute), for bare SqliteHuey and for taskctl (job
   record, tracking, cached results), at synchronous NORMAL and FULL, rounds interleaved.
2. Status with a large record: `taskctl status`'s snapshot with Q jobs queued and H in
   history, against bare Huey listing its Q pending messages.
3. Pruning H old jobs (the retention job) while another connection keeps enqueueing:
   the writer's worst wait, against deleting the same rows in one statement.
"""

from __future__ import annotations

import pickle
import sqlite3
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from support import Figure, Incomplete, bare_huey, check_record, connect, project, timed

from taskctl import retention
from taskctl.app import App, build_app
from taskctl.config import load_settings
from taskctl.jobs import snapshot, stats
from taskctl.model import State


def drain(huey: Any) -> None:
    huey.storage.blocking = False  # taskctl's store waits for a commit on an empty queue: not draining
    while (task := huey.dequeue()) is not None:
        huey.execute(task)


def app_in(folder: Path, synchronous: str = "normal") -> App:
    return build_app(load_settings(project(folder / uuid.uuid4().hex[:8], synchronous)))


def bare_round(folder: Path, jobs: int, synchronous: str) -> tuple[float, float]:
    path = folder / f"bare-{uuid.uuid4().hex}.db"
    huey = bare_huey(path, synchronous)

    @huey.task()
    def noop(i: int) -> int:
        return i

    enqueue = timed(lambda: [noop(i) for i in range(jobs)])
    run = timed(lambda: drain(huey))
    conn = connect(path)
    results = sorted(pickle.loads(value) for (value,) in conn.execute("SELECT value FROM kv"))
    left = conn.execute("SELECT count(*) FROM task").fetchone()[0]
    conn.close()
    if results != list(range(jobs)) or left:
        raise Incomplete(f"bare Huey {synchronous}: {len(results)} results for {jobs} jobs, {left} left queued")
    return enqueue, run


def taskctl_round(folder: Path, jobs: int, synchronous: str) -> tuple[float, float]:
    app = app_in(folder, synchronous)
    noop = app.resolve("noop").wrapper
    enqueue = timed(lambda: [noop(i) for i in range(jobs)])
    run = timed(lambda: drain(app.huey))
    check_record(app.settings.database, set(range(jobs)))
    return enqueue, run


def per_job(folder: Path, jobs: int, rounds: int) -> tuple[list[Figure], dict[str, Any]]:
    times: dict[str, list[tuple[float, float]]] = {"bare normal": [], "normal": [], "bare full": [], "full": []}
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits all alike
        times["bare normal"].append(bare_round(folder, jobs, "normal"))
        times["normal"].append(taskctl_round(folder, jobs, "normal"))
        times["bare full"].append(bare_round(folder, jobs, "full"))
        times["full"].append(taskctl_round(folder, jobs, "full"))
    rate = {key: (jobs / min(e for e, _ in v), jobs / min(r for _, r in v)) for key, v in times.items()}
    best = f"{jobs:,} no-op jobs, best of {rounds}"
    normal, bare_normal, bare = rate["normal"], rate["bare normal"], "bare SqliteHuey NORMAL"
    figures = [
        Figure(f"enqueue, Python API `task(i)`, NORMAL ({best})", normal[0], "jobs/s", bare_normal[0], bare,
               ">= 0.8x", normal[0] >= 0.8 * bare_normal[0]),
        Figure(f"drain, 1 worker in-process (dequeue + run + record), NORMAL ({best})", normal[1], "jobs/s",
               bare_normal[1], bare, ">= 1.0x", normal[1] >= bare_normal[1]),
        Figure(f"enqueue, FULL ({best})", rate["full"][0], "jobs/s", rate["bare full"][0], "bare SqliteHuey FULL"),
        Figure(f"drain in-process, FULL ({best})", rate["full"][1], "jobs/s", rate["bare full"][1],
               "bare SqliteHuey FULL"),
    ]  # fmt: skip
    return figures, {"jobs": jobs, "rounds": rounds, "seconds (enqueue, drain)": times}


def fill(app: App, queued: int, history: int, age: float = 0.0) -> None:
    """Bulk rows straight into the record: realistic shape, minutes faster than enqueueing.
    One job finished every second, going back from `age` seconds ago."""
    message = app.huey.serialize_task(app.resolve("noop").wrapper.s(1))
    conn = app.store.conn
    now = time.time()
    conn.execute("BEGIN")
    conn.execute(
        """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO taskctl_jobs (id, queue, task, args, kwargs, state, priority, seq, data,
            enqueued_at, started_at, finished_at, duration, attempts, result_preview,
            error_type, error_message, traceback)
        SELECT 'h' || i, 'taskctl', 'bench.noop', '[1]', '{}',
            CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'succeeded' END, 0, i, NULL,
            ? - i, ? - i, ? - i + 0.01, 0.01, 1, '1',
            CASE WHEN i % 50 = 0 THEN 'ValueError' END, CASE WHEN i % 50 = 0 THEN 'boom' END,
            CASE WHEN i % 50 = 0 THEN 'Traceback ...' END
        FROM n
        """,
        (history, now - age, now - age, now - age),
    )
    conn.execute(
        """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO taskctl_jobs (id, queue, task, args, kwargs, state, priority, seq, data, enqueued_at)
        SELECT 'q' || i, 'taskctl', 'bench.noop', '[1]', '{}', 'queued', 0, ? + i, ?, ?
        FROM n
        """,
        (queued, history + 1, message, now),
    )
    conn.execute("COMMIT")


def status_cost(folder: Path, queued: int, history: int, rounds: int) -> tuple[list[Figure], dict[str, Any]]:
    app = app_in(folder)
    fill(app, queued, history)
    record = app.record
    bare = bare_huey(folder / "bare-status.db")

    @bare.task()
    def noop(i: int) -> int:
        return i

    message = bare.serialize_task(noop.s(1))
    with bare.storage.db(commit=True) as curs:
        curs.executemany(
            "INSERT INTO task (queue, data, priority) VALUES ('bench', ?, 0)", ((message,) for _ in range(queued))
        )
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(timed(lambda: snapshot(app, record, 20)))
        theirs.append(timed(lambda: bare.pending()))
    counts = snapshot(app, record, 20).counts
    if counts[State.QUEUED] != queued or counts[State.SUCCEEDED] + counts[State.FAILED] != history:
        raise Incomplete(f"status counts {counts} for {queued} queued and {history} in history")
    history_ms = statistics.median(timed(lambda: record.history(20)) for _ in range(rounds)) * 1000
    stats_ms = statistics.median(timed(lambda: stats(record, 86400)) for _ in range(rounds)) * 1000
    shape = f"{queued:,} queued, {history:,} in history"
    figures = [
        Figure(
            f"status data (every section), {shape}", statistics.median(ours) * 1000, "ms",
            statistics.median(theirs) * 1000, "bare Huey pending(), the queue alone", note="lower is better",
        ),
        Figure(f"history, newest 20, {shape}", history_ms, "ms"),
        Figure(f"stats --since 24h ({min(history, 86_400):,} jobs in the window)", stats_ms, "ms"),
    ]  # fmt: skip
    return figures, {"queued": queued, "history": history, "rounds": rounds}


class Writer(threading.Thread):
    "Enqueues a job every 2 ms until told to stop, timing each enqueue."

    def __init__(self, app: App) -> None:
        super().__init__()
        self.app, self.done = app, threading.Event()
        self.waits: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        wrapper = self.app.resolve("noop").wrapper
        while not self.done.is_set():
            start = time.perf_counter()
            try:
                self.app.huey.enqueue(wrapper.s(1))
            except sqlite3.OperationalError as exc:  # the naive delete can lock it out past busy_timeout
                self.errors.append(str(exc))
            self.waits.append(time.perf_counter() - start)
            time.sleep(0.002)


def prune_cost(folder: Path, history: int) -> tuple[list[Figure], dict[str, Any]]:
    details: dict[str, Any] = {"history": history}
    for way in ("batched", "one statement"):
        app = app_in(folder)
        fill(app, 0, history, age=30 * 86400)
        writer = Writer(build_app(load_settings(app.settings.path)))  # its own connection, as a worker's
        writer.start()
        start = time.perf_counter()
        if way == "batched":
            retention.prune(app.store, app.record, app.settings.retention)
        else:
            app.store.sql("DELETE FROM taskctl_jobs WHERE finished_at < ?", (time.time() - 14 * 86400,), commit=True)
        elapsed = time.perf_counter() - start
        writer.done.set()
        writer.join()
        left = app.store.sql("SELECT count(*) FROM taskctl_jobs WHERE finished_at IS NOT NULL", results=True)[0][0]
        if left:
            raise Incomplete(f"prune ({way}): {left} of {history} old jobs left")
        if way == "batched" and writer.errors:
            raise Incomplete(f"an enqueue failed during taskctl's prune: {writer.errors[0]}")
        details[way] = {
            "seconds": elapsed, "enqueues": len(writer.waits), "worst wait ms": max(writer.waits) * 1000,
            "errors": writer.errors,
        }  # fmt: skip
    batched, naive = details["batched"], details["one statement"]
    locked = f"; one statement: {len(naive['errors'])} enqueue(s) failed" if naive["errors"] else ""
    figures = [
        Figure(
            f"prune {history:,} old jobs while enqueueing every 2 ms: worst enqueue wait", batched["worst wait ms"],
            "ms", naive["worst wait ms"], "the same rows in one DELETE", note=f"lower is better{locked}",
        ),
        Figure(f"prune {history:,} old jobs: time", batched["seconds"], "s", naive["seconds"], "one DELETE"),
    ]  # fmt: skip
    return figures, details
