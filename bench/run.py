"""taskctl against bare Huey, measured side by side in one run on this machine.

    .venv/bin/python bench/run.py                      # everything, about 4.5 minutes
    .venv/bin/python bench/run.py --quick              # smaller: a smoke run, 1-1.5 minutes
    .venv/bin/python bench/run.py --only cli,pickup    # some sections (names below)
    .venv/bin/python bench/run.py --json out.json      # also the figures as JSON (--json - : stdout)

Machines here are shared and noisy, so every figure is reported beside a baseline
measured in the same run (rounds interleaved where they can be), and the ratio is
what to compare. Every section checks what it measured: each job done exactly
once, with the right result (taskctl's record and Huey's own result), nothing
left, no caller seeing an error. A check that fails makes the run INCOMPLETE:
the other sections still run, then it says what failed and exits 1.

Sections:
  perjob      enqueue (`task(i)`) and in-process drain, synchronous NORMAL and FULL (storage.py)
  status      status data with a large record (storage.py)
  prune       the retention prune while another connection enqueues (storage.py)
  cli         `taskctl status`, `--help`, `run-consumer --burst`, whole processes (processes.py)
  bulk        `taskctl enqueue TASK --each FILE` (processes.py)
  pickup      idle pickup p50/p99 and idle CPU, consumers side by side (processes.py)
  contention  4 producer processes, 2 consumer processes, one SQLite file (contention.py)
  memory      a consumer's RSS over three drains, beside a bare one (memory.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import contention  # noqa: E402
import memory  # noqa: E402
import processes  # noqa: E402
import storage  # noqa: E402
from support import Figure, Incomplete  # noqa: E402

Section = Callable[[argparse.Namespace, Path], tuple[list[Figure], dict[str, Any]]]
SECTIONS: dict[str, Section] = {
    "perjob": lambda a, folder: storage.per_job(folder, a.jobs, a.rounds),
    "status": lambda a, folder: storage.status_cost(folder, a.queued, a.history, a.rounds),
    "prune": lambda a, folder: storage.prune_cost(folder, a.prune),
    "cli": lambda a, folder: processes.cli(folder, a.cli_runs),
    "bulk": lambda a, folder: processes.bulk(folder, a.lines, a.bulk_rounds),
    "pickup": lambda a, folder: processes.pickup(folder, a.gaps),
    "contention": lambda a, folder: contention.contention(folder, a.per_producer),
    "memory": lambda a, folder: memory.memory(folder, a.drained),
}


# --quick's sizes: every section still runs and checks, on about a tenth of the work.
QUICK = {
    "jobs": 500, "queued": 10_000, "history": 50_000, "prune": 20_000, "cli_runs": 3, "lines": 5000,
    "bulk_rounds": 1, "per_producer": 500, "drained": 9000, "gaps": [(0.3, 10), (2.0, 3)],
}  # fmt: skip


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller everything: a smoke run, 1-1.5 minutes")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run, comma-separated")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON to FILE (- for stdout)")
    parser.add_argument("--jobs", type=int, default=1500, help="perjob: no-op jobs per round")
    parser.add_argument("--rounds", type=int, default=3, help="perjob and status: rounds")
    parser.add_argument("--queued", type=int, default=50_000, help="status: jobs queued")
    parser.add_argument("--history", type=int, default=250_000, help="status: finished jobs in the record")
    parser.add_argument("--prune", type=int, default=150_000, help="prune: old jobs to delete")
    parser.add_argument("--cli-runs", type=int, default=5, help="cli: runs of each command")
    parser.add_argument("--lines", type=int, default=20_000, help="bulk: JSON lines in the file")
    parser.add_argument("--bulk-rounds", type=int, default=2, help="bulk: runs of each side")
    parser.add_argument("--per-producer", type=int, default=2000, help="contention: jobs each producer queues")
    parser.add_argument("--drained", type=int, default=100_000, help="memory: jobs drained, in three batches")
    parser.add_argument(
        "--gaps", type=gaps, default=[(0.3, 12), (5.0, 4)],
        help="pickup: idle seconds:samples, comma-separated (default 0.3:12,5:4; 30:3,90:2 for long idles)",
    )  # fmt: skip
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(**QUICK)  # what is given on the command line still wins
    args = parser.parse_args()
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"no section {', '.join(sorted(unknown))}; sections: {', '.join(SECTIONS)}")
    return args


def gaps(text: str) -> list[tuple[float, int]]:
    "'0.3:12,5:4' -> [(0.3, 12), (5.0, 4)]: idle seconds before a job, and how many such jobs."
    try:
        return [(float(gap), int(samples)) for gap, samples in (part.split(":") for part in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: want SECONDS:SAMPLES,... such as 5:10,30:3") from None


def shown(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "jobs/s":
        return f"{value:,.0f} jobs/s"
    digits = 3 if unit == "s" else 2 if abs(value) < 10 else 1
    return f"{value:,.{digits}f} {unit}"


def table(figures: list[Figure], out: TextIO) -> None:
    "The figures as a Markdown table, ready for the README."
    print("| measurement | taskctl | baseline, same run | ratio | target | met | note |", file=out)
    print("| --- | --- | --- | --- | --- | --- | --- |", file=out)
    for f in figures:
        baseline = f"{shown(f.baseline, f.unit)} ({f.baseline_name})" if f.baseline is not None else ""
        ratio = "" if f.ratio is None else f"{f.ratio:.{2 if abs(f.ratio) >= 0.1 else 3}f}x"
        met = "" if f.met is None else "yes" if f.met else "**no**"
        print(
            f"| {f.name} | {shown(f.value, f.unit)} | {baseline} | {ratio} | {f.target} | {met} | {f.note} |", file=out
        )


def main() -> None:
    args = options()
    out = sys.stderr if args.json == "-" else sys.stdout  # stdout is the JSON's, then
    folder = Path(tempfile.mkdtemp(prefix="taskctl-bench-"))
    began = time.monotonic()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": args.quick, "cpus": os.cpu_count(),
        "load before": os.getloadavg(), "sections": {}, "failures": {},
    }  # fmt: skip
    figures: list[Figure] = []
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > cpus:  # others' work slows both sides alike, but the run takes longer
        print(f"note: load {load:.1f} on {cpus} cores: the run will be slow, compare ratios only", file=sys.stderr)
    for name in args.only:
        print(f"{name} ...", file=sys.stderr, flush=True)
        start = time.monotonic()
        (folder / name).mkdir()
        try:
            found, details = SECTIONS[name](args, folder / name)
        except Incomplete as exc:
            report["failures"][name] = str(exc)
            print(f"{name}: INCOMPLETE: {exc}", file=sys.stderr)
            continue
        except Exception:
            report["failures"][name] = traceback.format_exc()
            print(f"{name}: FAILED\n{traceback.format_exc()}", file=sys.stderr)
            continue
        finally:
            seconds = time.monotonic() - start
            print(f"{name}: {seconds:.1f} s", file=sys.stderr, flush=True)
        figures += found
        report["sections"][name] = {
            "seconds": seconds, "figures": [f.as_json() for f in found], "details": details,
        }  # fmt: skip
    total = time.monotonic() - began
    report |= {"total seconds": total, "load after": os.getloadavg(), "complete": not report["failures"]}
    print(file=out)
    table(figures, out)
    print(f"\ntotal {total:.0f} s ({', '.join(args.only)}), load {report['load after'][0]:.2f}", file=out)
    if args.json:
        text = json.dumps(report, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if report["failures"]:
        print(f"\nINCOMPLETE RUN: {len(report['failures'])} section(s) failed their checks", file=sys.stderr)
        for name, problem in report["failures"].items():
            print(f"  {name}: {problem.strip().splitlines()[-1]}", file=sys.stderr)
        print(f"  their files are kept in {folder}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
