"""What both engines' stores need of Huey's messages and of the processes that run them."""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any, NamedTuple

from huey.registry import Message
from huey.serializer import Serializer

from taskctl.engines.base import hostname
from taskctl.model import to_json
from taskctl.times import to_epoch


def message_of(serializer: Serializer, data: bytes) -> Message | None:
    "The job the bytes describe; None for bytes that are not a Huey message."
    try:
        message = serializer.deserialize(bytes(data))
    except Exception:
        return None
    return message if isinstance(message, Message) else None


def undeliverable(message: Message | None, exc: Exception) -> tuple[str, str]:
    "Why a claimed queue entry cannot run: its error type and message."
    if message is not None:
        return "UnknownTask", f"{message.name} is not a task of this consumer ({exc}); check [taskctl] modules"
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return "UndeliverableMessage", (
        f"the queue entry is not a Huey message this consumer can read ({reason}); "
        "it was written by something else or is corrupt, and its bytes are kept for inspection"
    )


class Described(NamedTuple):
    "What the record keeps of a message: its id and task, args and kwargs as JSON, retries, eta."

    id: str
    task: str | None
    args: str | None
    kwargs: str | None
    retries: int
    eta: float | None


def describe(message: Message | None) -> Described:
    "A message as both engines record it; bytes that are not one get a new id and nothing else."
    if message is None:
        return Described(uuid.uuid4().hex, None, None, None, 0, None)
    args, kwargs = to_json(as_list(message.args)), to_json(message.kwargs or {})
    eta = to_epoch(message.eta) if message.eta is not None else None
    return Described(message.id, message.name, args, kwargs, message.retries or 0, eta)


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
