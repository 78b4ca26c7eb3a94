"""Consumer processes for a bench: taskctl's `run-consumer` or a bare `huey_consumer`, on a new project."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from support import BIN, TASKCTL, bare_project, project, spawn, wait_for

from taskctl.app import build_app
from taskctl.config import load_settings


def opened(pid: int, path: Path) -> bool:
    "Has the process opened the database (its workers are polling)?"
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def consumers_for(kind: str, folder: Path, how_many: int) -> tuple[list[subprocess.Popen[bytes]], Path, Any]:
    "Consumers of a new taskctl or bare project in `folder`, polling its database: processes, db, project."
    if kind == "taskctl":
        config = project(folder)
        build_app(load_settings(config)).store.close()  # the schema exists before anyone races to make it
        args, db, where = [TASKCTL, "run-consumer", "--no-periodic", "--workers", "2"], folder / "taskctl.db", config
    else:
        module = bare_project(folder)
        args, db, where = (
            [str(BIN / "huey_consumer"), f"{module.__name__}.huey", "-w", "2", "-q"],
            folder / "bare.db",
            module,
        )
    processes = [spawn(args, folder, folder / f"consumer-{n}.log") for n in range(how_many)]
    wait_for("the consumers to open the database", lambda: all(opened(p.pid, db) for p in processes), 60)
    return processes, db, where
