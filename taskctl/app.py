"""The one place an app is built: its engine, its Huey, its tasks and schedules, its tracking.

An app owns its bindings: the task declarations of its modules are bound to
its own Huey, so two apps in one process never see each other's jobs.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property, partial
from typing import Any

from cronsim import CronSim
from huey import Huey
from huey.api import TaskWrapper
from huey.exceptions import CancelExecution

from taskctl import catalog, retention, signing, tracking
from taskctl.catchup import CatchUp
from taskctl.children import ChildSafeConsumer
from taskctl.config import Settings, cron_problem, load_settings
from taskctl.decorators import TaskProxy
from taskctl.engines import database_errors, open_record, store_options
from taskctl.engines.base import HueyWrites, Record, Store, periodic_slot
from taskctl.engines.faults import persistent
from taskctl.engines.messages import remember
from taskctl.errors import ConfigError, TaskModuleError, UnknownTask
from taskctl.model import State
from taskctl.names import resolve_name

STORAGE_FAILURE_PAUSE = 0.5  # seconds a worker waits after a storage error no retry fixes


class TaskctlHuey(Huey):
    """Huey on a taskctl engine, recording what Huey's own hooks cannot see."""

    storage_class: Any = None  # SQLite's JobStorage unless given: build_app passes the configured one

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._executing = 0
        self._started = 0  # jobs this process began to execute, ever: see activity()
        self._executing_lock = threading.Lock()
        self._slots: dict[str, float] = {}  # periodic runs read this minute -> their slot
        self.slotted: set[type] = set()  # the periodic tasks of taskctl's config and @periodic
        self.stopping: Any = None  # a running consumer's stop flag: once set, its workers claim nothing
        self.storage_failure: str | None = None  # why the record cannot be written, once a worker found out
        os.register_at_fork(after_in_child=partial(_reset_after_fork, weakref.ref(self)))

    def get_storage(self, **kwargs: Any) -> Any:
        storage_class: Any = self.storage_class
        if storage_class is None:  # imported here: a consumer on Redis never loads SQLite's engine
            from taskctl.engines.sqlite_store import JobStorage

            storage_class = JobStorage
        return storage_class(self.name, serializer=self.serializer, **kwargs)

    @property
    def store(self) -> Store:
        return self.storage

    def create_consumer(self, **options: Any) -> ChildSafeConsumer:
        return ChildSafeConsumer(self, **options)

    def activity(self) -> tuple[int, int]:
        """(jobs executing now, jobs begun so far) in this process. Two equal readings with
        none executing mean no job began or ended between them: what --burst needs to
        trust an idle store read in between (a job's outcome is written before the next
        step of its pipeline is queued, and the store then looks idle for a moment)."""
        with self._executing_lock:
            return self._executing, self._started

    def execute(self, task: Any, timestamp: datetime | None = None) -> Any:
        with self._executing_lock:
            self._executing += 1
            self._started += 1
        outer = getattr(_running, "huey", None), getattr(_running, "task", None), getattr(_running, "writes", None)
        _running.huey, _running.task = self, task
        # Immediate mode runs on Huey's MemoryStorage: Huey writes its keys itself.
        _running.writes = HueyWrites() if hasattr(self.storage, "record_success") else None
        try:
            timestamp = timestamp or self._get_timestamp()
            # Immediate mode runs on Huey's MemoryStorage, which keeps no record.
            if not self.ready_to_run(task, timestamp) and hasattr(self.storage, "unclaim"):
                # Huey puts it on the schedule: the claim is given back, not an attempt.
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
            try:
                self._flush_writes()  # the outcome never took them (its hook did not run): Huey's way
            finally:  # a failed write must not leave this process 'busy' for good (--burst would never end)
                _running.huey, _running.task, _running.writes = outer
                with self._executing_lock:
                    self._executing -= 1

    # Huey's own writes as a job ends, made by the store with the outcome (HueyWrites).

    def put_result(self, key: str, data: Any) -> Any:
        writes = self._writes_for(key)
        if writes is None or writes.result is not None:
            return super().put_result(key, data)
        writes.result = self.serializer.serialize(data)

    def delete(self, key: str) -> Any:
        writes = self._writes_for(key, revoke=True)
        if writes is None:
            return super().delete(key)
        writes.clear_revoke = key
        return True

    def take_writes(self) -> HueyWrites | None:
        "The writes of the job this thread is executing, for its outcome to make."
        writes, _running.writes = getattr(_running, "writes", None), None
        return writes

    def give_back(self, writes: HueyWrites | None) -> None:
        "The outcome could not take them: execute's end writes them as Huey would."
        if writes is not None and getattr(_running, "huey", None) is self:
            _running.writes = writes

    def _writes_for(self, key: str, revoke: bool = False) -> HueyWrites | None:
        task, writes = getattr(_running, "task", None), getattr(_running, "writes", None)
        if writes is None or task is None or _running.huey is not self:
            return None
        return writes if key == (task.revoke_id if revoke else task.id) else None

    def _flush_writes(self) -> None:
        writes = self.take_writes()
        if writes is not None and writes.clear_revoke is not None:
            self.storage.delete_data(writes.clear_revoke)
        if writes is not None and writes.result is not None:
            self.storage.put_data(_running.task.id, writes.result, is_result=True)

    def _run_pre_execute(self, task: Any) -> None:
        # Huey only signals a pre-execute cancel; record it, as a revoke.
        try:
            super()._run_pre_execute(task)
        except CancelExecution:
            if hasattr(self.storage, "record_skipped"):
                self.storage.record_skipped(task.id, State.REVOKED)
            raise

    def read_periodic(self, timestamp: datetime | None = None) -> list[Any]:
        "The periodic runs due this minute, each with its slot, which the store claims as it enqueues."
        timestamp = timestamp or self._get_timestamp()
        due = super().read_periodic(timestamp)
        minute = timestamp.replace(tzinfo=UTC, second=0, microsecond=0).timestamp()
        # Tasks declared with Huey's own periodic_task keep Huey's behaviour: no slot.
        self._slots.update((task.id, minute) for task in due if type(task) in self.slotted)
        return due

    def enqueue(self, task: Any) -> Any:
        minute = self._slots.pop(getattr(task, "id", ""), None)
        if minute is None:  # not a periodic run: it takes no slot (a manual enqueue, a retry)
            return super().enqueue(task)
        periodic_slot.job_id, periodic_slot.at = task.id, minute
        try:
            return super().enqueue(task)
        finally:
            periodic_slot.job_id = None

    def serialize_task(self, task: Any) -> bytes:
        message = self._registry.create_message(task)
        data: bytes = self.serializer.serialize(message)
        remember(data, message)  # the store reads the job from the message, not by unpickling
        return data

    def enqueue_slot(self, task: Any, slot: datetime) -> Any:
        "Queue a run of a periodic task for a slot it missed (catchup.py): it takes that slot, and says so in its eta."
        task.eta = slot.astimezone(UTC).replace(tzinfo=None)  # Huey's times are naive UTC
        self._slots[task.id] = slot.timestamp()
        return self.enqueue(task)

    def dequeue(self) -> Any:
        if self._stopping():
            return None
        # Huey would log a message it cannot turn into a task and leave it
        # claimed forever; here the job fails with the reason instead.
        try:
            data = self.storage.dequeue()
        except Exception as exc:
            if not self._storage_failed(exc):
                raise  # Huey logs it, and the worker tries again
            time.sleep(STORAGE_FAILURE_PAUSE)  # a blocking storage would not make the worker wait
            return None
        if data is None:
            return None
        try:
            task = self.deserialize_task(data)
        except Exception as exc:
            if not hasattr(self.storage, "record_undeliverable"):
                raise
            self.storage.record_undeliverable(data, exc)
            return None
        if self._stopping():
            # Claimed as the consumer began to stop (a worker waiting on Redis wakes up
            # for a job put back by the stop itself): give it back unrun, not an attempt.
            self.storage.unclaim(task.id, State.QUEUED)
            return None
        return task

    def _stopping(self) -> bool:
        return self.stopping is not None and self.stopping.is_set()

    def read_schedule(self, timestamp: datetime | None = None) -> list[Any]:
        try:
            return super().read_schedule(timestamp)
        except Exception as exc:
            if not self._storage_failed(exc):
                raise
            return []

    def _storage_failed(self, exc: Exception) -> bool:
        """A storage error no retry fixes is not logged at every poll: the consumer's main
        loop reads storage_failure and stops (a worker process's own copy is not seen
        there: the consumer's heartbeat finds the same error within lease / 4)."""
        reason = persistent(exc)
        if reason is not None:
            self.storage_failure = reason
        return reason is not None


