"""The consumer's log lines: one line per event, whatever a task's error message holds."""

from __future__ import annotations

import logging
from typing import Any

from taskctl.escape import visible

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class EscapingFormatter(logging.Formatter):
    """Control characters in a message (a task's error can hold ESC sequences, OSC 8
    links, a title set with BEL, U+202E) are written escaped, as tables show them; a
    newline too, so a message cannot forge a second log line. Tracebacks keep theirs."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return visible(super().formatMessage(record).replace("\n", "\\n"))

    def formatException(self, ei: Any) -> str:
        return visible(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return visible(super().formatStack(stack_info))


def escaping_handler() -> logging.Handler:
    "A handler to stderr whose lines are safe for a terminal or a journal."
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(FORMAT))
    return handler
