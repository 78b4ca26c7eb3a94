"""What both engines' stores need of Huey's messages and of the processes that run them."""

from __future__ import annotations

import os
import threading
from typing import Any

from huey.registry import Message
from huey.serializer import Serializer

from taskctl.engines.base import hostname


def message_of(serializer: Serializer, data: bytes) -> Message | None:
    "The job the bytes describe; None for bytes that are not a Huey message."
    try:
        message = serializer.deserialize(bytes(data))
    except Exception:
        return None
    return message if isinstance(message, Message) else None


def as_list(args: Any) -> list[Any]:
    "Huey takes any value as args (`task.schedule(3)`); the record keeps a list."
    return list(args) if isinstance(args, list | tuple) else [] if args is None else [args]


def worker() -> tuple[str, int, str]:
    "Who claims: host, pid, thread; outcomes count only from the worker holding the claim."
    return hostname(), os.getpid(), threading.current_thread().name


def pid_alive(pid: int | None) -> bool:
    "Is this process on this host alive? (A process of another user counts as alive.)"
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