def _reset_after_fork(ref: weakref.ref[TaskctlHuey]) -> None:
    # A lock held by another thread at the fork would never be released.
    huey = ref()
    if huey is not None:
        huey._executing = 0
        huey._executing_lock = threading.Lock()


@dataclass(frozen=True)
class TaskInfo:
    name: str
    declaration: TaskProxy
    wrapper: TaskWrapper
    cron: str | None = None
    schedule_source: str | None = None  # "config" or "code"
    catch_up: CatchUp = field(default_factory=CatchUp)

    @property
    def func(self) -> Any:
        return self.declaration.func

    @property
    def options(self) -> Any:
        return self.declaration.options

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
    tasks: dict[str, TaskInfo] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.huey.store

    @cached_property
    def record(self) -> Record:
        return open_record(self.settings)

    def wrapper(self, name: str) -> TaskWrapper:
        return self.tasks[name].wrapper

    def resolve(self, name: str) -> TaskInfo:
        "A full name, or any unique suffix of one at a dot (`top_repos`, `github.top_repos`)."
        return self.tasks[resolve_name(name, list(self.tasks))]

    def periodic(self) -> list[TaskInfo]:
        return [info for info in self.tasks.values() if info.cron]

    @property
    def exists(self) -> bool:
        "Is there a record yet? A SQLite file is made by the first write, not by reading."
        return self.settings.engine != "sqlite" or self.settings.database.exists()

    def next_run(self, info: TaskInfo, now: datetime | None = None) -> datetime | None:
        "When the consumer will next queue a periodic task (catalog.next_run)."
        return catalog.next_run(info, self.settings.tz, self.store if self.exists else None, now)


