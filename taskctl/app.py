"""The one place a Huey instance is built: storage, task modules, schedules, tracking."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sqlite3
import sys
import threading
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import Any

from cronsim import CronSim
from huey import Huey
from huey.api import TaskWrapper
from huey.exceptions import CancelExecution

from taskctl import tracking
from taskctl.config import Settings, cron_problem, load_settings
from taskctl.decorators import TaskProxy
from taskctl.errors import ConfigError, DatabaseError, TaskModuleError, UnknownTask
from taskctl.retention import PRUNE_TASK
from taskctl.storage import JobStorage


class TaskctlHuey(Huey):
    """Huey on taskctl's JobStorage, recording what Huey's own hooks cannot see."""

    storage_class = JobStorage

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._executing = 0
        self._executing_lock = threading.Lock()
        os.register_at_fork(after_in_child=partial(_reset_after_fork, weakref.ref(self)))

    def get_storage(self, **kwargs: Any) -> JobStorage:
        return JobStorage(self.name, serializer=self.serializer, **kwargs)

    def busy(self) -> bool:
        "Is this process executing a job (from its start to its last hook)?"
        with self._executing_lock:
            return self._executing > 0

    def execute(self, task: Any, timestamp: datetime | None = None) -> Any:
        with self._executing_lock:
            self._executing += 1
        try:
            timestamp = timestamp or self._get_timestamp()
            if not self.ready_to_run(task, timestamp):
                # Huey will put it back on the schedule (a clock ahead of this one set its eta).
                self.storage.unclaim(task.id)
            return super().execute(task, timestamp)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            # SystemExit from a task, or a failure in Huey's own bookkeeping,
            # escapes Huey's handlers: record it rather than leave it 'running'.
            tracking.record_escaped(self, task, exc)
            raise
        finally:
            with self._executing_lock:
                self._executing -= 1

    def _run_pre_execute(self, task: Any) -> None:
        # Huey only signals a pre-execute cancel; record it, as a revoke.
        try:
            super()._run_pre_execute(task)
        except CancelExecution:
            self.storage.record_skipped(task.id, "revoked")
            raise

    def dequeue(self) -> Any:
        # Huey would log a message it cannot turn into a task and leave it
        # claimed forever; here the job fails with the reason instead.
        data = self.storage.dequeue()
        if data is None:
            return None
        try:
            return self.deserialize_task(data)
        except Exception as exc:
            self.storage.record_undeliverable(data, exc)
            return None


def _reset_after_fork(ref: weakref.ref[TaskctlHuey]) -> None:
    # A lock held by another thread at the fork would never be released.
    huey = ref()
    if huey is not None:
        huey._executing = 0
        huey._executing_lock = threading.Lock()


@dataclass(frozen=True)
class TaskInfo:
    name: str
    proxy: TaskProxy
    cron: str | None = None
    schedule_source: str | None = None  # "config" or "code"

    @property
    def wrapper(self) -> TaskWrapper:
        return self.proxy.bound()

    @property
    def kind(self) -> str:
        return "periodic" if self.cron else "on-demand"

    @property
    def retries(self) -> int:
        return self.wrapper.task_class.default_retries

    @property
    def timeout(self) -> float | None:
        return self.wrapper.task_class.default_timeout

    def next_run(self, tz: tzinfo, after: datetime) -> datetime | None:
        if not self.cron:
            return None
        return next(CronSim(self.cron, after.astimezone(tz).replace(microsecond=0)))


@dataclass
class App:
    settings: Settings
    huey: TaskctlHuey
    tasks: dict[str, TaskInfo]

    @property
    def storage(self) -> JobStorage:
        return self.huey.storage

    def resolve(self, name: str) -> TaskInfo:
        "A full name, or any unique suffix of one at a dot (`top_repos`, `github.top_repos`)."
        return self.tasks[resolve_name(name, list(self.tasks))]

    def periodic(self) -> list[TaskInfo]:
        return [info for info in self.tasks.values() if info.cron]

    def next_run(self, info: TaskInfo, now: datetime | None = None) -> datetime | None:
        """When the consumer will next queue a periodic task. A minute that matches
        is still ahead while it lasts, until a run has been queued in it."""
        now = now or datetime.now(UTC)
        minute = now.replace(second=0, microsecond=0)
        ran = self.settings.database.exists() and self.storage.enqueued_since(info.name, minute.timestamp())
        return info.next_run(self.settings.tz, now if ran else minute - timedelta(seconds=1))


def resolve_name(name: str, names: list[str]) -> str:
    if name in names:
        return name
    matches = [full for full in names if full.endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnknownTask(f"task name {name!r} is ambiguous: {', '.join(matches)}; use the full name")
    short = {full.rsplit(".", 1)[-1]: full for full in names}
    close = difflib.get_close_matches(name, names, n=3) or [
        short[s] for s in difflib.get_close_matches(name.rsplit(".", 1)[-1], list(short), n=3)
    ]
    hint = f"; did you mean {' or '.join(close)}?" if close else "; run `taskctl tasks` to list them"
    raise UnknownTask(f"unknown task {name!r}{hint}")


def build_app(settings: Settings, create: bool = True) -> App:
    """Import the task modules and bind them to a Huey on the configured database.
    With `create=False` a missing database stays missing (for read-only commands)."""
    huey = _open_huey(settings, create)
    proxies = _import_tasks(settings)
    schedules = _config_schedules(settings, [p.name for p in proxies])
    if settings.retention.schedule:
        proxies.append(PRUNE_TASK)
        schedules[PRUNE_TASK.name] = settings.retention.schedule
    tasks: dict[str, TaskInfo] = {}
    for proxy in proxies:
        cron, source = schedules.get(proxy.name), "config"
        if cron is None and proxy.cron is not None:
            cron, source = proxy.cron, "code"
            if problem := cron_problem(cron):
                raise ConfigError(f"@periodic({cron!r}) on {proxy.name} is not a valid cron expression: {problem}")
        if cron is not None:
            _check_runs_without_arguments(proxy)
            matcher = cron_matcher(cron, settings.tz, proxy.name, huey.storage)
            decorate = huey.periodic_task(matcher, **proxy.options)
        else:
            decorate = huey.task(**proxy.options)
        proxy.wrapper = decorate(proxy.func)
        tasks[proxy.name] = TaskInfo(proxy.name, proxy, cron, source if cron else None)
    tracking.install(huey)
    app = App(settings, huey, tasks)
    _State.current = app
    return app


class _State:
    current: App | None = None


def current_app() -> App | None:
    return _State.current


def default_app() -> App:
    "The app for code that runs outside the CLI (a web app calling a task)."
    return _State.current or build_app(load_settings())


def settings() -> Settings:
    "The settings of the running app, for task modules (`settings().section('github')`)."
    return default_app().settings


def cron_matcher(expr: str, tz: tzinfo, task: str, storage: JobStorage) -> Any:
    """Huey's periodic check: does this minute (in the schedule's time zone) match
    `expr`, and has no run of `task` been queued in it yet? Huey checks on start and
    then every 60s, so a restart, or a second consumer, would otherwise run it twice."""

    def matches(timestamp: datetime) -> bool:
        # In UTC, then to the zone: wall-clock arithmetic would lose the DST fold.
        minute = timestamp.replace(tzinfo=UTC, second=0, microsecond=0)
        start = (minute - timedelta(seconds=1)).astimezone(tz)
        # Compare instants: Python's == is never true across zones for a time in the fold.
        if next(CronSim(expr, start)).timestamp() != minute.timestamp():
            return False
        return not storage.enqueued_since(task, minute.timestamp())

    return matches


def open_error(path: Path, exc: sqlite3.Error, busy_timeout: float) -> DatabaseError:
    "A clear message for a database file SQLite cannot use."
    text = str(exc)
    if "locked" in text or "busy" in text:
        return DatabaseError(
            f"database {path} is locked by another process for more than {busy_timeout:g}s; "
            "retry when it is done, or raise [taskctl] busy_timeout"
        )
    if "not a database" in text or "malformed" in text:
        return DatabaseError(
            f"{path} is not a SQLite database (left untouched); "
            "point [taskctl] database at a new file or a taskctl database"
        )
    return DatabaseError(f"cannot open database {path}: {text}")


def _open_huey(settings: Settings, create: bool) -> TaskctlHuey:
    path = settings.database
    if path.is_dir():
        raise DatabaseError(f"database {path} is a directory; set [taskctl] database to a file path")
    exists = path.exists()
    try:
        if exists:
            _refuse_foreign(path)
        elif create:
            path.parent.mkdir(parents=True, exist_ok=True)
        return TaskctlHuey(
            settings.name,
            filename=str(path),
            timeout=settings.busy_timeout,
            synchronous=settings.synchronous,
            lease=settings.lease,
            create_tables=exists or create,  # no file is made until something is written
        )
    except sqlite3.Error as exc:
        raise open_error(path, exc, settings.busy_timeout) from None
    except OSError as exc:
        raise DatabaseError(f"cannot create the folder for database {path}: {exc}") from None


def _refuse_foreign(path: Path) -> None:
    "Another program's SQLite database: taskctl must not add its tables to it."
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()
    if tables and not tables & {"taskctl_jobs", "task", "kv", "schedule"}:
        shown = ", ".join(sorted(tables)[:5])
        raise DatabaseError(
            f"{path} is another program's SQLite database (tables: {shown}); left untouched; "
            "point [taskctl] database at a file of its own"
        )


def _import_tasks(settings: Settings) -> list[TaskProxy]:
    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    proxies: list[TaskProxy] = []
    for name in settings.modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise TaskModuleError(
                f"cannot import task module {name!r} (listed in {settings.path}): {type(exc).__name__}: {exc}"
            ) from None
        proxies += [
            value
            for value in vars(module).values()
            if isinstance(value, TaskProxy) and value.func.__module__ == module.__name__
        ]
    return proxies


def _config_schedules(settings: Settings, names: list[str]) -> dict[str, str]:
    resolved = {}
    for key, cron in settings.schedules.items():
        try:
            resolved[resolve_name(key, names)] = cron
        except UnknownTask as exc:
            raise ConfigError(f"{settings.path}: [schedules] {key!r}: {exc}") from None
    return resolved


def _check_runs_without_arguments(proxy: TaskProxy) -> None:
    try:
        inspect.signature(proxy.func).bind()
    except TypeError:
        raise ConfigError(
            f"{proxy.name} has required arguments, so it cannot run on a schedule; "
            "give them defaults or drop its schedule"
        ) from None
