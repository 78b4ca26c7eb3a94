"""Whole processes, as a user runs them: CLI start-up, `enqueue --each`, idle pickup.

- CLI: `taskctl status` (empty database), `taskctl --help` and `run-consumer --burst`
  with nothing to do, each the median of N runs, against `python -c "import typer,
  rich.table"` in the same rounds (the floor of any Typer + rich CLI). The burst twice:
  in this virtualenv, which has redis (the test extra), and as `pip install taskctl`
  leaves it, without the redis extra (Huey imports redis whenever it is installed).
- Bulk: `taskctl enqueue noop --each FILE` on N JSON lines, whole process, against a
  script queueing the same lines one `task(*args)` at a time on bare SqliteHuey NORMAL.
- Idle pickup: a taskctl consumer and a bare `huey_consumer` (2 thread workers, polling
  at most every second: taskctl's poll_interval) idle side by side; after each gap a job
  goes to each, and the pickup is the time from just before the enqueue to the task's
  own first act. Idle CPU is each consumer's user + system time over the gaps.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pickup import cpu_seconds
from support import (
    BIN,
    TASKCTL,
    WITHOUT_REDIS,
    Figure,
    Incomplete,
    bare_project,
    check_log,
    count,
    env,
    project,
    spawn,
    stop,
)

from taskctl.app import build_app
from taskctl.config import load_settings

TYPER_FLOOR = [sys.executable, "-c", "import typer, rich.table"]


def run(args: list[str], cwd: Path, expect: str = "") -> float:
    "Seconds a command takes, start to exit; it must succeed and say `expect`."
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env(cwd))
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or expect not in done.stdout + done.stderr:
        raise Incomplete(f"`{' '.join(args)}` exited {done.returncode}, without {expect!r}: {done.stderr[-500:]}")
    return elapsed


def cli(folder: Path, runs: int) -> tuple[list[Figure], dict[str, Any]]:
    config = project(folder / "cli")
    build_app(load_settings(config)).store.close()  # the database exists, and holds no job
    commands = {
        "floor": (TYPER_FLOOR, ""),
        "status": ([TASKCTL, "status"], "queued 0"),
        "help": ([TASKCTL, "--help"], "run-consumer"),
        "burst": ([TASKCTL, "run-consumer", "--burst"], "taskctl consumer stopped"),
        "burst, no redis": ([*WITHOUT_REDIS, "run-consumer", "--burst"], "taskctl consumer stopped"),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for n in range(runs):
        names = list(commands)
        for name in names[n % len(names) :] + names[: n % len(names)]:  # each takes each place in turn
            args, expect = commands[name]
            times[name].append(run(args, config.parent, expect))
    median = {name: statistics.median(values) for name, values in times.items()}
    floor, floor_name = median["floor"], 'python -c "import typer, rich.table"'
    figures = [
        Figure(f"`taskctl status`, empty database (median of {runs})", median["status"], "s", floor, floor_name,
               "<= 1.3x", median["status"] <= 1.3 * floor),
        Figure(f"`taskctl --help` (median of {runs})", median["help"], "s", floor, floor_name,
               "<= 1.3x", median["help"] <= 1.3 * floor),
        Figure(f"`run-consumer --burst`, nothing to do (median of {runs})", median["burst"], "s", floor, floor_name,
               "<= 2x --help", median["burst"] <= 2 * median["help"],
               f"{median['burst'] / median['help']:.2f}x --help"),
        Figure(f"the same, installed without the redis extra (median of {runs})", median["burst, no redis"], "s",
               floor, floor_name, "<= 2x --help", median["burst, no redis"] <= 2 * median["help"],
               f"{median['burst, no redis'] / median['help']:.2f}x --help"),
    ]  # fmt: skip
    return figures, {"runs": runs, "seconds": times}


def bulk(folder: Path, lines: int, rounds: int) -> tuple[list[Figure], dict[str, Any]]:
    each = folder / "each.jsonl"
    each.write_text("".join(f"[{i}]\n" for i in range(lines)))
    times: dict[str, list[float]] = {"taskctl": [], "bare": []}
    for n in range(rounds):
        config = project(folder / f"bulk-{n}")  # a new database each round: the same batch again queues nothing
        times["taskctl"].append(run([TASKCTL, "enqueue", "noop", "--each", str(each)], config.parent, f"{lines:,} job"))
        db = config.parent / "taskctl.db"
        queued = count(db, "SELECT count(*) FROM taskctl_jobs WHERE state = 'queued'")
        distinct = count(db, "SELECT count(DISTINCT args) FROM taskctl_jobs")
        if queued != lines or distinct != lines:
            raise Incomplete(f"--each queued {queued} jobs ({distinct} distinct) of {lines} lines")
        bare = bare_project(folder / f"bulk-bare-{n}")
        script = f"import json, {bare.__name__} as t\nfor line in open({str(each)!r}):\n    t.noop(*json.loads(line))"
        times["bare"].append(run([sys.executable, "-c", script], Path(bare.__file__).parent))
        if (queued := count(Path(bare.__file__).with_name("bare.db"), "SELECT count(*) FROM task")) != lines:
            raise Incomplete(f"bare Huey queued {queued} jobs of {lines} lines")
    ours, theirs = lines / statistics.median(times["taskctl"]), lines / statistics.median(times["bare"])
    figure = Figure(
        f"`taskctl enqueue noop --each FILE`, {lines:,} JSON lines, whole process (median of {rounds})", ours,
        "jobs/s", theirs, "bare SqliteHuey NORMAL, a script calling task(*args) per line", ">= 50,000 jobs/s",
        ours >= 50_000,
    )  # fmt: skip
    return [figure], {"lines": lines, "rounds": rounds, "seconds": times}


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else values[0]


def idle_then_send(
    consumers: dict[str, subprocess.Popen[bytes]], send: dict[str, Any], gap: float, samples: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    "`samples` times: idle `gap` s, then a stamp job to each consumer. Pickups (ms) and CPU seconds idle, by name."
    pickups: dict[str, list[float]] = {name: [] for name in send}
    cpu: dict[str, float] = dict.fromkeys(send, 0.0)
    for n in range(samples):
        before = {name: cpu_seconds(p.pid) for name, p in consumers.items()}
        time.sleep(gap)
        for name, p in consumers.items():
            cpu[name] += cpu_seconds(p.pid) - before[name]
        order = list(send) if n % 2 else list(send)[::-1]  # each goes first in turn
        sent, results = {}, {}
        for name in order:
            sent[name] = time.time()
            results[name] = send[name]()
        for name in order:
            pickups[name].append((results[name].get(blocking=True, timeout=60) - sent[name]) * 1000)
    return pickups, cpu


def pickup(folder: Path, gaps: list[tuple[float, int]]) -> tuple[list[Figure], dict[str, Any]]:
    config = project(folder / "pickup")
    app = build_app(load_settings(config))
    ours_stamp = app.resolve("stamp").wrapper
    ours_stamp().get(blocking=False)  # the database exists before the consumer starts
    bare = bare_project(folder / "pickup-bare")
    here = config.parent
    consumers = {
        "taskctl": spawn([TASKCTL, "run-consumer", "--no-periodic"], here, here / "consumer.log"),
        "bare": spawn(
            [str(BIN / "huey_consumer"), f"{bare.__name__}.huey", "-w", "2", "-m", "1", "-q"],
            Path(bare.__file__).parent, here / "bare-consumer.log",
        ),
    }  # fmt: skip
    send = {"taskctl": ours_stamp, "bare": bare.stamp}
    details: dict[str, Any] = {"gaps": {}}
    figures: list[Figure] = []
    try:
        for name in send:  # started, and the first job through
            send[name]().get(blocking=True, timeout=60)
        for gap, samples in gaps:
            pickups, cpu = idle_then_send(consumers, send, gap, samples)
            idle = {name: cpu[name] / (gap * samples) * 100 for name in send}
            details["gaps"][gap] = {"samples": samples, "pickup ms": pickups, "idle cpu %": idle}
            mine, theirs = pickups["taskctl"], pickups["bare"]
            label = f"idle pickup after {gap:g} s idle"
            figures += [
                Figure(f"{label}, p50 of {samples}", statistics.median(mine), "ms", statistics.median(theirs),
                       "bare huey_consumer, SQLite NORMAL", "< 10 ms", statistics.median(mine) < 10),
                Figure(f"{label}, p99 of {samples}", p99(mine), "ms", p99(theirs),
                       "bare huey_consumer, SQLite NORMAL", "< 50 ms", p99(mine) < 50),
            ]  # fmt: skip
            if gap >= 1:  # /proc counts CPU in 10 ms ticks: a shorter gap's share is mostly rounding
                figures.append(Figure(f"idle CPU over {gap:g} s gaps", idle["taskctl"], "% of a core", idle["bare"],
                                      "bare huey_consumer", "< 2%", idle["taskctl"] < 2))  # fmt: skip
    finally:
        for process in consumers.values():
            stop(process)
    check_log(here / "consumer.log")
    check_log(here / "bare-consumer.log")
    return figures, details
