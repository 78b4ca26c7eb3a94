"""`taskctl backup`: a consistent copy of a live SQLite database, by SQLite's online backup API.

The copy is taken inside one read transaction, so it is the database as it was
at one moment, whatever consumers write meanwhile (in WAL mode readers never
block writers). It is written beside the target and renamed into place, so a
failed backup never leaves half a file under the name asked for.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path


def backup(source: Path, target: Path, busy_timeout: float) -> int:
    "Copy `source` to `target` (a new file, mode 0600); return how many jobs the copy holds."
    partial = target.with_name(f".{target.name}.part")
    # Made before SQLite opens it, so the copy is never readable by others, whatever the umask.
    os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            # One self-contained file, with no -wal beside it: taskctl switches it back to WAL when it opens it.
            dst.execute("PRAGMA journal_mode = DELETE")
            (check,) = dst.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"the copy fails SQLite's check: {check}")
            (jobs,) = dst.execute("SELECT count(*) FROM taskctl_jobs").fetchone()
        finally:
            dst.close()
            src.close()
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return int(jobs)
