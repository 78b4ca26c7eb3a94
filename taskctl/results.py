"""Reading cached results from a web app, without Huey or a consumer in the process.

from taskctl import latest_result

cached = latest_result("reports.stars_by_language")
if cached:
    value, computed_at = cached.value, cached.computed_at
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from taskctl.config import load_settings
from taskctl.errors import DatabaseError


class CachedResult(NamedTuple):
    value: Any
    computed_at: datetime
    task: str
    job_id: str
    duration: float | None


def latest_result(
    task: str,
    *,
    config: str | Path | None = None,
    database: str | Path | None = None,
    queue: str = "taskctl",
) -> CachedResult | None:
    """The latest successful result of `task` (full name or unique suffix), or None
    if it has not succeeded yet. The database comes from `database` (with
    `queue`, the config's [taskctl] name), else from the config (`config`,
    $TASKCTL_CONFIG, ./config.toml)."""
    from taskctl.registry import SqliteRegistry

    if database is not None:
        path = Path(database)
    else:
        settings = load_settings(config)
        path, queue = settings.database, settings.name
    if not path.is_file():
        raise DatabaseError(f"database {path} does not exist yet; start the consumer first")
    try:
        row = SqliteRegistry.read_only(path, queue).result(task)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    if row is None:
        return None
    computed_at = datetime.fromtimestamp(row["computed_at_epoch"], UTC)
    return CachedResult(row["value"], computed_at, row["task"], row["job_id"], row["duration"])
