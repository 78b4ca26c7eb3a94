"""Every 15 minutes: precompute stars by language, so a web page only reads the cached result."""

from __future__ import annotations

from typing import Any

from taskctl import task
from tasks.data import data_db


@task()
def stars_by_language() -> list[dict[str, Any]]:
    """Stars and repository count per language, from the latest GitHub fetch."""
    db = data_db()
    if not db["repos"].exists():
        return []
    rows = db.query(
        """
        SELECT coalesce(language, 'unknown') AS language, count(*) AS repos, sum(stars) AS stars
        FROM repos WHERE fetched_at = (SELECT max(fetched_at) FROM repos)
        GROUP BY 1 ORDER BY stars DESC
        """
    )
    return list(rows)
