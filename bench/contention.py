"""Consumer processes under load: contention on one SQLite file, and memory over long drains.

- Contention: four producer processes enqueue through the Python API (`task(i)`) while
  two consumer processes drain, all on one SQLite file; then the same with bare Huey
  (SqliteHuey NORMAL, `huey_consumer`, 2 thread workers each). No taskctl caller may
  see an error ("database is locked" above all): producers keep every exception,
  consumers' output is read whole. Every job must have run once (the task's own log)
  and be recorded as succeeded in one attempt with its result.
- Memory: one long-running consumer (2 thread workers) drains N jobs in three batches;
  its VmRSS after start and after each batch, and its peak (VmHWM), against a bare
  `huey_consumer` draining the same batches.

Run as `contention.py produce ...` it is one producer (a child of the bench).
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support import (
    BIN,
    TASKCTL,
    Figure,
    Incomplete,
    bare_project,
    check_log,
    check_record,
    check_runs,
    connect,
    count,
    env,
    proc_status,
    project,
    spawn,
    stop,
    wait_for,
)  # fmt: skip

from taskctl import bulk
from taskctl.app import build_app
from taskctl.config import load_settings

PRODUCERS, CONSUMERS = 4, 2
MIB = 1024 * 1024


def produce(kind: str, where: str, first: int, jobs: int, folder: str) -> None:
    "One producer: queue `jobs` jobs from `first` once told to go; what happened, as JSON on stdout."
    if kind == "taskctl":
        logged = build_app(load_settings(where)).resolve("logged").wrapper
    else:
        sys.path.insert(0, str(Path(where).parent))
        logged = importlib.import_module(Path(where).stem).logged
    Path(folder, f"ready-{first}").touch()
    while not Path(folder, "go").exists():
        time.sleep(0.001)
    start, failed, errors = time.time(), [], []
    for i in range(first, first + jobs):
        try:
            logged(i)
        except Exception as exc:  # what a caller would see: kept, and the run fails
            failed.append(i)
            errors.append(f"{type(exc).__name__}: {exc}")
    json.dump({"start": start, "end": time.time(), "failed": failed, "errors": errors[:5]}, sys.stdout)


def opened(pid: int, path: Path) -> bool:
    "Has the process opened the database (its workers are polling)?"
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def consumers_for(kind: str, folder: Path, count_: int) -> tuple[list[subprocess.Popen[bytes]], Path, Any]:
    "Consumers of a new taskctl or bare project in `folder`, polling its database: processes, db, project."
    if kind == "taskctl":
        config = project(folder)
        build_app(load_settings(config)).store.close()  # the schema exists before anyone races to make it
        args, db, where = [TASKCTL, "run-consumer", "--no-periodic", "--workers", "2"], folder / "taskctl.db", config
    else:
        module = bare_project(folder)
        args, db, where = (
            [str(BIN / "huey_consumer"), f"{module.__name__}.huey", "-w", "2", "-q"],
            folder / "bare.db",
            module,
        )
    processes = [spawn(args, folder, folder / f"consumer-{n}.log") for n in range(count_)]
    wait_for("the consumers to open the database", lambda: all(opened(p.pid, db) for p in processes), 60)
    return processes, db, where


def contend(kind: str, folder: Path, per_producer: int) -> dict[str, Any]:
    consumers, db, where = consumers_for(kind, folder, CONSUMERS)
    target = str(where) if kind == "taskctl" else where.__file__
    role = [sys.executable, __file__, "produce", kind, target]
    try:
        producers = [
            subprocess.Popen(
                [*role, str(n * per_producer), str(per_producer), str(folder)],
                stdout=subprocess.PIPE, env=env(folder),
            )
            for n in range(PRODUCERS)
        ]  # fmt: skip
        wait_for("the producers to start", lambda: len(list(folder.glob("ready-*"))) == PRODUCERS, 60)
        (folder / "go").touch()
        reports = []
        for producer in producers:
            out, _ = producer.communicate(timeout=600)
            if producer.returncode != 0:
                raise Incomplete(f"a {kind} producer exited {producer.returncode}")
            reports.append(json.loads(out))
        failed = {i for report in reports for i in report["failed"]}
        expected = set(range(PRODUCERS * per_producer)) - failed
        if kind == "taskctl":
            done = "SELECT count(*) FROM taskctl_jobs WHERE state = 'succeeded'"
        else:
            done = "SELECT count(*) FROM kv"
        wait_for(f"{kind}'s consumers to drain", lambda: count(db, done) >= len(expected), 300, 0.2)
    finally:
        codes = [stop(process) for process in consumers]
    runs = sorted(check_runs(folder / "runs.log", expected))
    errors = [e for report in reports for e in report["errors"]]
    logs = []
    for n in range(CONSUMERS):
        try:
            check_log(folder / f"consumer-{n}.log")
        except Incomplete as exc:
            logs.append(str(exc))
    if kind == "taskctl":
        if failed or logs or any(codes):
            raise Incomplete(
                f"taskctl under contention: {len(failed)} enqueue(s) failed {errors[:1]}, consumers exited {codes}; "
                f"{'; '.join(logs)}"
            )
        check_record(db, expected, task="logged")
    start, end = min(r["start"] for r in reports), max(r["end"] for r in reports)
    return {
        "jobs": len(expected), "enqueue errors": len(failed), "first errors": errors[:3], "consumer logs": logs,
        "enqueue per s": len(expected) / (end - start), "drain per s": len(expected) / (runs[-1] - runs[0]),
        "last run after go s": runs[-1] - start,
    }  # fmt: skip


def contention(folder: Path, per_producer: int) -> tuple[list[Figure], dict[str, Any]]:
    ours = contend("taskctl", folder / "contention", per_producer)
    theirs = contend("bare", folder / "contention-bare", per_producer)
    shape = f"{PRODUCERS} producers x {per_producer:,} jobs, {CONSUMERS} consumers x 2 threads, one SQLite file"
    bare_name = "bare SqliteHuey NORMAL + huey_consumer"
    trouble = theirs["enqueue errors"] + len(theirs["consumer logs"])
    figures = [
        Figure(f"contention ({shape}): combined enqueue rate", ours["enqueue per s"], "jobs/s",
               theirs["enqueue per s"], bare_name, "no 'database is locked'", True,
               f"taskctl: 0 errors, every job once; bare: {trouble} error(s)"),
        Figure("contention: drain rate while enqueueing (first run to last)", ours["drain per s"], "jobs/s",
               theirs["drain per s"], bare_name),
    ]  # fmt: skip
    return figures, {"taskctl": ours, "bare": theirs}


def bare_enqueue(module: Any, args: range) -> None:
    "Bare Huey's messages straight into its table: fast, so the batches drain in the consumer alone."
    huey, noop = module.huey, module.noop
    with huey.storage.db(commit=True) as curs:
        curs.executemany(
            "INSERT INTO task (queue, data, priority) VALUES (?, ?, 0)",
            ((huey.name, huey.serialize_task(noop.s(i))) for i in args),
        )


def drain_batches(kind: str, folder: Path, jobs: int, batches: int) -> dict[str, Any]:
    (consumer,), db, where = consumers_for(kind, folder, 1)
    rss, seconds = [proc_status(consumer.pid, "VmRSS")], []
    try:
        if kind == "taskctl":
            app = build_app(load_settings(where))
            info = app.resolve("noop")
            done = "SELECT count(*) FROM taskctl_jobs WHERE state = 'succeeded'"
        else:
            done = "SELECT count(*) FROM kv"
        for b in range(batches):
            args = range(b * jobs // batches, (b + 1) * jobs // batches)
            start = time.perf_counter()
            if kind == "taskctl":
                rows = [bulk.Row(n, [i], {}) for n, i in enumerate(args, 1)]
                bulk.enqueue_rows(info, rows, bulk.Batch(f"memory-{b}"), [None] * len(args))
            else:
                bare_enqueue(where, args)
            wait_for(f"{kind} to drain batch {b + 1}", lambda end=args.stop: count(db, done) >= end, 600, 0.1)
            seconds.append(time.perf_counter() - start)
            rss.append(proc_status(consumer.pid, "VmRSS"))
        peak = proc_status(consumer.pid, "VmHWM")
    finally:
        code = stop(consumer)
    check_log(folder / "consumer-0.log")
    if code:
        raise Incomplete(f"the {kind} consumer exited {code}")
    if kind == "taskctl":
        check_record(db, set(range(jobs)))
    else:
        conn = connect(db)
        values = sorted(pickle.loads(value) for (value,) in conn.execute("SELECT value FROM kv"))
        conn.close()
        if values != list(range(jobs)):
            raise Incomplete(f"bare Huey: {len(values)} results for {jobs} jobs")
    return {"rss MiB": [r / MIB for r in rss], "peak MiB": peak / MIB, "batch seconds": seconds}


def memory(folder: Path, jobs: int, batches: int = 3) -> tuple[list[Figure], dict[str, Any]]:
    ours = drain_batches("taskctl", folder / "memory", jobs, batches)
    theirs = drain_batches("bare", folder / "memory-bare", jobs, batches)
    growth = {name: d["rss MiB"][-1] - d["rss MiB"][1] for name, d in (("taskctl", ours), ("bare", theirs))}
    rate = {name: jobs / sum(d["batch seconds"]) for name, d in (("taskctl", ours), ("bare", theirs))}
    after = " / ".join(f"{r:.1f}" for r in ours["rss MiB"])
    bare_name = "bare huey_consumer, 2 threads"
    figures = [
        Figure(f"consumer peak RSS (VmHWM) after draining {jobs:,} jobs", ours["peak MiB"], "MiB",
               theirs["peak MiB"], bare_name, note=f"taskctl VmRSS at start / after each batch: {after}"),
        Figure(f"consumer RSS growth, batch 1 to batch {batches} ({jobs // batches:,} jobs each)", growth["taskctl"],
               "MiB", growth["bare"], bare_name, "< 2 MiB (noise)", growth["taskctl"] < 2),
        Figure(f"queue + drain {jobs:,} jobs in {batches} batches, 1 consumer (2 threads)", rate["taskctl"],
               "jobs/s", rate["bare"], bare_name),
    ]  # fmt: skip
    return figures, {"taskctl": ours, "bare": theirs}


if __name__ == "__main__" and sys.argv[1:2] == ["produce"]:
    kind, where, first, jobs, folder = sys.argv[2:7]
    produce(kind, where, int(first), int(jobs), folder)
