"""config.toml -> a frozen Settings object.

Every error names the file and the key, so the user knows what to change.
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from taskctl.catchup import CatchUp
from taskctl.catchup import parse as parse_catch_up
from taskctl.errors import ConfigError, UsageError
from taskctl.times import parse_duration

ENV_VAR = "TASKCTL_CONFIG"
DEFAULT_NAME = "config.toml"
WORKER_TYPES = ("thread", "process")
SYNCHRONOUS = ("normal", "full")


@dataclass(frozen=True)
class Retention:
    "How long finished jobs stay in the record; applied hourly by the consumer and by `taskctl purge`."

    keep: float = 14 * 86400
    keep_failed: float = 30 * 86400  # longer: failures are looked at, and retried
    max_per_task: int = 10_000  # finished jobs per task (failed ones are counted apart)
    schedule: str = "7 * * * *"  # when the consumer prunes; "" never


@dataclass(frozen=True)
class Settings:
    path: Path
    modules: tuple[str, ...]
    database: Path  # the SQLite file; with Redis, the URL as a path (unused)
    url: str | None = None  # redis:// or rediss://: the record lives in Redis
    password_env: str | None = None  # the variable holding the Redis password (never stored)
    name: str = "taskctl"
    workers: int = 2
    worker_type: str = "thread"
    synchronous: str = "normal"
    busy_timeout: float = 5.0
    lease: float = 60.0
    poll_interval: float = 1.0
    timezone: str = "local"
    group_readable: bool = False  # the database is made 0640 rather than 0600, for a web server's group
    signing_key_env: str | None = None  # the variable holding the key that signs messages (never stored)
    signing_key_file: Path | None = None  # or a file holding it (0600), made by `taskctl key create`
    schedules: dict[str, str] = field(default_factory=dict)
    catch_up: dict[str, CatchUp] = field(default_factory=dict)  # per [schedules] entry that says
    retention: Retention = field(default_factory=Retention)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def engine(self) -> str:
        return "redis" if self.url else "sqlite"

    @property
    def location(self) -> str:
        "Where the record is, as messages name it (a URL without its password)."
        return redact(self.url) if self.url else str(self.database)

    @property
    def tz(self) -> tzinfo:
        "The zone of [schedules] and of displayed times."
        return local_zone() if self.timezone == "local" else ZoneInfo(self.timezone)

    def resolve(self, path: str | Path) -> Path:
        "A path from the config, relative to the config file's folder."
        return (self.root / Path(path).expanduser()).resolve()

    def section(self, name: str) -> dict[str, Any]:
        "A free-form table of the config, for task modules (`[github]`)."
        return dict(self.sections.get(name, {}))


def local_zone() -> tzinfo:
    """The machine's zone with its DST rules ($TZ, else /etc/localtime); a fixed
    offset only as a last resort, since it would put cron runs an hour off
    across a DST change."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        with open("/etc/localtime", "rb") as zone_file:
            return ZoneInfo.from_file(zone_file, key="localtime")
    except (OSError, ValueError):
        return datetime.now().astimezone().tzinfo or UTC


def find_config(explicit: str | Path | None = None) -> Path:
    "--config, else $TASKCTL_CONFIG, else ./config.toml."
    chosen = explicit or os.environ.get(ENV_VAR) or DEFAULT_NAME
    return Path(chosen).expanduser().resolve()


def load_settings(explicit: str | Path | None = None) -> Settings:
    path = find_config(explicit)
    if path.is_dir():
        raise ConfigError(f"config {path} is a directory; pass the config.toml file with --config")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}; pass --config PATH or set ${ENV_VAR}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    return _parse(path, raw)


