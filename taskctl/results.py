"""Reading cached results from a web app, without Huey or a consumer in the process.

from taskctl import latest_result

cached = latest_result("reports.stars_by_language")
if cached:
    value, computed_at = cached.value, cached.computed_at
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from taskctl.config import Settings, find_config, load_settings, validate_url
from taskctl.engines.base import Record
from taskctl.errors import DatabaseError, NoDatabase
from taskctl.names import resolve_name


class LatestResult(NamedTuple):
    value: Any
    computed_at: datetime  # aware, in UTC
    task: str
    job_id: str
    duration: float | None


CachedResult = LatestResult  # the name of releases before 2026-11-30


def latest_result(
    task: str,
    *,
    config: str | Path | None = None,
    database: str | Path | None = None,
    queue: str = "taskctl",
    password_env: str | None = None,
) -> LatestResult | None:
    """The latest successful result of `task` (full name or unique suffix), or None
    if it has not succeeded yet (no consumer has run yet, so there is no database,
    is one case of that). The record is found from `database` (a SQLite path or a
    redis:// URL, with `queue`, the config's [taskctl] name), else from the config
    (`config`, $TASKCTL_CONFIG, ./config.toml), read once per file until it changes;
    a Redis password from the variable `password_env` names (the config's, when read
    from it).

    Raises UnknownTask for a name that no consumer serves and no result has (a
    typo: the message has the close matches), ForeignDatabase when the database is
    not taskctl's, ConfigError when the config is missing or invalid, and
    DatabaseError when the database cannot be read. All are TaskctlError."""
    from taskctl.engines import database_errors

    settings = _settings(config) if database is None else _direct(database, queue, password_env)
    try:
        record = _record(settings)
        with database_errors(settings):
            found = record.result(task)
            known = [] if found else record.known_tasks()
    except NoDatabase:
        return None
    except DatabaseError as exc:
        if "no such table" in str(exc):  # a database made by a consumer that queued nothing yet
            return None
        raise
    if found is None:
        if known:  # else no consumer of this release has registered its tasks: nothing to tell a typo by
            resolve_name(task, known)
        return None
    computed_at = datetime.fromtimestamp(found.computed_at, UTC)
    return LatestResult(found.value, computed_at, found.task, found.job_id, found.duration)


_configs: dict[Path, tuple[int, Settings]] = {}  # config path -> (its mtime, its settings)
_opened = threading.local()  # each thread's open records, by where they are


def _settings(config: str | Path | None) -> Settings:
    path = find_config(config)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return load_settings(path)  # raises the ConfigError that says what is wrong
    cached = _configs.get(path)
    if cached is None or cached[0] != mtime:
        cached = _configs[path] = (mtime, load_settings(path))
    return cached[1]


def _direct(database: str | Path, queue: str, password_env: str | None) -> Settings:
    url = validate_url(Path("latest_result(database=...)"), str(database))
    where = Path(database).resolve() if url is None else Path()
    return Settings(Path.cwd(), (), where, url=url, password_env=password_env, name=queue)


def _record(settings: Settings) -> Record:
    """This thread's record of `settings`, opened read-only once; a SQLite file that
    was replaced since (a new inode) is opened again."""
    from taskctl.engines import open_record

    records: dict[tuple[int, str, str, str | None], tuple[int, Record]] = _opened.__dict__.setdefault("records", {})
    # By process too: a connection must not cross a fork (a web server that preloads its app).
    key = (os.getpid(), settings.location, settings.name, settings.password_env)
    inode = 0
    if settings.engine == "sqlite":
        try:
            inode = os.stat(settings.database).st_ino
        except FileNotFoundError:
            raise NoDatabase(f"no database at {settings.database} yet") from None
    cached = records.get(key)
    if cached is None or cached[0] != inode:
        cached = records[key] = (inode, open_record(settings, read_only=True))
    return cached[1]
