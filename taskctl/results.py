"""Reading cached results from a web app, without Huey or a consumer in the process.

from taskctl import latest_result

cached = latest_result("reports.stars_by_language")
if cached:
    value, computed_at = cached.value, cached.computed_at
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from taskctl.config import Settings, load_settings, validate_url
from taskctl.errors import DatabaseError


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
    if it has not succeeded yet. The record is found from `database` (a SQLite
    path or a redis:// URL, with `queue`, the config's [taskctl] name), else from
    the config (`config`, $TASKCTL_CONFIG, ./config.toml); a Redis password from the
    variable `password_env` names (the config's, when read from it). Raises
    DatabaseError when the database cannot be read."""
    from taskctl.engines import database_errors, open_record

    if database is None:
        settings = load_settings(config)
    else:
        url = validate_url(Path("latest_result(database=...)"), str(database))
        where = Path(database).resolve() if url is None else Path()
        settings = Settings(Path.cwd(), (), where, url=url, password_env=password_env, name=queue)
    if settings.engine == "sqlite" and not settings.database.is_file():
        raise DatabaseError(f"database {settings.database} does not exist yet; start the consumer first")
    try:
        with database_errors(settings):
            found = open_record(settings, read_only=True).result(task)
    except DatabaseError as exc:
        if "no such table" in str(exc):  # a database made by a consumer that queued nothing yet
            return None
        raise
    if found is None:
        return None
    computed_at = datetime.fromtimestamp(found.computed_at, UTC)
    return LatestResult(found.value, computed_at, found.task, found.job_id, found.duration)
