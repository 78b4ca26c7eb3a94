"""taskctl's cost over bare Huey, measured in one run on this machine.

    .venv/bin/python bench/run.py            # defaults: 2,000 jobs, 100,000 queued, 1,000,000 history
    .venv/bin/python bench/run.py --quick    # smaller, for a smoke run

Machines here are shared and noisy, so every figure is reported beside a
baseline measured in the same run, and the ratio is what to compare.

1. Per-job storage cost: enqueue N no-op jobs, then drain them in one thread
   (dequeue + execute), for bare SqliteHuey and for taskctl (job record,
   tracking hooks, cached results), with synchronous NORMAL and FULL.
2. Status with a large record: `taskctl status`'s snapshot with Q jobs queued
   and H in history, against bare Huey listing its Q pending messages; and
   what `history` and `stats --since 24h` read on the same record.
3. Pruning H old jobs (the retention job) while another connection keeps
   enqueueing: the writer's worst wait, against deleting the same rows in
   one statement (the naive way).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from huey import Huey, SqliteHuey
from huey.storage import SqliteStorage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from taskctl import retention  # noqa: E402
from taskctl.app import build_app  # noqa: E402
from taskctl.config import load_settings  # noqa: E402
from taskctl.jobs import snapshot, stats  # noqa: E402

TASKS = """
from taskctl import task

@task()
def noop(i):
    return i