def _parse(path: Path, raw: dict[str, Any]) -> Settings:
    table = raw.get("taskctl")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: missing the [taskctl] table (with modules and database)")
    check = _Checker(path, table)
    modules = check.required("modules", list)
    if not modules:
        raise ConfigError(f"{path}: [taskctl] modules must not be empty: list the modules that hold your tasks")
    if not all(isinstance(m, str) and m for m in modules):
        raise ConfigError(f"{path}: [taskctl] modules must be a list of module names")
    database = check.required("database", str)
    known = {
        "modules",
        "database",
        "name",
        "workers",
        "worker_type",
        "synchronous",
        "busy_timeout",
        "lease",
        "poll_interval",
        "timezone",
        "password_env",
        "group_readable",
        "signing_key_env",
        "signing_key_file",
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting [taskctl] {unknown[0]}; known: {', '.join(sorted(known))}")
    timezone = check.optional("timezone", str, "local")
    if timezone != "local":
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ConfigError(
                f"{path}: [taskctl] timezone {timezone!r} is not a known time zone "
                "(use 'local' or a name like 'Europe/Paris')"
            ) from None
    url = validate_url(path, database)
    schedules, catch_up = _schedules(path, raw.get("schedules", {}))
    password_env = check.optional("password_env", str, None)
    key_env, key_file = check.optional("signing_key_env", str, None), check.optional("signing_key_file", str, None)
    if key_env and key_file:
        raise ConfigError(f"{path}: [taskctl] signing_key_env and signing_key_file: set one, not both")
    if password_env and not url:
        raise ConfigError(f"{path}: [taskctl] password_env is for a redis:// database")
    settings = Settings(
        path=path,
        modules=tuple(modules),
        database=(path.parent / Path(database).expanduser()).resolve(),
        url=url,
        password_env=password_env,
        name=check.optional("name", str, "taskctl"),
        workers=check.positive("workers", 2, integer=True),
        worker_type=check.choice("worker_type", WORKER_TYPES),
        synchronous=check.choice("synchronous", SYNCHRONOUS),
        busy_timeout=check.positive("busy_timeout", 5.0),
        lease=check.positive("lease", 60.0),
        poll_interval=check.positive("poll_interval", 1.0),
        timezone=timezone,
        group_readable=check.optional("group_readable", bool, False),
        signing_key_env=key_env or None,
        signing_key_file=(path.parent / Path(key_file).expanduser()).resolve() if key_file else None,
        schedules=schedules,
        catch_up=catch_up,
        retention=_retention(path, raw.get("retention", {})),
        sections={k: v for k, v in raw.items() if k not in ("taskctl", "schedules", "retention")},
    )
    return settings


REDIS_SCHEMES = ("redis", "rediss")


def validate_url(path: Path, database: str) -> str | None:
    """A redis:// URL, checked whole; None for a SQLite path. Any other scheme, or a
    Redis URL with a typo, is an error rather than a folder with a SQLite file in it."""
    scheme, sep, _ = database.partition("://")
    if not sep:
        if database.lower().startswith(("redis:", "rediss:")):
            raise ConfigError(f"{path}: [taskctl] database {database!r} lacks '//': write redis://host:6379/0")
        return None
    if scheme.lower() not in REDIS_SCHEMES:
        raise ConfigError(
            f"{path}: [taskctl] database {redact(database)!r}: unknown scheme {scheme!r}; "
            "use a SQLite file path, or redis://host:6379/0 (rediss:// for TLS)"
        )
    url = scheme.lower() + database[len(scheme) :]
    parts = urlsplit(url)
    if parts.password or "password=" in parts.query.lower():
        raise ConfigError(
            f"{path}: [taskctl] database has a password in it; keep it out of the config: "
            'set password_env = "REDIS_PASSWORD" and put the password in that variable'
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(f"{path}: [taskctl] database {url!r}: the port must be a number, like :6379") from None
    if not parts.hostname:
        raise ConfigError(f"{path}: [taskctl] database {url!r} names no host; write redis://host:6379/0")
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ConfigError(f"{path}: [taskctl] database {url!r}: the database after the host is a number, like /0")
    if importlib.util.find_spec("redis") is None:  # an extra: SQLite users do not load it (~150 ms)
        raise ConfigError(
            f"{path}: [taskctl] database {url!r} is Redis, and the redis package is not installed: "
            "pip install 'taskctl[redis]'"
        )
    return url


def redact(url: str) -> str:
    "A URL as it may be shown: without a password."
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else netloc
    return f"{scheme}{sep}{netloc}{slash}{tail}"


def _schedules(path: Path, table: Any) -> tuple[dict[str, str], dict[str, CatchUp]]:
    """task = "cron", or task = { cron = "...", catch_up = "once" | "skip", catch_up_within = "1d" }."""
    if not isinstance(table, dict):
        raise ConfigError(f'{path}: [schedules] must be a table of task = "cron expression"')
    crons, catch_ups = {}, {}
    for name, entry in table.items():
        expr = entry.get("cron") if isinstance(entry, dict) else entry
        if not isinstance(expr, str):
            raise ConfigError(
                f'{path}: [schedules] {name!r} must be a cron expression string, or a table with cron = "..."'
            )
        problem = cron_problem(expr)
        if problem:
            raise ConfigError(f"{path}: [schedules] {name!r} = {expr!r} is not a valid cron expression: {problem}")
        crons[name] = expr
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"cron", "catch_up", "catch_up_within"})
            if unknown:
                raise ConfigError(
                    f"{path}: [schedules] {name!r}: unknown key {unknown[0]!r}; known: cron, catch_up, catch_up_within"
                )
            where = f"{path}: [schedules] {name!r}"
            catch_ups[name] = parse_catch_up(entry.get("catch_up", "once"), entry.get("catch_up_within", "1d"), where)
    return crons, catch_ups


