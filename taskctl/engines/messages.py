"""What both engines' stores need of Huey's messages and of the workers that claim them."""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any, NamedTuple

from huey.registry import Message
from huey.serializer import Serializer

from taskctl.engines.base import hostname
from taskctl.model import call_json
from taskctl.signing import BadSignature, load_trusted
from taskctl.times import to_epoch


class _Serialized(threading.local):
    "The message this thread serialized last, and its bytes (see remember)."

    data: bytes | None = None
    message: Message | None = None


_last = _Serialized()


def remember(data: bytes, message: Message) -> None:
    """Huey serializes a message and hands the store only its bytes: kept here, the
    store learns the job's id, task and args without unpickling what was just pickled."""
    _last.data, _last.message = data, message


def message_of(serializer: Serializer, data: bytes) -> Message | None:
    "The job the bytes describe; None for bytes that are not a Huey message."
    if data is _last.data:  # the very object: it is held here, so its identity is not reused
        return _last.message
    try:
        message = serializer.deserialize(bytes(data))
    except Exception:
        return None
    return message if isinstance(message, Message) else None


def trusted_message(serializer: Serializer, data: bytes) -> Message | None:
    """The message of a job, for a command (`retry`): checked against the signing key,
    or loaded as plain data only (signing.load_trusted raises otherwise)."""
    message = load_trusted(serializer, bytes(data))
    return message if isinstance(message, Message) else None


def undeliverable(message: Message | None, exc: Exception) -> tuple[str, str]:
    "Why a claimed queue entry cannot run: its error type and message."
    if isinstance(exc, BadSignature):  # the key refused it: that is the reason, in its own words
        return type(exc).__name__, str(exc)
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
    args, kwargs = call_json(as_list(message.args), message.kwargs or {})
    eta = to_epoch(message.eta) if message.eta is not None else None
    return Described(message.id, message.name, args, kwargs, message.retries or 0, eta)


def as_list(args: Any) -> list[Any]:
    "Huey takes any value as args (`task.schedule(3)`); the record keeps a list."
    return list(args) if isinstance(args, list | tuple) else [] if args is None else [args]


def worker() -> tuple[str, int, str]:
    "Who claims: host, pid, thread; outcomes count only from the worker holding the claim."
    return hostname(), os.getpid(), threading.current_thread().name
