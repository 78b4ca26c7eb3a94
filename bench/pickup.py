"""Idle pickup on SQLite: how long a job queued to an idle consumer waits, and what idling costs.

    .venv/bin/python bench/pickup.py              # gaps of 2, 5, 30 and 90 s idle, a few samples each (~4 min)
    .venv/bin/python bench/pickup.py --quick      # 2 and 5 s gaps (~40 s)

One real consumer (`taskctl run-consumer`, the default two thread workers) on a temporary
SQLite database; after each idle gap a job is enqueued through the Python API, and the
pickup is the time from just before the enqueue call to the task's own first act
(time.time(), returned as its result). Idle CPU is the consumer's user + system time
over the gap (/proc, Linux), as a share of one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = "import time\nfrom taskctl import task\n@task()\ndef stamp():\n    return time.time()\n"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples", type=int, default=4, help="jobs per gap")
    args = parser.parse_args()
    gaps = [2.0, 5.0] if args.quick else [2.0, 5.0, 30.0, 90.0]
    samples = 3 if args.quick else args.samples
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "pickup_tasks.py").write_text(TASKS)
        (folder / "config.toml").write_text('[taskctl]\nmodules = ["pickup_tasks"]\ndatabase = "t.db"\n')
        sys.path[:0] = [str(ROOT), str(folder)]
        os.chdir(folder)
        from taskctl.app import build_app
        from taskctl.config import load_settings

        stamp = build_app(load_settings(folder / "config.toml")).wrapper("pickup_tasks.stamp")
        stamp().get(blocking=False)  # the database exists before the consumer starts
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{folder}")
        consumer = subprocess.Popen(
            [sys.executable, "-m", "taskctl", "run-consumer", "--no-periodic"], env=env, stderr=subprocess.DEVNULL
        )
        try:
            stamp().get(blocking=True, timeout=60)  # started, and the first job through
            print(f"idle pickup on SQLite, {samples} job(s) after each idle gap (ms, from enqueue to the task's start)")
            for gap in gaps:
                pickups, cpu = [], []
                for _ in range(samples):
                    before = cpu_seconds(consumer.pid)
                    time.sleep(gap)
                    cpu.append((cpu_seconds(consumer.pid) - before) / gap * 100)
                    sent = time.time()
                    started = stamp().get(blocking=True, timeout=60)
                    pickups.append((started - sent) * 1000)
                print(
                    f"  after {gap:4.0f} s idle: p50 {statistics.median(pickups):6.2f}  max {max(pickups):6.2f}"
                    f"   idle CPU {statistics.mean(cpu):.2f}% of a core"
                )
        finally:
            consumer.terminate()
            consumer.wait(30)


if __name__ == "__main__":
    main()
