"""For task modules that keep their own data in SQLite with sqlite-utils.

Several workers (threads or processes) write the same file: each connection
waits for a lock instead of failing at once, the file is in WAL mode so readers
never wait, and `writing` takes the write lock up front, so two workers
creating the same table cannot race between sqlite-utils' "does it exist?" and
its CREATE TABLE ("table already exists", or "database is locked" when a read
transaction has to become a write one).

    from taskctl.datadb import open_data, writing

    @task()
    def store(rows):
        db = open_data("data.db")
        with writing(db):
            db["events"].insert_all(rows, pk="id", alter=True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database


def open_data(path: str | Path, busy_timeout: float = 10.0) -> Database:
    "A sqlite-utils Database on `path`, in WAL mode, that waits up to `busy_timeout` seconds for a lock."
    db = Database(path)
    db.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    if db.journal_mode != "wal":
        db.enable_wal()
    return db


@contextmanager
def writing(db: Database) -> Iterator[Database]:
    """One write transaction, taken up front (BEGIN IMMEDIATE): what happens inside
    (checking for a table, creating it, inserting) happens as one step for other writers."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
