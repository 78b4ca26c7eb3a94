"""The data database the example tasks write to ([data] database in config.toml)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlite_utils import Database

from taskctl import settings
from taskctl.datadb import open_data, writing

__all__ = ["data_db", "utcnow", "writing"]


def data_db() -> Database:
    config = settings()
    return open_data(config.resolve(config.section("data").get("database", "data.db")))


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
