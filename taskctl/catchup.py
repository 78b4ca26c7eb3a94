"""Missed periodic runs, caught up once, as anacron and systemd's `Persistent=true` do.

A laptop sleeps through 03:00. When a consumer starts, and when it sees the wall
clock jump ahead of its monotonic clock (a suspend and resume), each schedule
whose latest slot fell due while nobody ran it runs that slot once: not once per
slot missed. The run takes the slot's (task, minute) key in the enqueue itself,
so two consumers starting together, or a restart in the same minute, run it
once. It carries its slot as its eta, so `show` says which run it stands for.
Tasks declared with Huey's own `periodic_task` keep Huey's behaviour: no catch-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cronsim import CronSim

from taskctl.errors import ConfigError, UsageError
from taskctl.times import parse_duration

if TYPE_CHECKING:
    from datetime import tzinfo

    from taskctl.app import App, TaskInfo
    from taskctl.catalog import TaskEntry
    from taskctl.engines.base import Record


MODES = ("once", "skip")
JUMP = 30.0  # seconds the wall clock may run ahead of the monotonic one before it counts as a resume


@dataclass(frozen=True)
class CatchUp:
    "What a schedule does about runs missed while no consumer ran: `once` (within `within` seconds) or `skip`."

    mode: str = "once"
    within: float = 86400.0

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "within": self.within}


def parse(mode: Any, within: Any, where: str) -> CatchUp:
    "catch_up and catch_up_within as a config entry or @periodic gives them; `where` names it in errors."
    if mode not in MODES:
        raise ConfigError(f"{where}: catch_up must be one of {', '.join(repr(m) for m in MODES)}, not {mode!r}")
    if not isinstance(within, str | int | float) or isinstance(within, bool):
        raise ConfigError(f'{where}: catch_up_within must be a duration like "1d" or "12h"')
    try:
        seconds = parse_duration(str(within), "catch_up_within")
    except UsageError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return CatchUp(mode, seconds)


def missed_slot(app: App, info: TaskInfo, now: datetime) -> datetime | None:
    "The slot of `info` that a consumer of `app` starting now runs for the runs it missed (see `missed`)."
    return missed(info, app.settings.tz, app.record, now)


def missed(info: TaskInfo | TaskEntry, tz: tzinfo, record: Record, now: datetime) -> datetime | None:
    """The one slot of `info` to run now for the runs it missed, or None: its latest slot
    before this minute (this minute is the scheduler's own), if that is recent enough,
    nobody queued it, and the task ran on this record before it (a new task missed nothing)."""
    if info.catch_up.mode == "skip" or not info.cron:
        return None
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    slot = next(CronSim(info.cron, minute.astimezone(tz), reverse=True)).astimezone(UTC)
    if slot.timestamp() < now.timestamp() - info.catch_up.within:
        return None
    last = record.last_run(info.name)
    if last is None or (last.enqueued_at or 0) >= slot.timestamp():
        return None
    if record.slot_taken(info.name, slot.timestamp()):
        return None
    return slot


def catch_up(app: App, now: datetime | None = None) -> list[str]:
    "Queue one run for each schedule that missed its latest slot; returns the ids of the jobs queued."
    now = now or datetime.now(UTC)
    queued = []
    for info in app.periodic():
        try:
            slot = missed_slot(app, info, now)
            if slot is None:
                continue
            task = info.wrapper.s()
            app.huey.enqueue_slot(task, slot)
            if app.record.job(task.id) is None:
                continue  # another consumer took the slot first, and runs it
        except Exception:
            _logger().exception("Could not catch up the missed runs of %s; its next run is as scheduled.", info.name)
            continue
        queued.append(task.id)
        when = slot.astimezone(app.settings.tz).isoformat(timespec="minutes")
        _logger().warning("%s missed its run of %s: running it now, once.", info.name, when)
    return queued


def _logger() -> Any:
    import logging  # the consumer's alone: `status` and `tasks` read missed slots too

    return logging.getLogger("taskctl.consumer")


class ClockWatch:
    "Tells when the wall clock ran ahead of the monotonic one: the machine was asleep."

    def __init__(self, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.wall, self.monotonic = wall, monotonic
        self._offset = wall() - monotonic()

    def jumped(self) -> bool:
        offset = self.wall() - self.monotonic()
        ahead = offset - self._offset > JUMP
        self._offset = offset
        return ahead
