"""Text a task produced, made safe for a terminal, a journal or a strict JSON parser.

A task's error message or value can hold escape sequences (clear the screen,
an OSC 8 link, a window title ended by BEL) and bidirectional overrides that
reorder what a line seems to say. Wherever taskctl prints such text, these
are shown escaped (`\\x1b[2J`, `\\u202e`), never acted on.
"""

from __future__ import annotations

import re

# C0 and C1 controls, and the bidirectional marks, embeddings, overrides and isolates.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What JSON leaves raw with ensure_ascii=False that a terminal may still act on (JSON escapes C0 itself).
_JSON_RAW = re.compile(r"[\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    "Control characters as Python writes them (`\\x1b`, `\\u202e`); newlines and tabs kept."
    return CONTROL.sub(lambda m: repr(m[0])[1:-1], text)


def json_escaped(document: str) -> str:
    """A JSON document with the controls JSON leaves raw written as `\\uXXXX` escapes. These
    characters can only stand inside strings, where the escape means the same character."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m[0]):04x}", document)
