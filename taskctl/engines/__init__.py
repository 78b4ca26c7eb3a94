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
from typing import TYPE_CHECKING, Any

from taskctl.config import Settings
from taskctl.engines.base import Record
from taskctl.errors import DatabaseError, ForeignDatabase, NoDatabase, SchemaOutdated
from taskctl.private_files import GROUP_READABLE, PRIVATE

if TYPE_CHECKING:
    from taskctl.engines.sqlite_file import DatabaseFile


def store_options(settings: Settings, create: bool = True) -> tuple[type, dict[str, Any]]:
    """The Huey storage class of the configured engine, and its arguments. With
    `create=False` (commands that only read) nothing is written: a missing SQLite
    database stays missing, and one of an older schema is refused, not upgraded."""
    if settings.engine == "redis":
        from taskctl.engines.redis_store import RedisJobStorage

        return RedisJobStorage, {"url": settings.url, "password": redis_password(settings), "lease": settings.lease}
    from taskctl.engines.sqlite_store import JobStorage

    path = settings.database
    found = check_sqlite_file(path)
    if found is None and create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder for database {path}: {exc}") from None
    if not create and found is not None:
        _refuse_pending(path, found)
    return JobStorage, {
        "filename": str(path),
        "timeout": settings.busy_timeout,
        "synchronous": settings.synchronous,
        "lease": settings.lease,
        # The longest an idle worker waits before looking again: a process worker sees a
        # stop only then (a thread worker is woken at once).
        "read_timeout": min(settings.poll_interval, 1.0),
        "file_mode": GROUP_READABLE if settings.group_readable else PRIVATE,
        "create_tables": create,  # no file is made, and no schema changed, until something is written
    }


def open_record(settings: Settings, read_only: bool = False) -> Record:
    "The read side, without Huey. A missing SQLite database is an error, never created."
    if settings.engine == "redis":
        from taskctl.engines.redis_record import RedisRecord

        return RedisRecord(settings.url or "", settings.name, password=redis_password(settings))
    from taskctl.engines.sqlite_record import SqliteRecord

    require_database(settings)
    with database_errors(settings):
        return SqliteRecord(settings.database, settings.name, settings.busy_timeout, read_only=read_only)


def refuse_outdated(settings: Settings) -> None:
    """For commands that only read: a SQLite database of an earlier schema is refused
    (they never upgrade it); a missing one is left for open_record to say so."""
    if settings.engine != "sqlite":
        return
    found = check_sqlite_file(settings.database)
    if found is not None:
        _refuse_pending(settings.database, found)


def _refuse_pending(path: Path, found: DatabaseFile) -> None:
    if found.pending:
        raise SchemaOutdated(
            f"database {path} was written by an earlier taskctl (its schema lacks {found.pending[0]}); "
            "commands that only read never change it: run `taskctl upgrade` (or start `taskctl run-consumer`) first"
        )


def require_database(settings: Settings) -> None:
    "Raises NoDatabase when nothing has been written at the configured SQLite database yet."
    if settings.engine != "sqlite":
        return
    found = check_sqlite_file(settings.database)
    if found is None or found.kind == "empty":
        raise NoDatabase(
            f"no database at {settings.database} yet: nothing has been queued there; "
            "start `taskctl run-consumer` or queue a job, or fix [taskctl] database if it is a typo"
        )


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
        return ForeignDatabase(
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


def check_sqlite_file(path: Path) -> DatabaseFile | None:
    """What the SQLite file at `path` holds (None: no file yet), read without a write.
    A directory, a database on a network filesystem, a file that is not SQLite, or
    another program's database is refused: taskctl must not add its tables to it."""
    if path.is_dir():
        raise DatabaseError(f"database {path} is a directory; set [taskctl] database to a file path")
    refuse_network_filesystem(path)
    try:
        from taskctl.engines.sqlite_file import inspect_file

        found = inspect_file(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatabaseError(f"cannot read database {path}: {exc}") from None
    except sqlite3.Error as exc:
        raise sqlite_error(path, exc, 0) from None
    if found.kind == "foreign":
        shown = ", ".join(found.tables[:5]) or "no tables"
        raise ForeignDatabase(
            f"{path} is another program's SQLite database (tables: {shown}); left untouched; "
            "point [taskctl] database at a file of its own"
        )
    return found
