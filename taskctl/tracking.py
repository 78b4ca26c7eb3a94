"""Huey's signals and post-execute hook -> the job record.

The storage sees the queue; what it cannot see (the return value, errors and
tracebacks, retries, revokes, expiry, interrupted runs) arrives here. Huey
logs and swallows exceptions from hooks and receivers, so a failure to record
never fails a task.
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from huey import signals
from huey.api import Huey, Task

from taskctl.engines.base import Store
from taskctl.model import State

if TYPE_CHECKING:
    from taskctl.app import TaskctlHuey

logger = logging.getLogger("taskctl.tracking")


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def record_escaped(huey: Huey, task: Task, exc: BaseException) -> None:
    "An exception Huey did not catch: the attempt failed, with no retry."
    try:
        huey.storage.record_error(task.id, exc, format_traceback(exc), final=True)
    except Exception:
        logger.exception("Could not record the failure of job %s.", task.id)


def _cause(exc: BaseException) -> str:
    "` (cause: Type: message)`, the innermost exception of a chain, as tables show it first."
    inner, seen = exc, {id(exc)}
    while (nxt := inner.__cause__ or (None if inner.__suppress_context__ else inner.__context__)) is not None:
        if id(nxt) in seen:  # a chain can loop
            break
        inner = nxt
        seen.add(id(nxt))
    return "" if inner is exc else f" (cause: {type(inner).__name__}: {inner})"


def install(huey: TaskctlHuey) -> None:
    storage: Store = huey.storage

    @huey.post_execute(name="taskctl.record")
    def record_outcome(task: Task, value: Any, exc: BaseException | None) -> None:
        # Huey's result and revoke flag, held back by TaskctlHuey, go with the outcome.
        writes = huey.take_writes()
        try:
            if exc is None:
                storage.record_success(task.id, value, writes)
                return
            storage.record_error(task.id, exc, format_traceback(exc), final=not task.retries, writes=writes)
        except Exception:
            huey.give_back(writes)  # the record failed: Huey's own writes are still made, its own way
            raise
        logger.warning(
            "%s.%s %s failed: %s: %s%s%s",
            type(task).__module__,
            task.name,
            task.id,
            type(exc).__name__,
            exc,
            _cause(exc),
            f" (will retry, {task.retries} left)" if task.retries else "",
        )

    @huey.signal(signals.SIGNAL_REVOKED, signals.SIGNAL_EXPIRED)
    def record_skipped(signal: str, task: Task) -> None:
        storage.record_skipped(task.id, State.REVOKED if signal == signals.SIGNAL_REVOKED else State.EXPIRED)

    @huey.signal(signals.SIGNAL_INTERRUPTED)
    def record_interrupted(signal: str, task: Task) -> None:
        storage.requeue_interrupted(task.id)