def build_app(settings: Settings, create: bool = True) -> App:
    """Import the task modules and bind them to a Huey on the configured engine.
    With `create=False` a missing SQLite database stays missing (for commands that read)."""
    # The modules first: one that fails to import must not leave a new database behind.
    declarations = _import_tasks(settings)
    schedules = _config_schedules(settings, [d.name for d in declarations])
    catch_ups = {resolve_name(key, list(schedules)): value for key, value in settings.catch_up.items()}
    storage_class, options = store_options(settings, create)
    # Commands that only read never unpickle, so they need no key.
    options["serializer"] = signing.serializer(settings) if create else None
    with database_errors(settings):
        huey = TaskctlHuey(settings.name, storage_class=storage_class, utc=True, **options)
    app = App(settings, huey)
    if settings.retention.schedule:
        prune = retention.prune_task(app)
        declarations.append(prune)
        schedules[prune.name] = settings.retention.schedule
    for declaration in declarations:
        cron, source = schedules.get(declaration.name), "config"
        if cron is None and declaration.cron is not None:
            cron, source = declaration.cron, "code"
            if problem := cron_problem(cron):
                raise ConfigError(
                    f"@periodic({cron!r}) on {declaration.name} is not a valid cron expression: {problem}"
                )
        if cron is not None:
            _check_runs_without_arguments(declaration)
            matcher = cron_matcher(cron, settings.tz)
            decorate = huey.periodic_task(matcher, **declaration.options)
        else:
            decorate = huey.task(**declaration.options)
        wrapper = decorate(declaration.func)
        if cron is not None:
            huey.slotted.add(wrapper.task_class)
        catch_up = catch_ups.get(declaration.name) if source == "config" else None
        catch_up = catch_up or declaration.catch_up or CatchUp()
        app.tasks[declaration.name] = TaskInfo(
            declaration.name, declaration, wrapper, cron, source if cron else None, catch_up
        )
    huey.app = weakref.ref(app)  # for a task of this app that calls another task
    tracking.install(huey)
    with _default_lock:
        _built[:] = [ref for ref in _built if ref() is not None] + [weakref.ref(app)]
        _latest[:] = [app]
    return app