"""


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def drain(huey) -> None:
    huey.storage.blocking = False  # taskctl's store waits for a commit on an empty queue: not draining
    while (task := huey.dequeue()) is not None:
        huey.execute(task)


class NormalSqliteStorage(SqliteStorage):
    "Huey's SqliteStorage at synchronous NORMAL, taskctl's default (Huey's fsync=False means OFF)."

    def _create_connection(self):
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


def bare_huey(folder: Path, jobs: int, synchronous: str) -> tuple[float, float]:
    storage = NormalSqliteStorage if synchronous == "normal" else SqliteStorage
    huey = Huey("bench", storage_class=storage, filename=str(folder / f"bare-{uuid.uuid4().hex}.db"))

    @huey.task()
    def noop(i):
        return i

    enqueue = timed(lambda: [noop(i) for i in range(jobs)])
    return enqueue, timed(lambda: drain(huey))


def make_project(folder: Path, synchronous: str) -> Path:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(TASKS)
    config = folder / f"{name}.toml"
    config.write_text(f'[taskctl]\nmodules = ["{name}"]\ndatabase = "{name}.db"\nsynchronous = "{synchronous}"\n')
    return config


def taskctl_huey(folder: Path, jobs: int, synchronous: str) -> tuple[float, float]:
    app = build_app(load_settings(make_project(folder, synchronous)))
    noop = next(iter(app.tasks.values())).wrapper
    enqueue = timed(lambda: [noop(i) for i in range(jobs)])
    return enqueue, timed(lambda: drain(app.huey))


def per_job(folder: Path, jobs: int, rounds: int) -> None:
    print(f"\n1. Per-job cost, {jobs} no-op jobs, best of {rounds} rounds (jobs/s; ratio to bare Huey)")
    runs: dict[str, list[tuple[float, float]]] = {"bare normal": [], "normal": [], "bare full": [], "full": []}
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits all alike
        runs["bare normal"].append(bare_huey(folder, jobs, "normal"))
        runs["normal"].append(taskctl_huey(folder, jobs, "normal"))
        runs["bare full"].append(bare_huey(folder, jobs, "full"))
        runs["full"].append(taskctl_huey(folder, jobs, "full"))
    best = {k: (min(e for e, _ in v), min(d for _, d in v)) for k, v in runs.items()}
    labels = {  # each taskctl row's ratio is to the bare row above it: like against like
        "bare normal": ("bare SqliteHuey, synchronous NORMAL", "bare normal"),
        "normal": ("taskctl, synchronous NORMAL (default)", "bare normal"),
        "bare full": ("bare SqliteHuey, synchronous FULL", "bare full"),
        "full": ("taskctl, synchronous FULL", "bare full"),
    }
    print(f"   {'':40} {'enqueue/s':>10} {'ratio':>6} {'run/s':>10} {'ratio':>6}")
    for key, (enq, run) in best.items():
        label, base = labels[key]
        print(
            f"   {label:40} {jobs / enq:10.0f} {best[base][0] / enq:6.2f} {jobs / run:10.0f} {best[base][1] / run:6.2f}"
        )


def fill(app, queued: int, history: int, age: float = 0.0) -> None:
    """Bulk rows straight into the record: realistic shape, minutes faster than enqueueing.
    One job finished every second, going back from `age` seconds ago."""
    message = app.huey.serialize_task(next(iter(app.tasks.values())).wrapper.s(1))
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


def status_cost(folder: Path, queued: int, history: int, rounds: int) -> None:
    print(f"\n2. Status with {queued:,} jobs queued and {history:,} in history (ms; ratio to bare Huey)")
    app = build_app(load_settings(make_project(folder, "normal")))
    start = time.perf_counter()
    fill(app, queued, history)
    print(f"   (filled in {time.perf_counter() - start:.1f}s)")
    registry = app.record
    bare = SqliteHuey("bench", filename=str(folder / "bare-status.db"))

    @bare.task()
    def noop(i):
        return i

    message = bare.serialize_task(noop.s(1))
    with bare.storage.db(commit=True) as curs:
        curs.executemany(
            "INSERT INTO task (queue, data, priority) VALUES ('bench', ?, 0)", ((message,) for _ in range(queued))
        )
    ours = [timed(lambda: snapshot(app, registry, 20)) for _ in range(rounds)]
    theirs = [timed(lambda: bare.pending()) for _ in range(rounds)]
    ours_ms, theirs_ms = statistics.median(ours) * 1000, statistics.median(theirs) * 1000
    print(f"   {'taskctl status snapshot (all sections)':48} {ours_ms:8.1f} ms  ratio {ours_ms / theirs_ms:.3f}")
    print(f"   {'bare Huey pending() (the queue alone)':48} {theirs_ms:8.1f} ms  ratio 1.000")
    history_ms = statistics.median(timed(lambda: registry.history(20)) for _ in range(rounds)) * 1000
    stats_ms = statistics.median(timed(lambda: stats(registry, 86400)) for _ in range(rounds)) * 1000
    print(f"   {'history, newest 20':48} {history_ms:8.1f} ms")
    print(f"   {'stats --since 24h (86,400 jobs in the window)':48} {stats_ms:8.1f} ms")


class Writer(threading.Thread):
    "Enqueues a job every 2 ms until told to stop, timing each enqueue."

    def __init__(self, app) -> None:
        super().__init__()
        self.app, self.done = app, threading.Event()
        self.waits: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        wrapper = next(iter(self.app.tasks.values())).wrapper
        while not self.done.is_set():
            start = time.perf_counter()
            try:
                self.app.huey.enqueue(wrapper.s(1))
            except sqlite3.OperationalError as exc:  # the naive delete can lock it out past busy_timeout
                self.errors.append(str(exc))
            self.waits.append(time.perf_counter() - start)
            time.sleep(0.002)


def prune_cost(folder: Path, history: int) -> None:
    print(f"\n3. Deleting {history:,} old jobs while another connection enqueues (worst enqueue wait)")
    results = {}
    for way in ("batched", "one statement"):
        app = build_app(load_settings(make_project(folder, "normal")))
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
        waits, errors = writer.waits, writer.errors
        left = app.store.sql("SELECT count(*) FROM taskctl_jobs WHERE finished_at IS NOT NULL", results=True)[0][0]
        results[way] = max(waits)
        print(
            f"   {way:14} deleted in {elapsed:6.1f}s ({history / elapsed:9,.0f} rows/s), {left} left; "
            f"enqueues meanwhile: {len(waits):,}, worst wait {max(waits) * 1000:8.1f} ms"
            + (f", {len(errors)} failed ({errors[0]})" if errors else "")
        )
    print(f"   worst wait, batched / one statement: {results['batched'] / results['one statement']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prune", type=int, default=1_000_000, help="old jobs to prune in part 3")
    parser.add_argument("--quick", action="store_true", help="500 jobs, 10,000 queued, 100,000 history and prune")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.queued, args.history, args.prune = 500, 10_000, 100_000, 100_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sys.path.insert(0, str(folder))
        per_job(folder, args.jobs, args.rounds)
        status_cost(folder, args.queued, args.history, args.rounds)
        prune_cost(folder, args.prune)


if __name__ == "__main__":
    main()
