"""Is a path on a network filesystem? SQLite's WAL mode needs shared memory and
POSIX locks that NFS, SMB and their kind do not give across machines (or give
wrongly), so a database there can be corrupted: taskctl refuses it.

Linux says where each filesystem is mounted in /proc/mounts; elsewhere (macOS,
Windows) nothing is detected and the README's warning stands.
"""

from __future__ import annotations

import os
from pathlib import Path

MOUNTS = Path("/proc/mounts")
# Filesystem types whose locking SQLite's WAL mode cannot rely on.
NETWORK = {
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "ncpfs", "afs", "9p", "v9fs", "drvfs",
    "fuse.sshfs", "sshfs", "davfs", "fuse.davfs2", "glusterfs", "fuse.glusterfs", "ceph", "fuse.ceph",
    "lustre", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse",
}  # fmt: skip


def network_filesystem(path: Path) -> str | None:
    "The type of the network filesystem holding `path` (a file, or where one will be made), if it is on one."
    try:
        table = MOUNTS.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return mounted_type(os.path.realpath(path), table) if table else None


def mounted_type(path: str, table: str) -> str | None:
    "From a /proc/mounts table: the network filesystem type of the deepest mount holding `path`, if any."
    best, kind = "", ""
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        # /proc/mounts writes a space in a mount point as \040.
        point = fields[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind if kind in NETWORK else None
