"""Choosing an engine from the settings: a SQLite file (the default) or a redis:// URL.

Each engine has a store (Huey's storage and every state change of a job) and
a record (the read side); base.py says what both must do. This is the only
module that knows which engines exist.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taskctl.config import Settings
from taskctl.engines.base import Record
from taskctl.errors import DatabaseError


def store_options(settings: Settings, create: bool = True) -> tuple[type, dict[str, Any]]:
    "The Huey storage class of the configured engine, and its arguments."
    if settings.engine == "redis":
        from taskctl.engines.redis_store import RedisJobStorage

        return RedisJobStorage, {"url": settings.url, "password": redis_password(settings), "lease": settings.lease}
    from taskctl.engines.sqlite_store import JobStorage

    path = settings.database
    check_sqlite_file(path)
    exists = path.exists()
    if not exists and create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder for database {path}: {exc}") from None
    return JobStorage, {
        "filename": str(path),
        "timeout": settings.busy_timeout,
        "synchronous": settings.synchronous,
        "lease": settings.lease,
        "create_tables": exists or create,  # no file is made until something is written
    }


def open_record(settings: Settings, read_only: bool = False) -> Record:
    "The read side, without Huey. A missing SQLite database is an error, never created."
    if settings.engine == "redis":
        from taskctl.engines.redis_record import RedisRecord

        return RedisRecord(settings.url or "", settings.name, password=redis_password(settings))
    from taskctl.engines.sqlite_record import SqliteRecord

    path = settings.database
    refuse_network_filesystem(path)
    if not path.exists():
        raise DatabaseError(
            f"no database at {path} yet: nothing has been queued there; "
            "start `taskctl run-consumer` or queue a job, or fix [taskctl] database if it is a typo"
        )
    with database_errors(settings):
        return SqliteRecord(path, settings.name, settings.busy_timeout, read_only=read_only)


def redis_password(settings: Settings) -> str | None:
    if not settings.password_env:
        return None
    password = os.environ.get(settings.password_env)
    if password is None:
        raise DatabaseError(
            f"[taskctl] password_env names ${settings.password_env}, which is not set; "
            "export it (a service reads it from its environment file)"
        )
    return password


@contextmanager
def database_errors(settings: Settings | None) -> Iterator[None]:
    """An engine's own errors (SQLite's, redis-py's), as one line that says what to do;
    with no settings loaded yet, as the error itself."""
    try:
        yield
    except sqlite3.Error as exc:
        if settings is None:
            raise DatabaseError(f"database error: {exc}") from None
        raise sqlite_error(settings.database, exc, settings.busy_timeout) from None
    except Exception as exc:
        if settings is None or not type(exc).__module__.startswith("redis"):
            raise
        raise DatabaseError(redis_error(settings, exc)) from None


def redis_error(settings: Settings, exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "auth" in text.lower() or "password" in text.lower():
        return f"Redis at {settings.location} refused taskctl: {text}; check [taskctl] password_env"
    return f"cannot use Redis at {settings.location}: {text}; is redis-server running there?"


def sqlite_error(path: Path, exc: sqlite3.Error, busy_timeout: float) -> DatabaseError:
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


def refuse_network_filesystem(path: Path) -> None:
    from taskctl.engines.filesystems import network_filesystem

    if kind := network_filesystem(path):
        raise DatabaseError(
            f"database {path} is on a network filesystem ({kind}), where SQLite's locking fails and the "
            "database can be corrupted; keep it on a local disk, or use Redis to share jobs between machines"
        )


def check_sqlite_file(path: Path) -> None:
    "A directory, or another program's SQLite database: taskctl must not add its tables to it."
    if path.is_dir():
        raise DatabaseError(f"database {path} is a directory; set [taskctl] database to a file path")
    refuse_network_filesystem(path)
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise sqlite_error(path, exc, 0) from None
    if tables and not tables & {"taskctl_jobs", "task", "kv", "schedule"}:
        shown = ", ".join(sorted(tables)[:5])
        raise DatabaseError(
            f"{path} is another program's SQLite database (tables: {shown}); left untouched; "
            "point [taskctl] database at a file of its own"
        )
