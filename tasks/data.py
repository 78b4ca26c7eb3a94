"""The data database the example tasks write to ([data] database in config.toml)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlite_utils import Database

from taskctl import settings


def data_db() -> Database:
    config = settings()
    path = config.resolve(config.section("data").get("database", "data.db"))
    db = Database(path)
    db.enable_wal()
    return db


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
