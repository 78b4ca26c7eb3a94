"""One job and one cached result in full, as rich renders them: `taskctl show` and
`taskctl results TASK`. Every value whole, where the listings in render.py cut them."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any

from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text

from taskctl.model import Attempt, CachedResult, Job, iso
from taskctl.render import error_cell, fit, literal, plain, short_time, state_text, titled_table
from taskctl.times import human_duration


def job_detail(
    job: Job,
    attempts: list[Attempt],
    result: tuple[bool, Any] = (False, None),
    width: int | None = None,
    tz: tzinfo | None = None,
    now: float = 0.0,
) -> RenderableType:
    "Everything about one job, every value whole; `result` is (kept?, the whole value)."
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    fields: list[tuple[str, Any]] = [
        ("id", Text(job.id)),
        ("task", Text(literal(job.task or "?"))),
        ("state", state_text(job.state)),
        *(
            [("call", Text(literal(job.args_preview)))]
            if job.args_preview
            else [
                ("args", _json_text(list(job.args), compact_up_to=80)),
                ("kwargs", _json_text(job.kwargs or {}, compact_up_to=80)),
            ]
        ),
        ("priority", str(job.to_json()["priority"])),
        ("runs at", iso(job.eta, tz) if job.state.waiting else None),
        ("enqueued", iso(job.enqueued_at, tz)),
        ("first start", iso(attempts[0].started_at, tz) if len(attempts) > 1 else None),
        ("started", iso(job.started_at, tz)),
        ("finished", iso(job.finished_at, tz)),
        ("took", human_duration(job.duration) + (" (the last attempt)" if len(attempts) > 1 else "")),
        ("elapsed", human_duration(job.elapsed(now))),
        ("attempts", str(job.attempts)),
        ("worker", job.worker and Text(literal(job.worker))),
        ("retry of", job.retry_of),
        ("retried as", job.retried_as),
        _result_field(job, result),
        ("cause", (cause := job.cause) and Text(literal(cause.text), style="red")),
        ("error", job.error and Text(literal(job.error), style="red")),
    ]
    for name, value in fields:
        if value not in (None, ""):
            grid.add_row(name, value)
    parts: list[RenderableType] = [grid]
    if attempts:
        table = titled_table("Attempts", "#", "started", "finished", "took", "worker", "outcome", "error")
        for attempt in attempts:
            table.add_row(
                str(attempt.attempt),
                short_time(attempt.started_at, tz),
                short_time(attempt.finished_at, tz),
                human_duration(attempt.duration),
                plain(attempt.worker or "", limit=40),
                state_text(attempt.outcome.value),
                error_cell(attempt),
            )
        parts += [Text(), fit(table, width)]
    parts += _tracebacks(attempts, job)
    return Group(*parts)


def _result_field(job: Job, result: tuple[bool, Any]) -> tuple[str, Any]:
    "The whole value when it is still stored, else the record's preview (cut at 200 characters)."
    kept, value = result
    if kept:
        return "result", _json_text(value, compact_up_to=80)
    if job.result_preview is None:
        return "result", None
    return "result (preview)", Text(literal(job.result_preview))


def _tracebacks(attempts: list[Attempt], job: Job) -> list[RenderableType]:
    "Each failed attempt's traceback, once: a repeat says which attempt it matches."
    found = [(a.attempt, a.traceback) for a in attempts if a.traceback]
    if not found and job.traceback:
        found = [(job.attempts, job.traceback)]
    parts: list[RenderableType] = []
    seen: dict[str, int] = {}
    for number, traceback in found:
        if traceback in seen:
            parts.append(Text(f"Attempt {number}: the same traceback as attempt {seen[traceback]}", style="dim"))
            continue
        seen[traceback] = number
        from rich.syntax import Syntax  # pygments: ~30 ms of imports, for a traceback alone

        parts += [
            Text(f"\nTraceback of attempt {number}", style="bold"),
            Syntax(literal(traceback.rstrip()), "pytb", theme="ansi_dark", background_color="default", word_wrap=True),
        ]
    return parts


def result_detail(result: CachedResult, tz: tzinfo | None = None, now: float = 0.0) -> RenderableType:
    "One cached result: where it came from, then the whole value, pretty-printed."
    header = Text.assemble(
        (result.task, "bold"),
        f"  computed {iso(result.computed_at, tz)} (age {human_duration(result.age(now))}), ",
        f"took {human_duration(result.duration)}, job {result.job_id}",
        style="",
    )
    return Group(header, _json_text(result.value))


def _json_text(value: Any, compact_up_to: int = 0) -> Text:
    "JSON, indented unless it fits in `compact_up_to` characters, coloured by a highlighter (never parsed as markup)."
    dumped = json.dumps(value, default=str, ensure_ascii=False)
    if len(dumped) > compact_up_to:
        dumped = json.dumps(value, default=str, ensure_ascii=False, indent=2)
    text = Text(literal(dumped))
    JSONHighlighter().highlight(text)
    return text
