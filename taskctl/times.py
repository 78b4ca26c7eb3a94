"""Times as taskctl stores and shows them: epoch seconds inside, ISO 8601 outside."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from taskctl.errors import UsageError

MAX_AHEAD = 10 * 365 * 86400  # further than this is a typo, not a plan
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def to_epoch(moment: datetime) -> float:
    "Huey's naive datetimes are UTC (the app is built with utc=True)."
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(epoch: float | None, tz: tzinfo | None = None) -> str | None:
    "ISO 8601 with offset, in `tz` (None: local time), to the second."
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).astimezone(tz).isoformat(timespec="seconds")


def parse_duration(text: str, option: str = "--delay", unit_required: bool = False) -> float:
    "'90s', '10m', '2h', '1h30m', '1.5d' or plain seconds (unless `unit_required`) -> seconds."
    cleaned = text.strip().lower()
    if unit_required and not cleaned[-1:].isalpha():
        raise UsageError(f"{option} {text!r} needs a unit, like 7d, 12h or 30m (a bare number is ambiguous)")
    negative, body = cleaned.startswith("-"), cleaned.lstrip("+-")
    try:
        seconds = float(body)
    except ValueError:
        parts = _DURATION.findall(body)
        if not parts or "".join(n + u for n, u in parts) != body:
            raise UsageError(
                f"{option} {text!r} is not a duration; use a number of seconds or units like 90s, 10m, 2h, 1h30m, 7d"
            ) from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if negative or seconds != seconds:
        raise UsageError(f"{option} {text!r} must not be negative; use e.g. 90s or 10m")
    if seconds > MAX_AHEAD:
        raise UsageError(f"{option} {text!r} is more than 10 years; use e.g. 90s, 10m or 7d")
    return seconds


def parse_at(text: str, tz: tzinfo | None = None, now: datetime | None = None) -> datetime:
    "An ISO 8601 time in the future; without an offset it is in `tz` (None: local)."
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not an ISO 8601 time; use e.g. 2026-12-01T09:30 or 2026-12-01T09:30:00+01:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz) if tz else moment.astimezone()
    now = now or datetime.now(UTC)
    if moment > now + timedelta(seconds=MAX_AHEAD):
        raise UsageError(f"--at {text!r} is more than 10 years away; check the date")
    if moment < now - timedelta(seconds=1):
        raise UsageError(
            f"--at {text!r} is in the past (now is {now.astimezone(tz).isoformat(timespec='seconds')}); "
            "give a future time, or leave --at out to run now"
        )
    return moment


def human_duration(seconds: float | None) -> str:
    "A short human duration: 850ms, 12.3s, 4m05s, 3h02m, 2d04h."
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def zone_name(tz: tzinfo) -> str:
    "A zone as people read it: 'Europe/Paris (UTC+01:00)'."
    now = datetime.now(tz)
    offset = now.strftime("%z")
    label = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    key = getattr(tz, "key", None)
    return f"{key} ({label})" if key and key != "localtime" else f"local time ({label})"
