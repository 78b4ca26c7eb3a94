"""Every 15 minutes: record a local measurement (load average, free disk). Works offline."""

from __future__ import annotations

import os
import shutil
from typing import Any

from taskctl import settings, task
from tasks.data import data_db, utcnow


@task()
def sample_system() -> dict[str, Any]:
    """Store the 1-minute load average and the free disk space of the data folder."""
    disk = shutil.disk_usage(settings().root)
    row = {
        "sampled_at": utcnow(),
        "load_1m": os.getloadavg()[0],
        "disk_free_bytes": disk.free,
        "disk_free_pct": round(100 * disk.free / disk.total, 2),
    }
    data_db()["samples"].insert(row)
    return row
