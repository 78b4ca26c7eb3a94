"""Memory: one long-running consumer (2 thread workers) drains N jobs in three batches.

Its VmRSS after start and after each batch, and its peak (VmHWM), beside a bare
`huey_consumer` (2 thread workers, SqliteHuey NORMAL) draining the same batches at
the same time: RSS does not depend on the speed, and side by side the two take the
time of the slower (the drain rates are perjob's and contention's to measure).
"""

from __future__ import annotations

import pickle
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consumers import consumers_for
from support import Figure, Incomplete, check_log, check_record, connect, count, proc_status, stop, wait_for

from taskctl import bulk
from taskctl.app import build_app
from taskctl.config import load_settings

MIB = 1024 * 1024


@dataclass
class Side:
    "One consumer draining the batches, and what the bench saw of it."

    kind: str
    consumer: subprocess.Popen[bytes]
    db: Path
    where: Any  # taskctl: config.toml; bare: the tasks module
    rss: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, kind: str, folder: Path) -> Side:
        (consumer,), db, where = consumers_for(kind, folder, 1)
        return cls(kind, consumer, db, where, [proc_status(consumer.pid, "VmRSS")])

    def enqueue(self, args: range, batch: str) -> None:
        if self.kind == "taskctl":
            info = build_app(load_settings(self.where)).resolve("noop")
            rows = [bulk.Row(n, [i], {}) for n, i in enumerate(args, 1)]
            bulk.enqueue_rows(info, rows, bulk.Batch(batch), [None] * len(args))
            return
        huey, noop = self.where.huey, self.where.noop
        with huey.storage.db(commit=True) as curs:  # straight into Huey's table: quick, as taskctl's bulk is
            curs.executemany(
                "INSERT INTO task (queue, data, priority) VALUES (?, ?, 0)",
                ((huey.name, huey.serialize_task(noop.s(i))) for i in args),
            )

    def done(self) -> int:
        if self.kind == "taskctl":
            return count(self.db, "SELECT count(*) FROM taskctl_jobs WHERE state = 'succeeded'")
        return count(self.db, "SELECT count(*) FROM kv")

    def check(self, jobs: int) -> None:
        "Every job ran once with its result; the consumer said nothing but its start and stop."
        check_log(self.db.with_name("consumer-0.log"))
        if self.kind == "taskctl":
            check_record(self.db, set(range(jobs)))
            return
        conn = connect(self.db)
        values = sorted(pickle.loads(value) for (value,) in conn.execute("SELECT value FROM kv"))
        conn.close()
        if values != list(range(jobs)):
            raise Incomplete(f"bare Huey: {len(values)} results for {jobs} jobs")


def memory(folder: Path, jobs: int, batches: int = 3) -> tuple[list[Figure], dict[str, Any]]:
    sides = [Side.start("taskctl", folder / "taskctl"), Side.start("bare", folder / "bare")]
    try:
        for b in range(batches):
            args = range(b * jobs // batches, (b + 1) * jobs // batches)
            for side in sides:
                side.enqueue(args, f"memory-{b}")
            for side in sides:
                wait_for(f"{side.kind} to drain batch {b + 1}", lambda s=side, end=args.stop: s.done() >= end, 900, 0.2)
                side.rss.append(proc_status(side.consumer.pid, "VmRSS"))
        peaks = [proc_status(side.consumer.pid, "VmHWM") / MIB for side in sides]
    finally:
        codes = [stop(side.consumer) for side in sides]
    if any(codes):
        raise Incomplete(f"the consumers exited {codes} (taskctl, bare)")
    for side in sides:
        side.check(jobs)
    ours, theirs = ([r / MIB for r in side.rss] for side in sides)
    after = " / ".join(f"{r:.1f}" for r in ours)
    bare_name = "bare huey_consumer, 2 threads"
    figures = [
        Figure(f"consumer peak RSS (VmHWM) after draining {jobs:,} jobs", peaks[0], "MiB", peaks[1], bare_name,
               note=f"taskctl VmRSS at start / after each batch: {after}"),
        Figure(f"consumer RSS growth, batch 1 to batch {batches} ({jobs // batches:,} jobs each)",
               ours[-1] - ours[1], "MiB", theirs[-1] - theirs[1], bare_name, "< 5% of RSS after batch 1",
               ours[-1] - ours[1] < 0.05 * ours[1]),
    ]  # fmt: skip
    return figures, {"rss MiB": {"taskctl": ours, "bare": theirs}, "peak MiB": peaks}
