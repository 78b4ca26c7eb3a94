"""Contention: producers and consumers in processes of their own, on one SQLite file.

Four producer processes enqueue through the Python API (`task(i)`) while two consumer
processes drain, all on one SQLite file; then the same with bare Huey (SqliteHuey
NORMAL, `huey_consumer`, 2 thread workers each). No taskctl caller may see an error
("database is locked" above all): producers keep every exception, consumers' output
is read whole. Every job must have run once (the task's own log) and be recorded as
succeeded in one attempt with its result.

Run as `contention.py produce ...` it is one producer (a child of the bench).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from consumers import consumers_for
from support import Figure, Incomplete, check_log, check_record, check_runs, count, env, stop, wait_for

from taskctl.app import build_app
from taskctl.config import load_settings

PRODUCERS, CONSUMERS = 4, 2


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


if __name__ == "__main__" and sys.argv[1:2] == ["produce"]:
    kind, where, first, jobs, folder = sys.argv[2:7]
    produce(kind, where, int(first), int(jobs), folder)
