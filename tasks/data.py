"""The data database the example tasks write to ([data] database in config.toml)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlite_utils import Database

from taskctl import settings


def data_db() -> Database:
    config = settings()
    path = config.resolve(config.section("data").get("database", "data.db"))
    db = Database(path)
    db.conn.execute("pragma busy_timeout = 10000")
    if db.journal_mode != "wal":
        db.enable_wal()
    return db


@contextmanager
def writing(db: Database) -> Iterator[Database]:
    """One write transaction, taken up front: two workers creating the same
    table at once would otherwise race between 'does it exist' and 'create'."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
