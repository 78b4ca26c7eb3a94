"""Processes as /proc shows them (Linux): the tests of child processes and bench/soak.py use these."""

from __future__ import annotations

from pathlib import Path


def children_of(pid: int) -> set[int]:
    "Live processes whose parent is `pid` (from /proc)."
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    "Running, not a zombie (an orphan's zombie stays until someone reaps it)."
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
