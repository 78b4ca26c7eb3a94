"""Which storage errors a consumer waits out, and which stop it.

A locked database or a Redis that is restarting passes: the consumer retries.
A database it can never write (read-only, corrupt, a full disk, a refused
password) does not, and retrying it only fills the log: the consumer stops
with one line that says what is wrong.
"""

from __future__ import annotations

import sqlite3
import sys

# SQLite primary result codes (the low byte of an extended code) that no retry fixes.
_SQLITE = {
    sqlite3.SQLITE_PERM: "access to the database file is denied",
    sqlite3.SQLITE_READONLY: "the database is read-only: check the permissions of the file, "
    "its -wal and -shm files and its folder",
    sqlite3.SQLITE_CORRUPT: "the database file is corrupt",
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
    sqlite3.SQLITE_NOTADB: "the file is not a SQLite database",
}
_REDIS_REPLIES = {
    "MISCONF": "Redis refuses writes because it cannot save its data (MISCONF): see its log",
    "OOM": "Redis is out of memory (maxmemory): free memory or raise the limit",
}


def persistent(exc: BaseException) -> str | None:
    "What is wrong, if `exc` is a storage error that retrying cannot fix; else None."
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return None if code is None else _SQLITE.get(code & 0xFF)
    redis_errors = sys.modules.get("redis.exceptions")
    if redis_errors is None:  # never imported (the SQLite engine): no error of redis-py's
        return None
    # A worker blocked on the wake-up list hears of the change to a replica first.
    replica = isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("UNBLOCKED") and "replica" in str(exc)
    if replica or isinstance(exc, redis_errors.ReadOnlyError):
        return "Redis refuses writes (a read-only replica): point [taskctl] database at the primary"
    if isinstance(exc, redis_errors.AuthenticationError | redis_errors.NoPermissionError):
        return f"Redis refused this client ({exc}): check the password and the user's permissions"
    if isinstance(exc, redis_errors.ResponseError):
        text = str(exc)
        return next((why for prefix, why in _REDIS_REPLIES.items() if text.startswith(prefix)), None)
    return None
