"""Soak: consumers killed with `kill -9` at random while jobs run; is every job accounted for?

    .venv/bin/python bench/soak.py                  # about 4 minutes: 180 s of kills, then the drain
    .venv/bin/python bench/soak.py --duration 30    # a smoke run

A producer enqueues a mix of quick jobs (up to 50 ms), slow ones (0.5 to 3 s)
and a few longer than the lease (8 s, lease 6 s: the heartbeat must keep them),
on SQLite, into three consumers of two workers each, some with thread workers
and some with process workers. Every few seconds one consumer, at random, is
killed with SIGKILL, and a new one (thread or process, at random) takes its
place. Then the producer stops, the live consumers stop with Ctrl+C, and a
burst consumer drains what is left.

Each run of a task appends `start` and `end` lines (job id, pid, thread, time)
to a log, so the soak sees what ran, beside what the record says. It reports:

- enqueued, succeeded, failed (and how many of those were lost: killed more
  often than their retries allow, `WorkerLost`), and how many runs a kill cut;
- missing (enqueued but not in the record) and stuck (in the record, not final
  after the drain);
- finished twice (a run ended after another had ended: killed between the
  task's return and the write of its outcome, which an at-least-once queue
  cannot rule out), and ran at once (two runs of one job overlapping in time,
  in two workers: what must never happen);
- processes left alive after each kill (the killed consumer's children) and
  at the end (anything still running this soak's config).

Target: 0 missing, 0 stuck, 0 ran at once, 0 processes left alive.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # tests/proc_support.py too

from proc_support import alive, children_of  # noqa: E402

from taskctl.app import build_app  # noqa: E402
from taskctl.config import load_settings  # noqa: E402
from taskctl.engines import open_record  # noqa: E402
from taskctl.model import State  # noqa: E402

LEASE = 6.0
TASKS = """
import os
import threading
import time
from pathlib import Path

from taskctl import task

LOG = str(Path(__file__).with_name("runs.log"))


def note(kind, job_id):
    # One write() to an O_APPEND file: lines of concurrent runs never interleave.
    line = f"{kind} {job_id} {os.getpid()} {os.getppid()} {threading.get_ident()} {time.time():.6f}\\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@task(retries=2, context=True)
def work(seconds, task=None):
    note("start", task.id)
    time.sleep(seconds)
    note("end", task.id)
    return seconds
