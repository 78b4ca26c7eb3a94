"""Files taskctl creates that others must not read: the database (with its -wal and
-shm files) and the signing key. SQLite gives -wal and -shm the database file's
mode, so the file is made with its mode before SQLite first opens it, whatever
the umask."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE = 0o600
GROUP_READABLE = 0o640  # for a web server that reads the record as another user, in the owner's group


def create_file(path: Path, mode: int = PRIVATE, content: bytes = b"") -> bool:
    "Create `path` with exactly `mode` (and `content`); False if it exists already."
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away, or a default ACL added them
        if content:
            os.write(fd, content)
            os.fsync(fd)
    finally:
        os.close(fd)
    return True
