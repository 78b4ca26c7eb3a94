"""How long `taskctl` takes to answer, as a whole process, against importing Typer and rich.

    .venv/bin/python bench/cli.py            # 9 rounds (~1 min on a quiet 2-core machine)
    .venv/bin/python bench/cli.py --json     # the same figures as one JSON document

In a temporary folder holding a copy of the repository's tasks/ and config.toml (the
SQLite engine), after one `run-consumer --burst` has made an empty database, each round
runs, in a rotating order: the baseline `python -c "import typer, rich.table"`,
`taskctl --help`, `taskctl status`, `taskctl tasks` and `taskctl run-consumer --burst`
(nothing to do), the burst also as installed without the redis extra (burst-sqlite).
Medians are compared with the baseline's median of the same run, and the bursts with
`--help`'s (issue 9's targets: status and --help at most 1.3x the
baseline, the burst at most 2x --help). Bytecode is written and used, as in an
installed copy: the children run without PYTHONDONTWRITEBYTECODE, after a warm-up.
Each command's CPU time (user + system, median) is shown too: on a machine other
sessions load, it moves less than the wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import WITHOUT_REDIS

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "status": ("baseline", 1.3),
    "help": ("baseline", 1.3),
    "burst": ("help", 2.0),
    "burst-sqlite": ("help", 2.0),
}


def commands(taskctl: str) -> dict[str, list[str]]:
    return {
        "baseline": [sys.executable, "-c", "import typer, rich.table"],
        "help": [taskctl, "--help"],
        "status": [taskctl, "status"],
        "tasks": [taskctl, "tasks"],
        "burst": [taskctl, "run-consumer", "--burst"],
        # As `pip install taskctl` leaves it, without the redis extra (this virtualenv has redis, for the tests).
        "burst-sqlite": [*WITHOUT_REDIS, "run-consumer", "--burst"],
    }


def run(command: list[str], folder: Path, env: dict[str, str]) -> tuple[float, float]:
    "Wall-clock and CPU seconds (user + system) of one run."
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(rounds: int, taskctl: str) -> dict[str, list[tuple[float, float]]]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "TASKCTL_CONFIG")}
    env["COLUMNS"] = "120"
    timings: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(ROOT / "tasks", folder / "tasks")
        shutil.copy(ROOT / "config.toml", folder / "config.toml")
        todo = commands(taskctl)
        for command in [todo["burst"], *todo.values()]:  # the database, then bytecode for everything
            run(command, folder, env)
        names = list(todo)
        for n in range(rounds):
            for name in names[n % len(names) :] + names[: n % len(names)]:  # rotated: no command always first
                timings.setdefault(name, []).append(run(todo[name], folder, env))
    return timings


def report(timings: dict[str, list[tuple[float, float]]]) -> dict[str, object]:
    walls = {name: [wall for wall, _ in values] for name, values in timings.items()}
    medians = {name: statistics.median(values) for name, values in walls.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in timings.items()}
    rows = {}
    for name, median in medians.items():
        against, limit = TARGETS.get(name, ("baseline", None))
        ratio = median / medians[against] if name != against else 1.0
        rows[name] = {
            "median_s": round(median, 4),
            "min_s": round(min(walls[name]), 4),
            "max_s": round(max(walls[name]), 4),
            "cpu_s": round(cpu[name], 4),
            "cpu_ratio": round(cpu[name] / cpu[against], 2) if cpu[against] else None,
            "ratio": round(ratio, 2),
            "against": against,
            "target": limit,
            "met": None if limit is None else ratio <= limit,
        }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"rounds": len(walls["baseline"]), "python": sys.version.split()[0], "load_1m": load, "commands": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9, help="runs of each command (default 9)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--taskctl", default=str(Path(sys.executable).parent / "taskctl"), help="the taskctl to time")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    result = report(measure(args.rounds, args.taskctl))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"taskctl as a whole process, median of {result['rounds']} runs each "
        f"(python {result['python']}, load average {result['load_1m']:.2f})"
    )
    print(f"{'command':<12} {'median':>8} {'min':>8} {'max':>8} {'cpu':>8}  ratio (cpu ratio)")
    rows: dict[str, dict[str, object]] = result["commands"]  # type: ignore[assignment]
    for name, row in rows.items():
        target = f"  (target <= {row['target']}x {row['against']}: {'met' if row['met'] else 'MISSED'})"
        print(
            f"{name:<12} {row['median_s']:>7.3f}s {row['min_s']:>7.3f}s {row['max_s']:>7.3f}s {row['cpu_s']:>7.3f}s  "
            f"{row['ratio']:.2f}x {row['against']} ({row['cpu_ratio']}x)" + (target if row["target"] else "")
        )


if __name__ == "__main__":
    main()
