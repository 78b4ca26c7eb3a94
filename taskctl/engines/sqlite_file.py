"""What a SQLite file holds, read with the standard library alone: nothing yet, a
taskctl database (and the schema steps it lacks), or another program's.

Every command that reads asks this before it opens the record, so it must not
import sqlite-utils; sqlite_schema.py, which writes the steps, does.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# PRAGMA application_id of a taskctl database ("tkct"): only taskctl writes it,
# so another program's database is never mistaken for one by its table names.
APPLICATION_ID = 0x746B6374

# The names of sqlite_schema.py's steps, in order (a test keeps the two the same).
STEPS = (
    "m001_jobs",
    "m002_jobs_by_task",
    "m003_counts",
    "m004_owner",
    "m005_attempts_and_history",
    "m006_consumers_and_meta",
    "m007_periodic_slots",
    "m008_consumer_details",
    "m009_catalog",
    "m010_no_jobs_by_enqueue_time",
)
MIGRATIONS_TABLE = "_sqlite_migrations"  # sqlite-utils' record of the steps applied, per migration set
MIGRATION_SET = "taskctl"


@dataclass(frozen=True)
class DatabaseFile:
    "What a SQLite file holds: nothing yet, a taskctl database (and its pending steps), or another program's."

    kind: Literal["empty", "taskctl", "foreign"]
    tables: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()


def inspect_file(path: Path) -> DatabaseFile:
    """Read what `path` holds without writing a byte to it, nor leaving -wal or -shm
    files beside it. Raises sqlite3.DatabaseError for a file that is not SQLite."""
    header = _header(path)
    if not header:
        return DatabaseFile("empty")
    if not header.startswith(b"SQLite format 3\x00"):
        raise sqlite3.DatabaseError("file is not a database")
    # Even a read-only open of a WAL database leaves -wal and -shm files beside it.
    # Without a -wal file it was closed cleanly, so the file is whole and can be read
    # as immutable; but not when it is taskctl's: an immutable connection ignores
    # the locks, and closing it would drop those of this process's other connections.
    closed_wal = header[18] == 2 and not Path(f"{path}-wal").exists()
    immutable = closed_wal and int.from_bytes(header[68:72], "big") != APPLICATION_ID
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?{'immutable=1' if immutable else 'mode=ro'}", uri=True)
    try:
        return _classify(conn)
    finally:
        conn.close()


_descriptors: dict[tuple[int, int], int] = {}  # (device, inode) -> a descriptor kept open
_descriptors_lock = threading.Lock()


def _header(path: Path) -> bytes:
    """The file's first 100 bytes. Closing any descriptor of a file drops every POSIX
    lock this process holds on it, SQLite's too, so this one stays open for the life
    of the process, as SQLite keeps its own."""
    found = path.stat()
    with _descriptors_lock:
        fd = _descriptors.get((found.st_dev, found.st_ino))
        if fd is None:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            opened = os.fstat(fd)  # the file may have been replaced since the stat
            _descriptors[(opened.st_dev, opened.st_ino)] = fd
    return os.pread(fd, 100, 0)


def up_to_date(conn: sqlite3.Connection) -> bool:
    "Is this a taskctl database with every schema step applied? migrate()'s first question, without sqlite-utils."
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    if app_id != APPLICATION_ID:
        return False
    try:
        return _applied(conn).issuperset(STEPS)
    except sqlite3.OperationalError:  # no such table
        return False


def _applied(conn: sqlite3.Connection) -> set[str]:
    "The steps sqlite-utils recorded as applied (its table must exist)."
    sql = f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = ?"
    return {name for (name,) in conn.execute(sql, (MIGRATION_SET,))}


def _classify(conn: sqlite3.Connection) -> DatabaseFile:
    (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    tables = tuple(sorted(name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")))
    if app_id == 0 and not tables:
        return DatabaseFile("empty")
    applied = _applied(conn) if MIGRATIONS_TABLE in tables else set()
    # Releases before the application id are known by their first step, recorded since the first release.
    if app_id == APPLICATION_ID or (app_id == 0 and STEPS[0] in applied):
        return DatabaseFile("taskctl", tables, tuple(step for step in STEPS if step not in applied))
    return DatabaseFile("foreign", tables)