"""


@dataclass
class Run:
    pid: int
    ppid: int
    thread: str
    start: float
    end: float | None = None


@dataclass
class Soak:
    folder: Path
    rng: random.Random
    consumers: list[tuple[subprocess.Popen[bytes], str]] = field(default_factory=list)
    killed_at: dict[int, float] = field(default_factory=dict)  # consumer pid -> when it was killed
    kills: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    orphans_after_kill: int = 0

    @property
    def config(self) -> Path:
        return self.folder / "config.toml"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "taskctl", "--config", str(self.config), *args]

    def start_consumer(self) -> None:
        kind = self.rng.choice(["thread", "process"])
        log = open(self.folder / "consumers.log", "ab")  # noqa: SIM115 (the child holds it)
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(
            self.command("run-consumer", "--workers", "2", "--worker-type", kind, "--no-periodic"),
            stdout=log, stderr=log, env=env, cwd=self.folder,
        )  # fmt: skip
        self.consumers.append((process, kind))

    def kill_one(self) -> None:
        index = self.rng.randrange(len(self.consumers))
        process, kind = self.consumers.pop(index)
        children = children_of(process.pid)
        process.kill()
        self.killed_at[process.pid] = time.time()
        process.wait()
        self.kills[kind] += 1
        deadline = time.monotonic() + 3
        while any(map(alive, children)) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in children if alive(pid)]
        self.orphans_after_kill += len(left)
        for pid in left:  # the soak must not leave them behind either
            os.kill(pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for process, _ in self.consumers:
            process.send_signal(signal.SIGINT)
        for process, _ in self.consumers:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.consumers.clear()


def running_with(text: str) -> list[int]:
    "Processes (not zombies) whose command line contains `text`."
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace") and alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def job_length(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.70:
        return round(rng.uniform(0, 0.05), 3)
    if roll < 0.97:
        return round(rng.uniform(0.5, 3.0), 3)
    return LEASE + 2


def read_runs(log: Path) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = defaultdict(list)
    open_runs: dict[tuple[str, int, str], Run] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, job_id, pid, ppid, thread, at = line.split()
        key = (job_id, int(pid), thread)
        if kind == "start":
            open_runs[key] = run = Run(int(pid), int(ppid), thread, float(at))
            runs[job_id].append(run)
        elif key in open_runs:
            open_runs.pop(key).end = float(at)
    return runs


def overlapping(runs: list[Run], killed_at: dict[int, float]) -> bool:
    "Did two runs of one job, in two workers, overlap in time?"

    def end(run: Run) -> float:
        if run.end is not None:
            return run.end
        # A run with no end was killed with its consumer (itself, or its parent).
        return killed_at.get(run.pid) or killed_at.get(run.ppid) or float("inf")

    latest = float("-inf")  # the latest end of the runs begun so far
    for run in sorted(runs, key=lambda r: r.start):
        if run.start < latest:
            return True
        latest = max(latest, end(run))
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds of enqueueing and kills")
    parser.add_argument("--rate", type=float, default=4, help="jobs enqueued per second")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)

    folder = Path(tempfile.mkdtemp(prefix="taskctl-soak-"))
    (folder / "soaktasks.py").write_text(TASKS)
    (folder / "config.toml").write_text(
        f'[taskctl]\nmodules = ["soaktasks"]\ndatabase = "taskctl.db"\nlease = {LEASE}\npoll_interval = 0.2\n'
        '\n[retention]\nschedule = ""\n'
    )
    settings = load_settings(folder / "config.toml")
    app = build_app(settings)
    work = app.resolve("work").wrapper
    soak = Soak(folder, rng)
    print(f"soak in {folder} (seed {seed}): {args.duration:.0f} s, {args.rate} jobs/s, lease {LEASE:.0f} s")

    ids: list[str] = []
    for _ in range(3):
        soak.start_consumer()
    start = time.monotonic()
    next_kill = start + rng.uniform(3, 10)
    while time.monotonic() - start < args.duration:
        ids.append(work(job_length(rng)).id)
        now = time.monotonic()
        if now >= next_kill:
            soak.kill_one()
            time.sleep(rng.uniform(0, 2))
            soak.start_consumer()
            next_kill = time.monotonic() + rng.uniform(3, 10)
        time.sleep(rng.expovariate(args.rate))

    print(f"enqueued {len(ids)}; stopping the consumers (Ctrl+C), then draining")
    soak.stop_all()
    drain = subprocess.run(
        soak.command("run-consumer", "--burst", "--workers", "4"),
        capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)}, cwd=folder, timeout=600,
    )  # fmt: skip
    if drain.returncode != 0:
        print(f"the drain failed: {drain.stderr}")
    left_alive = running_with(str(soak.config))

    record = open_record(settings)
    states: dict[str, int] = defaultdict(int)
    missing = stuck = lost = 0
    for job_id in ids:
        job = record.job(job_id)
        if job is None:
            missing += 1
            continue
        states[job.state.value] += 1
        if not job.state.final:
            stuck += 1
        if job.state is State.FAILED and job.error_type == "WorkerLost":
            lost += 1
    runs = read_runs(folder / "runs.log")
    finished_twice = sum(1 for job_id in ids if sum(r.end is not None for r in runs[job_id]) > 1)
    at_once = sum(1 for job_id in ids if overlapping(runs[job_id], soak.killed_at))
    short_at_once = sum(
        1 for job_id in ids if overlapping(runs[job_id], soak.killed_at) and max(
            (r.end - r.start for r in runs[job_id] if r.end is not None), default=0) < LEASE
    )  # fmt: skip

    print(f"kills: {soak.kills['thread']} thread consumers, {soak.kills['process']} process consumers")
    print(f"enqueued       {len(ids)}")
    print(f"succeeded      {states['succeeded']}")
    print(f"failed         {states['failed']} (lost: {lost}, killed more often than its 2 retries allow)")
    other = {k: v for k, v in states.items() if k not in ("succeeded", "failed")}
    if other:
        print(f"other states   {dict(other)}")
    print(f"missing        {missing}")
    print(f"stuck          {stuck}")
    cut = sum(1 for job_id in ids for r in runs[job_id] if r.end is None)
    print(f"cut by a kill  {cut} run(s) (each job recovered, and run again or failed as lost)")
    print(f"finished twice {finished_twice} (killed between the task's return and its recorded outcome)")
    print(f"ran at once    {at_once} (of them shorter than the lease: {short_at_once})")
    print(f"orphans        {soak.orphans_after_kill} child process(es) alive 3 s after their consumer's kill")
    print(f"left alive     {len(left_alive)} process(es) of this soak at the end")
    for pid in left_alive:
        os.kill(pid, signal.SIGKILL)
    ok = missing == stuck == at_once == soak.orphans_after_kill == len(left_alive) == 0
    print("target met" if ok else "TARGET MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