def _retention(path: Path, table: Any) -> Retention:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [retention] must be a table (keep, keep_failed, max_per_task, schedule)")
    default = Retention()
    known = ("keep", "keep_failed", "max_per_task", "schedule")
    for key in table:
        if key not in known:
            raise ConfigError(f"{path}: unknown setting [retention] {key}; known: {', '.join(known)}")

    def duration(key: str, fallback: float) -> float:
        value = table.get(key)
        if value is None:
            return fallback
        # A bare number is refused: `keep = 14` meaning 14 seconds would empty the record.
        if not isinstance(value, str) or not value.strip()[-1:].isalpha():
            raise ConfigError(f'{path}: [retention] {key} must be a duration with a unit, like "14d" or "12h"')
        try:
            seconds = parse_duration(str(value), f"[retention] {key}")
        except UsageError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if not seconds > 0:
            raise ConfigError(f'{path}: [retention] {key} must be more than 0, like "14d"')
        return seconds

    cap = table.get("max_per_task", default.max_per_task)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ConfigError(f"{path}: [retention] max_per_task must be a positive integer, got {cap!r}")
    schedule = table.get("schedule", default.schedule)
    if not isinstance(schedule, str) or (schedule and cron_problem(schedule)):
        raise ConfigError(
            f'{path}: [retention] schedule {schedule!r} must be a cron expression, or "" to prune only by hand'
        )
    return Retention(duration("keep", default.keep), duration("keep_failed", default.keep_failed), cap, schedule)


def cron_problem(expr: str) -> str | None:
    "Why `expr` is not a valid five-field cron expression, or None if it is."
    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError as exc:
        return str(exc) or "unparseable"
    return None


@dataclass
class _Checker:
    path: Path
    table: dict[str, Any]

    def _fail(self, key: str, want: str) -> ConfigError:
        return ConfigError(f"{self.path}: [taskctl] {key} must be {want}, got {self.table[key]!r}")

    def required(self, key: str, kind: type) -> Any:
        if key not in self.table:
            raise ConfigError(f"{self.path}: [taskctl] {key} is missing")
        if not isinstance(self.table[key], kind):
            raise self._fail(key, f"a {kind.__name__}")
        return self.table[key]

    def optional(self, key: str, kind: type, default: Any) -> Any:
        if key not in self.table:
            return default
        return self.required(key, kind)

    def positive(self, key: str, default: float, integer: bool = False) -> Any:
        value = self.table.get(key, default)
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
            raise self._fail(key, "a positive " + ("integer" if integer else "number"))
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.table.get(key, choices[0])
        if value not in choices:
            raise self._fail(key, " or ".join(repr(c) for c in choices))
        return value
