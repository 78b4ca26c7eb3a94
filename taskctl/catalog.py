"""What a consumer runs: its tasks, their schedules and options, recorded when it starts.

`status` and `tasks` read this from the record instead of building the app, so
they import neither Huey nor the task modules (nor what those import); and they
show what the running consumer does, which is not what config.toml says once
someone edits it. To tell the two apart, the consumer records the settings that
make its tasks and a checksum of each task module's source; a reader reads the
same things on disk (a few small files) and names what differs. The checksum is
CRC-32 and the size, which tell an edit from no edit (nothing here needs a
cryptographic hash, and hashlib costs a command ~5 ms to import).

Which catalog a reader shows (`current`):
  - the recorded one, when the disk still says the same (whoever runs now or next runs it);
  - the recorded one with what differs, when the disk changed and a consumer is alive:
    it runs the recorded one until restarted;
  - the one built from disk, when nothing was recorded (no consumer has started yet),
    or the disk changed and no consumer is alive (the next one runs what is on disk).
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cronsim import CronSim

from taskctl.catchup import CatchUp

if TYPE_CHECKING:
    from taskctl.app import App, TaskInfo
    from taskctl.config import Settings
    from taskctl.engines.base import Record

FORMAT = 1  # a catalog of another format (another taskctl release) is not read: the disk is


class Scheduled(Protocol):
    "A task with a schedule (a TaskEntry, or a built app's TaskInfo)."

    @property
    def name(self) -> str: ...
    def next_run(self, tz: tzinfo, after: datetime) -> datetime | None: ...


class Slots(Protocol):
    "What knows whether a periodic run was queued (a record, or a store)."

    def slot_taken(self, task: str, at: float) -> bool: ...


@dataclass(frozen=True)
class TaskEntry:
    "A task as the consumer registered it: what listings show, and what `status` needs to know of it."

    name: str
    cron: str | None = None
    schedule_source: str | None = None  # "config" or "code"
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    priority: int | None = None
    catch_up: CatchUp = field(default_factory=CatchUp)

    @property
    def kind(self) -> str:
        return "periodic" if self.cron else "on-demand"

    def next_run(self, tz: tzinfo, after: datetime) -> datetime | None:
        if not self.cron:
            return None
        return next(CronSim(self.cron, after.astimezone(tz).replace(microsecond=0)))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "cron": self.cron, "schedule_source": self.schedule_source, "retries": self.retries,
            "retry_delay": self.retry_delay, "timeout": self.timeout, "priority": self.priority,
            "catch_up": self.catch_up.to_json(),
        }  # fmt: skip

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TaskEntry:
        catch_up = doc.get("catch_up") or {}
        return cls(
            doc["name"], doc.get("cron"), doc.get("schedule_source"), int(doc.get("retries") or 0),
            float(doc.get("retry_delay") or 0), doc.get("timeout"), doc.get("priority"),
            CatchUp(catch_up.get("mode", "once"), float(catch_up.get("within", 86400.0))),
        )  # fmt: skip


@dataclass(frozen=True)
class Sources:
    "What a consumer's tasks were made from: the settings that shape them, and a checksum of each module's source."

    settings: str  # shaping_settings()
    files: dict[str, tuple[str, str] | None]  # module -> (its source's path, checksum()); None: it has no file


@dataclass(frozen=True)
class Catalog:
    "The tasks a consumer runs (or, from disk, would run), and where they came from."

    tasks: tuple[TaskEntry, ...]
    origin: str  # "consumer": recorded by one as it started; "disk": built from config.toml and the modules now
    sources: Sources
    recorded_at: float | None = None
    changed: tuple[str, ...] = ()  # what on disk differs from what the consumer runs (empty: nothing)
    why: str = ""  # for origin "disk": why the record's catalog is not shown

    def periodic(self) -> list[TaskEntry]:
        return [entry for entry in self.tasks if entry.cron]

    def names(self) -> list[str]:
        return [entry.name for entry in self.tasks]

    def timeouts(self) -> dict[str, float | None]:
        return {entry.name: entry.timeout for entry in self.tasks}

    def notice(self) -> str | None:
        "One line for people, when what they read is not simply what runs."
        if self.changed:
            return (
                f"{', '.join(self.changed)} changed since the consumer started: it runs the tasks shown; "
                "restart the consumer to apply"
            )
        return self.why or None

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        "What `tasks --json` and `status --json` say of it."
        from taskctl.model import iso

        return {
            "origin": self.origin,
            "recorded_at": iso(self.recorded_at, tz),
            "changed": list(self.changed),
            "notice": self.notice(),
        }

    def to_text(self) -> str:
        "As the record keeps it."
        return json.dumps(
            {
                "format": FORMAT,
                "recorded_at": self.recorded_at,
                "settings": self.sources.settings,
                "files": self.sources.files,
                "tasks": [entry.to_json() for entry in self.tasks],
            }
        )


def from_text(text: str) -> Catalog | None:
    "A recorded catalog; None for one this release cannot read (another format, or damaged)."
    try:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            return None
        tasks = tuple(TaskEntry.from_json(entry) for entry in doc["tasks"])
        files = {module: _file_entry(entry) for module, entry in doc["files"].items()}
        return Catalog(tasks, "consumer", Sources(doc["settings"], files), doc.get("recorded_at"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _file_entry(entry: Any) -> tuple[str, str] | None:
    if entry is None:
        return None
    if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)):
        raise ValueError(f"not a [path, checksum] pair: {entry!r}")
    return entry[0], entry[1]


def of_app(app: App, origin: str = "consumer") -> Catalog:
    "The catalog of a built app: what a consumer records as it starts."
    tasks = tuple(_entry(info) for info in app.tasks.values())
    # The consumer reads a module's source just after importing it: an edit in between
    # (milliseconds) would go unnoticed until the next restart.
    paths = {name: getattr(sys.modules.get(name), "__file__", None) for name in app.settings.modules}
    files = {name: (path, checksum(path)) if path else None for name, path in paths.items()}
    return Catalog(tasks, origin, Sources(shaping_settings(app.settings), files), time.time())


def _entry(info: TaskInfo) -> TaskEntry:
    task_class = info.wrapper.task_class
    retry_delay = float(task_class.default_retry_delay or 0)
    return TaskEntry(
        info.name, info.cron, info.schedule_source, info.retries, retry_delay, info.timeout,
        task_class.default_priority, info.catch_up,
    )  # fmt: skip


def shaping_settings(settings: Settings) -> str:
    "The settings that shape the tasks a consumer runs, as canonical JSON: modules, schedules, zone, retention's."
    shaping = {
        "modules": list(settings.modules),
        "schedules": settings.schedules,
        "catch_up": {name: c.to_json() for name, c in sorted(settings.catch_up.items())},
        "timezone": settings.timezone,
        "retention": settings.retention.schedule,
    }
    return json.dumps(shaping, sort_keys=True)


def checksum(path: str) -> str:
    "A file's size and CRC-32, or 'missing'."
    try:
        source = Path(path).read_bytes()
    except OSError:
        return "missing"
    return f"{len(source)}:{zlib.crc32(source):08x}"


def changes(recorded: Sources, settings: Settings) -> list[str]:
    "What on disk differs from what a consumer recorded: the config's file name, and each changed task module."
    found = []
    if recorded.settings != shaping_settings(settings) or set(recorded.files) != set(settings.modules):
        found.append(settings.path.name)
    for module, entry in sorted(recorded.files.items()):
        if entry is not None and module in settings.modules and checksum(entry[0]) != entry[1]:
            found.append(_shown(entry[0], settings))
    return found


def _shown(path: str, settings: Settings) -> str:
    try:
        return str(Path(path).relative_to(settings.root))
    except ValueError:
        return path


def current(
    settings: Settings, record: Record | None, consumer_alive: Callable[[], bool], build: Callable[[], App]
) -> Catalog:
    """The catalog to show (see the module's docstring). `build` makes the app from disk,
    only when needed: it imports Huey and every task module."""
    recorded = from_text(text) if record is not None and (text := record.catalog()) else None
    if recorded is None:
        why = "no consumer has run on this record yet: tasks as config.toml and the task modules declare them"
        return _from_disk(build, why)
    changed = changes(recorded.sources, settings)
    if not changed:
        return recorded
    if consumer_alive():
        return Catalog(recorded.tasks, recorded.origin, recorded.sources, recorded.recorded_at, tuple(changed))
    why = f"no consumer is running, and {', '.join(changed)} changed since the last one started: tasks as on disk now"
    return _from_disk(build, why)


def _from_disk(build: Callable[[], App], why: str) -> Catalog:
    built = of_app(build(), origin="disk")
    return Catalog(built.tasks, "disk", built.sources, None, (), why)


def next_run(entry: Scheduled, tz: tzinfo, slots: Slots | None, now: datetime | None = None) -> datetime | None:
    """When a periodic task is next queued. A minute that matches is still ahead
    while it lasts, until a run has been queued in it (None for `slots`: no record yet)."""
    now = now or datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0)
    ran = slots is not None and slots.slot_taken(entry.name, minute.timestamp())
    return entry.next_run(tz, now if ran else minute - timedelta(seconds=1))
