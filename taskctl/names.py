"""Task names as users type them: a full `module.function`, or any unique suffix at a dot.

Apart from app.py so that readers that import no task module (latest_result) resolve names alike."""

from __future__ import annotations

import difflib

from taskctl.errors import UnknownTask


def resolve_name(name: str, names: list[str]) -> str:
    if name in names:
        return name
    matches = [full for full in names if full.endswith("." + name)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UnknownTask(f"task name {name!r} is ambiguous: {', '.join(matches)}; use the full name")
    short = {full.rsplit(".", 1)[-1]: full for full in names}
    close = difflib.get_close_matches(name, names, n=3) or [
        short[s] for s in difflib.get_close_matches(name.rsplit(".", 1)[-1], list(short), n=3)
    ]
    hint = f"; did you mean {' or '.join(close)}?" if close else "; run `taskctl tasks` to list them"
    raise UnknownTask(f"unknown task {name!r}{hint}")
