"""Each test gets its own project folder: a config.toml, a task module with a
unique name (so in-process CLI runs never share an imported module), and a
real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis_support import RedisMissing, start_redis
from redis_support import stop as stop_redis
from typer.testing import CliRunner

from taskctl.cli import app

TASK_MODULE = '''
import time
from pathlib import Path

from taskctl import periodic, task


@task()
def add(a, b=0):
    return a + b


@task()
def echo(value=None):
    return value


@task()
def boom(message="boom"):
    raise ValueError(message)


@task(retries=2)
def flaky(marker, failures=1):
    """Fails `failures` times, then succeeds; counts attempts in the file `marker`."""
    path = Path(marker)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails")
    return f"ok after {attempt}"


@task()
def slow(seconds=1.0, marker=None):
    if marker:
        Path(marker).write_text("started")
    time.sleep(seconds)
    return seconds


@task(retries=1)
def slow_retried(seconds=1.0, marker=None):
    if marker and Path(marker).exists():
        return "second run"
    if marker:
        Path(marker).write_text("started")
    time.sleep(seconds)
    return "first run"


@task(timeout=1)
def hangs(seconds=30):
    time.sleep(seconds)


@task(expires=1)
def perishable():
    return "fresh"


@task(retries=1, retry_delay=1)
def cancels_once(marker):
    from huey.exceptions import CancelExecution

    if not Path(marker).exists():
        Path(marker).write_text("cancelled")
        raise CancelExecution(retry=True)
    return "ran"


@task()
def exits(code=3):
    raise SystemExit(code)


@task(context=True)
def whoami(task):
    return task.id


@task()
def sample():
    return {"value": 42}


@task()
def fan_out(n=2):
    "Queues `n` add jobs: a task calling a task."
    return [add(i).id for i in range(n)]


@periodic("0 0 1 1 *")
def yearly():
    return "happy new year"
'''

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the shipped example tasks/ package


@dataclass
class Project:
    root: Path
    module: str
    url: str | None = None  # a redis:// URL: the record lives in Redis, under a queue of its own

    @property
    def engine(self) -> str:
        return "redis" if self.url else "sqlite"

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def database(self) -> Path:
        return self.root / "taskctl.db"

    def has_record(self) -> bool:
        "Has anything written the record yet? (A SQLite file is made by the first write.)"
        return self.url is not None or self.database.exists()

    def record_ready(self) -> bool:
        """Can the record be read yet? A consumer creates the SQLite file a moment before
        its schema is committed; in between, readers rightly say there is no database yet."""
        from taskctl.engines import check_sqlite_file
        from taskctl.errors import TaskctlError

        if self.url is not None:
            return True
        try:
            found = check_sqlite_file(self.database)
        except TaskctlError:  # caught mid-write
            return False
        return found is not None and found.kind == "taskctl" and not found.pending

    @property
    def database_line(self) -> str:
        if self.url:
            return f'database = "{self.url}"\nname = "{self.module}"'
        return 'database = "taskctl.db"'

    def write_config(self, extra: str = "", schedules: str = "", taskctl: str = "") -> None:
        database = self.database_line.replace("\n", "\n            ")
        text = f"""
            [taskctl]
            modules = ["{self.module}"]
            {database}
            poll_interval = 0.1
            {taskctl}

            [schedules]
            {schedules}

            {extra}
        """
        self.config.write_text(textwrap.dedent(text))

    def cli(self, *args: str, config: bool = True) -> Any:
        argv = ["--config", str(self.config), *args] if config else list(args)
        return CliRunner().invoke(app, argv)

    def ok(self, *args: str) -> str:
        result = self.cli(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result.stdout

    def enqueue(self, *args: str) -> str:
        return self.ok("enqueue", *args).strip()

    def status(self) -> dict[str, Any]:
        return json.loads(self.ok("status", "--json", "--limit", "100"))

    def job(self, job_id: str) -> dict[str, Any]:
        "The job as `--json` documents show it, read from the record."
        from taskctl.config import load_settings
        from taskctl.engines import open_record

        settings = load_settings(self.config)
        found = open_record(settings).job(job_id)
        assert found is not None, f"no job {job_id}"
        return found.to_json(settings.tz)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "taskctl", "--config", str(self.config), *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout, cwd=self.root, env=subprocess_env()
        )

    def burst(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run("run-consumer", "--burst", *args)
        assert done.returncode == 0, done.stderr
        return done

    def start_consumer(self, *args: str, host: str | None = None) -> subprocess.Popen[str]:
        "A consumer subprocess; `host` is the name it records (as if on another machine)."
        env = subprocess_env() | ({"TASKCTL_HOSTNAME": host} if host else {})
        return subprocess.Popen(
            self.command("run-consumer", *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=self.root, env=env,
        )  # fmt: skip


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def wait_until(
    condition: Any, timeout: float = 20.0, what: str = "condition", consumer: subprocess.Popen[str] | None = None
) -> Any:
    "`condition()` once it is true; a timeout stops `consumer` and shows what it printed."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    if consumer is None:
        raise AssertionError(f"timed out waiting for {what}")
    alive = consumer.poll() is None
    out, err = stop(consumer)
    state = "was still running" if alive else f"had exited with {consumer.returncode}"
    printed = f"{(out or '')[-2000:]}\n{(err or '')[-4000:]}"
    raise AssertionError(f"timed out waiting for {what}; the consumer {state}:\n{printed}")


def stop(process: subprocess.Popen[str], sig: int = signal.SIGINT, timeout: float = 30) -> tuple[str, str]:
    process.send_signal(sig)
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    "One real redis-server for the session; each project has a queue (a key prefix) of its own."
    try:
        url, process = start_redis()
    except RedisMissing as exc:
        if os.environ.get("TASKCTL_REQUIRE_REDIS"):  # CI: a missing server is a failure, not a skip
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield url
    stop_redis(process)


@pytest.fixture(params=["sqlite", "redis"])
def engine(request: pytest.FixtureRequest) -> str:
    "Every test that takes a project runs on both engines, but for those marked `sqlite`."
    return request.param


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str, request: pytest.FixtureRequest) -> Project:
    monkeypatch.delenv("TASKCTL_CONFIG", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)  # pytest-xdist's workers set it; pipes get 200 columns
    module = f"jobs_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{module}.py").write_text(TASK_MODULE)
    url = request.getfixturevalue("redis_url") if engine == "redis" else None
    proj = Project(tmp_path, module, url)
    proj.write_config()
    return proj


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    "Tests marked `sqlite` (its files and SQL) or `redis` (several hosts) run on that engine alone."
    keep, drop = [], []
    for item in items:
        engine = item.callspec.params.get("engine") if hasattr(item, "callspec") else None
        other = {"sqlite": "redis", "redis": "sqlite"}.get(engine or "")
        (drop if other and item.get_closest_marker(other) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