# Apps built in this process, oldest first, for plain calls of a task
# (`send_invoice(42)` in a web app); weak, so an app nobody holds goes away,
# but for the latest, which is what a script that built one means.
_built: list[weakref.ref[App]] = []
_latest: list[App] = []
_default_lock = threading.Lock()
_running = threading.local()  # the Huey executing a task in this thread, if any


def app_for(task: str) -> App:
    """The app running this thread's task, if it has `task` (a task calling a task);
    else the latest app built in this process that has it; else one built from the config."""
    running = _running_app()
    if running is not None and task in running.tasks:
        return running
    with _default_lock:
        for ref in reversed(_built):
            app = ref()
            if app is not None and task in app.tasks:
                return app
        app = build_app(load_settings())
        if task not in app.tasks:
            raise UnknownTask(
                f"{task} is not in the modules of {app.settings.path}; add its module to [taskctl] modules"
            )
        return app


def settings() -> Settings:
    """For task modules: the settings of the app running this task; outside a task,
    of the latest app built in this process, else of the config."""
    running = _running_app()
    if running is not None:
        return running.settings
    with _default_lock:
        if _latest:
            return _latest[0].settings
    return load_settings()


def _running_app() -> App | None:
    huey = getattr(_running, "huey", None)
    ref = getattr(huey, "app", None)
    return ref() if ref is not None else None


def cron_matcher(expr: str, tz: tzinfo) -> Any:
    """Huey's periodic check: does this minute (in the schedule's time zone) match
    `expr`? Whether its run was queued already (a restart, a second consumer) is the
    store's to say, by the run's slot, in the enqueue itself."""

    def matches(timestamp: datetime) -> bool:
        # In UTC, then to the zone: wall-clock arithmetic would lose the DST fold.
        minute = timestamp.replace(tzinfo=UTC, second=0, microsecond=0)
        start = (minute - timedelta(seconds=1)).astimezone(tz)
        # Compare instants: Python's == is never true across zones for a time in the fold.
        return next(CronSim(expr, start)).timestamp() == minute.timestamp()

    return matches


def _import_tasks(settings: Settings) -> list[TaskProxy]:
    root = str(settings.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    declarations: list[TaskProxy] = []
    for name in settings.modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise TaskModuleError(
                f"cannot import task module {name!r} (listed in {settings.path}): {type(exc).__name__}: {exc}"
            ) from None
        declarations += [
            value
            for value in vars(module).values()
            if isinstance(value, TaskProxy) and value.func.__module__ == module.__name__
        ]
    return declarations


def _config_schedules(settings: Settings, names: list[str]) -> dict[str, str]:
    resolved = {}
    for key, cron in settings.schedules.items():
        try:
            resolved[resolve_name(key, names)] = cron
        except UnknownTask as exc:
            raise ConfigError(f"{settings.path}: [schedules] {key!r}: {exc}") from None
    return resolved


def _check_runs_without_arguments(declaration: TaskProxy) -> None:
    try:
        inspect.signature(declaration.func).bind()
    except TypeError:
        raise ConfigError(
            f"{declaration.name} has required arguments, so it cannot run on a schedule; "
            "give them defaults or drop its schedule"
        ) from None
