"""One batch of rows per job: the building block for spreading a large insert over time."""

from __future__ import annotations

from typing import Any

from taskctl import task
from tasks.data import data_db, writing


@task(retries=2, retry_delay=5)
def insert_batch(table: str, rows: list[dict[str, Any]], pk: str | None = None) -> int:
    """Insert `rows` into `table` of the data database (upsert when `pk` is given)."""
    db = data_db()
    with writing(db):
        if pk:
            db[table].upsert_all(rows, pk=pk, alter=True)
        else:
            db[table].insert_all(rows, alter=True)
    return len(rows)
