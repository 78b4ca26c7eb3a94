"""What the sections of bench/run.py share: figures, projects, bare Huey, checks of the record, /proc."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from huey import Huey
from huey.storage import SqliteStorage

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent  # the venv's: taskctl and huey_consumer sit beside its python
TASKCTL = str(BIN / "taskctl")

# The tasks, the same code for both sides: `noop` is the measured job; `logged` also
# appends "arg time" to runs.log beside the module (one write() to an O_APPEND file: lines
# never interleave), so a bench sees what ran apart from what the record says; `stamp`
# returns its start.
_TASK_CODE = """

@task()
def noop(i):
    return i


@task()
def logged(i):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{i} {time.time():.6f}\\n".encode())
    finally:
        os.close(fd)
    return i


@task()
def stamp():
    return time.time()
"""

# The project's task module.
TASKS = (
    """
import os
import time

from taskctl import task

LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")
"""
    + _TASK_CODE
)

# The same tasks on bare SqliteHuey at synchronous NORMAL, for huey_consumer (bare_tasks.huey).
BARE_TASKS = (
    """
import os
import time

from support import NormalSqliteStorage
from huey import Huey

HERE = os.path.dirname(os.path.abspath(__file__))
LOG = os.path.join(HERE, "runs.log")
huey = Huey("bench", storage_class=NormalSqliteStorage, filename=os.path.join(HERE, "bare.db"))
task = huey.task
"""
    + _TASK_CODE
)

# taskctl as installed without the [redis] extra: None in sys.modules makes `import redis` fail.
WITHOUT_REDIS = [sys.executable, "-c", "import sys; sys.modules['redis'] = None; import taskctl.launch as t; t.main()"]


class Incomplete(Exception):
    "The run did not do what it measured: a job missing or run twice, a wrong result, an error seen."


@dataclass
class Figure:
    "One row of the table: taskctl's figure beside the baseline measured in the same run."

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"ratio": self.ratio}


class NormalSqliteStorage(SqliteStorage):
    "Huey's SqliteStorage at synchronous NORMAL, taskctl's default (Huey's fsync=False means OFF)."

    def _create_connection(self):
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


def bare_huey(path: Path, synchronous: str = "normal") -> Huey:
    storage = NormalSqliteStorage if synchronous == "normal" else SqliteStorage
    return Huey("bench", storage_class=storage, filename=str(path))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def project(folder: Path, synchronous: str = "normal") -> Path:
    """A project in `folder`: config.toml and a task module whose name is its own, so
    the many apps of one bench process never share a module. Returns config.toml."""
    folder.mkdir(parents=True)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(TASKS)
    (folder / "config.toml").write_text(
        f'[taskctl]\nmodules = ["{name}"]\ndatabase = "taskctl.db"\nsynchronous = "{synchronous}"\n'
        '[retention]\nschedule = ""\n'  # no prune job: it would run mid-measurement
    )
    return folder / "config.toml"


def bare_project(folder: Path) -> ModuleType:
    "Bare Huey's tasks as a module of their own in `folder` (its Huey is `huey`, on bare.db), imported."
    folder.mkdir(parents=True)
    name = f"bare_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(BARE_TASKS)
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def env(*paths: Path) -> dict[str, str]:
    "The environment of a child: taskctl from this tree, bench/ (support.py), and `paths`."
    return os.environ | {"PYTHONPATH": os.pathsep.join(str(p) for p in (ROOT, BENCH, *paths))}


def spawn(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    "A long-running child in `cwd`, its stdout and stderr in `log`."
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env(cwd))


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    "Ctrl+C, as a user stops a consumer; killed if it does not stop in time."
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise Incomplete(f"pid {process.pid} ({process.args}) did not stop in {timeout:.0f} s") from None


def wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
    "Poll until check() holds; the seconds it took. Raises Incomplete after `timeout`."
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise Incomplete(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


def proc_status(pid: int, key: str) -> int:
    "A field of /proc/PID/status in bytes (VmRSS: resident now; VmHWM: the peak)."
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def count(path: Path, sql: str, params: Iterable[Any] = ()) -> int:
    conn = connect(path)
    try:
        return conn.execute(sql, tuple(params)).fetchone()[0]
    finally:
        conn.close()


def check_record(path: Path, expected: set[int], task: str = "noop") -> None:
    """Every job of the record succeeded in one attempt, with the right result in both places
    (taskctl's preview, Huey's own result in kv), and its arguments are `expected`, each once."""
    conn = connect(path)
    try:
        rows = conn.execute(
            "SELECT j.id, j.task, j.state, j.attempts, j.args, j.result_preview, kv.value, "
            "(SELECT count(*) FROM taskctl_attempts a WHERE a.job_id = j.id) "
            "FROM taskctl_jobs j LEFT JOIN kv ON kv.queue = j.queue AND kv.key = j.id"
        ).fetchall()
    finally:
        conn.close()
    problems: dict[str, int] = {}
    seen: dict[int, int] = {}

    def problem(kind: str) -> None:
        problems[kind] = problems.get(kind, 0) + 1

    for _id, name, state, attempts, args, preview, value, attempt_rows in rows:
        if not name.endswith(f".{task}"):
            problem(f"a job of {name}")
            continue
        (arg,) = json.loads(args)
        seen[arg] = seen.get(arg, 0) + 1
        if state != "succeeded":
            problem(f"state {state}")
        elif attempts != 1 or attempt_rows != 1:
            problem("not one attempt")
        elif value is None or pickle.loads(value) != arg or json.loads(preview) != arg:
            problem("a wrong or missing result")
    missing = len(expected - seen.keys())
    twice = sum(1 for n in seen.values() if n > 1)
    extra = len(seen.keys() - expected)
    if missing or twice or extra or problems:
        raise Incomplete(
            f"{path.name}: {len(rows)} jobs for {len(expected)} expected: {missing} missing, {twice} queued "
            f"twice, {extra} not expected; {problems or 'no other problem'}"
        )


def check_runs(log: Path, expected: set[int]) -> list[float]:
    "Each expected argument ran exactly once, by the task's own log; the runs' times."
    runs: dict[int, int] = {}
    times = []
    for line in log.read_text().splitlines() if log.exists() else []:
        arg, at = line.split()
        runs[int(arg)] = runs.get(int(arg), 0) + 1
        times.append(float(at))
    missing = len(expected - runs.keys())
    twice = sum(1 for n in runs.values() if n > 1)
    if missing or twice or runs.keys() - expected:
        raise Incomplete(f"{log}: {missing} of {len(expected)} jobs never ran, {twice} ran more than once")
    return times


# What a consumer says when all is well: its start, Ctrl+C, its stop. Anything else is a problem.
CONSUMER_LINES = ("taskctl consumer: ", "WARNING taskctl.consumer: Stopping (SIGINT)", "taskctl consumer stopped")


def check_log(log: Path) -> None:
    "A consumer said nothing but its own start and stop lines: no 'database is locked', no traceback."
    lines = log.read_text().splitlines()
    unexpected = [line for line in lines if line.strip() and not any(ok in line for ok in CONSUMER_LINES)]
    if unexpected:
        locked = sum("database is locked" in line for line in unexpected)
        raise Incomplete(
            f"{log.name}: {len(unexpected)} unexpected line(s) ({locked} 'database is locked'), first: {unexpected[0]}"
        )
