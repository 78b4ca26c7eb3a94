"""Pure functions: plain data in, rich renderables out. Nothing else builds tables.

Everything a task produced is shown as text: never read as rich markup, and
with control characters made visible, so a result cannot restyle or clear the
terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.syntax import Syntax
from rich.table import Column, Table
from rich.text import Text

from taskctl.times import human_duration

# C0 and C1 controls, and the bidirectional overrides that can reorder what a line seems to say.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
STATE_STYLES = {
    "queued": "cyan",
    "scheduled": "blue",
    "periodic": "blue",
    "retrying": "yellow",
    "running": "magenta",
    "succeeded": "green",
    "failed": "red",
    "revoked": "dim",
    "expired": "dim",
}


def plain(value: Any, limit: int | None = 60, style: str = "") -> Text:
    "User data as literal text: control characters escaped, long values cut with an ellipsis."
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = _CONTROL.sub(lambda m: repr(m[0])[1:-1], text.replace("\n", " ").replace("\t", " "))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return Text(text, style=style)


def literal(value: Any) -> str:
    "User data whole, for `show` and `results`: control characters made visible, newlines kept."
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False, indent=2)
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], text.replace("\t", "    "))


def short_time(stamp: str | None) -> str:
    "An ISO time as tables show it: the time alone when it is today, else date and time."
    if not stamp:
        return ""
    moment = datetime.fromisoformat(stamp)
    if moment.date() == datetime.now(moment.tzinfo).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def short_id(job_id: str | None) -> Text:
    "Tables show an id's first 8 characters, like git; JSON has the whole id."
    return Text(job_id[:8], style="bold") if job_id else Text("—", style="dim")


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def call_text(job: dict[str, Any]) -> Text:
    parts = [json.dumps(a, default=str) for a in job["args"]]
    parts += [f"{k}={json.dumps(v, default=str)}" for k, v in job["kwargs"].items()]
    return plain(" ".join(parts), limit=40)


# What must stay readable; the rest (args, errors, values) wraps on a narrow terminal.
_NO_WRAP = {
    "id", "task", "kind", "schedule", "state", "runs at", "enqueued", "started", "failed at",
    "computed at", "next run", "age", "took", "elapsed", "attempts", "priority", "finished", "last run",
    "outcome", "runs", "failed", "fail %", "p50", "p95", "max", "#", "runs over time",
}  # fmt: skip
_MIN_WIDTH = {
    "id": 8, "state": 9, "runs at": 8, "enqueued": 8, "started": 8, "failed at": 8, "computed at": 8,
    "finished": 8, "last run": 8,
}  # fmt: skip
SPARK = " ▁▂▃▄▅▆▇█"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        width = max(len(column), _MIN_WIDTH.get(column, 0))
        table.add_column(column, no_wrap=column in _NO_WRAP, overflow="ellipsis", min_width=width)
    return table


# On a narrow terminal, columns go in this order (first listed, first dropped)
# until the table fits; the others always stay.
_DROPPABLE = (
    "attempts", "priority", "kind", "retries", "timeout", "schedule", "worker", "last error", "took",
    "fail %", "p50", "computed at", "finished", "started", "outcome", "last run", "args", "state", "p95", "max",
    "runs over time",
)  # fmt: skip
_SQUEEZABLE = {"args", "error", "value", "result / error", "worker", "last error"}  # these wrap, to ~16 wide


def _fit(table: Table, width: int | None) -> Table:
    "Drop the least useful columns until what is left fits in `width` characters."
    if not width:
        return table

    def need(column: Column) -> int:
        longest = max([len(str(column.header))] + [_cell_width(cell) for cell in column._cells])
        return min(longest, 16) if column.header in _SQUEEZABLE else longest

    for name in _DROPPABLE:
        # Three characters between columns, none at the edges.
        if sum(need(c) for c in table.columns) + 3 * (len(table.columns) - 1) <= width:
            break
        table.columns = [c for c in table.columns if c.header != name]
    for index, column in enumerate(table.columns):  # rich pads the first and last columns by position
        column._index = index
    return table


def _cell_width(cell: Any) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(str(cell))


def counts_line(counts: dict[str, int]) -> Text:
    "One line of counts by state: `queued 3 · running 1 · failed 0 ...`."
    line = Text("Jobs: ", style="bold")
    for i, (state, count) in enumerate(counts.items()):
        if i:
            line.append(" · ", style="dim")
        line.append(f"{state} ", style=STATE_STYLES.get(state, ""))
        line.append(str(count), style="bold" if count else "dim")
    return line


def jobs_table(
    title: str, jobs: list[dict[str, Any]], kind: str, total: int | None = None, width: int | None = None
) -> RenderableType:
    if not jobs:
        return Text(f"{title}: none", style="dim")
    columns = {
        "queued": ("id", "task", "args", "priority", "enqueued"),
        "scheduled": ("id", "task", "args", "state", "runs at", "last error"),
        "running": ("id", "task", "args", "worker", "started", "elapsed", "attempts"),
        "failed": ("id", "task", "error", "attempts", "failed at"),
    }[kind]
    table = _table(title, *columns)
    for job in jobs:
        table.add_row(*_job_cells(job, kind))
    _more(table, sum(1 for job in jobs if job["id"]), total)
    return _fit(table, width)


def _job_cells(job: dict[str, Any], kind: str) -> Iterable[RenderableType]:
    job_id = short_id(job["id"])
    task = plain(job["task"] or "?", limit=40)
    if kind == "queued":
        return job_id, task, call_text(job), str(job["priority"] or 0), short_time(job["enqueued_at"])
    if kind == "scheduled":
        args = Text(job["schedule"], style="dim", no_wrap=True) if job["state"] == "periodic" else call_text(job)
        error = plain(job["error"] or "", limit=40, style="red")
        return job_id, task, args, state_text(job["state"]), short_time(job["eta"]), error
    if kind == "running":
        return (
            job_id,
            task,
            call_text(job),
            plain(job["worker"] or "", limit=40),
            short_time(job["started_at"]),
            human_duration(job.get("elapsed")),
            str(job["attempts"]),
        )
    error = plain(job["error"] or "", limit=60, style="red")
    if job.get("retried_as"):
        error.append(f" (retried as {job['retried_as'][:8]})", style="dim")
    return job_id, task, error, str(job["attempts"]), short_time(job["finished_at"])


def results_table(results: list[dict[str, Any]], total: int | None = None, width: int | None = None) -> RenderableType:
    if not results:
        return Text("Cached results: none yet", style="dim")
    table = _table("Cached results (latest success of each task)", "task", "computed at", "age", "took", "value")
    for result in results:
        table.add_row(
            plain(result["task"], limit=40),
            short_time(result["computed_at"]),
            human_duration(result.get("age")),
            human_duration(result["duration"]),
            plain(json.dumps(result["value"], default=str, ensure_ascii=False), limit=60),
        )
    _more(table, len(results), total)
    return _fit(table, width)


def status_view(snapshot: dict[str, Any], zone: str = "", width: int | None = None) -> RenderableType:
    "The whole `status` screen; the same builder can feed rich's Live."
    counts = snapshot["counts"]
    return Group(
        counts_line(counts),
        Text(f"Times are in {zone}." if zone else "", style="dim"),
        jobs_table("Running", snapshot["running"], "running", counts["running"], width),
        jobs_table("Queued", snapshot["queued"], "queued", counts["queued"], width),
        jobs_table("Scheduled", snapshot["scheduled"], "scheduled", counts["scheduled"] + counts["retrying"], width),
        jobs_table("Failed", snapshot["failed"], "failed", counts["failed"], width),
        results_table(snapshot["results"], width=width),
    )


def tasks_table(rows: list[dict[str, Any]], total: int | None = None, width: int | None = None) -> RenderableType:
    if not rows:
        return Text("No tasks registered: check [taskctl] modules in the config", style="yellow")
    table = _table("Tasks", "task", "kind", "schedule", "next run", "retries", "timeout", "last run", "outcome", "took")
    for row in rows:
        last = row.get("last_run") or {}
        table.add_row(
            plain(row["name"], limit=None),
            row["kind"],
            row["schedule"] or "",
            short_time(row["next_run"]),
            str(row["retries"]),
            human_duration(row["timeout"]) if row["timeout"] else "",
            short_time(last.get("finished_at")),
            state_text(last["state"]) if last else "",
            human_duration(last.get("duration")),
        )
    _more(table, len(rows), total)
    return _fit(table, width)


def history_table(jobs: list[dict[str, Any]], more: bool = False, width: int | None = None) -> RenderableType:
    "Finished jobs, newest first; `more` when --limit held some back."
    if not jobs:
        return Text("History: no finished jobs match", style="dim")
    table = _table("History (newest first)", "id", "task", "state", "finished", "took", "attempts", "result / error")
    for job in jobs:
        outcome = plain(job["error"], style="red") if job["error"] and job["state"] != "succeeded" else None
        table.add_row(
            short_id(job["id"]),
            plain(job["task"] or "?", limit=40),
            state_text(job["state"]),
            short_time(job["finished_at"]),
            human_duration(job["duration"]),
            str(job["attempts"]),
            outcome or plain(job["result_preview"] or ""),
        )
    if more:
        table.caption = f"newest {len(jobs)} shown; raise --limit to see more"
        table.caption_justify = "left"
    return _fit(table, width)


def sparkline(runs: list[int], failures: list[int]) -> Text:
    "One character per time bucket, its height the runs in it; red where a run failed."
    peak = max(runs, default=0) or 1
    line = Text()
    for count, failed in zip(runs, failures, strict=True):
        level = 0 if not count else max(1, round(count / peak * (len(SPARK) - 1)))
        line.append(SPARK[level], style="red" if failed else "green")
    return line


def stats_table(
    rows: list[dict[str, Any]], window: str, more: bool = False, width: int | None = None
) -> RenderableType:
    if not rows:
        return Text(f"No job finished in the last {window}", style="dim")
    table = _table(
        f"Per task, last {window}",
        "task", "runs", "failed", "fail %", "p50", "p95", "max", "last run", "outcome", "runs over time",
    )  # fmt: skip
    for row in rows:
        table.add_row(
            plain(row["task"], limit=40),
            f"{row['runs']:,}",
            Text(f"{row['failures']:,}", style="red" if row["failures"] else "dim"),
            f"{row['failure_rate'] * 100:.1f}",
            human_duration(row["p50"]),
            human_duration(row["p95"]),
            human_duration(row["max"]),
            short_time(row["last_run"]),
            state_text(row["last_outcome"]),
            sparkline(row["runs_by_bucket"], row["failures_by_bucket"]),
        )
    table.caption = f"runs over time: {len(rows[0]['runs_by_bucket'])} bars, oldest on the left; red: a failure"
    if more:
        table.caption += "; more tasks with a higher --limit"
    table.caption_justify = "left"
    _fit(table, width)
    if table.columns[-1].header != "runs over time":  # too narrow for the chart
        table.caption = "more tasks with a higher --limit" if more else None
    return table


def job_detail(job: dict[str, Any], attempts: list[dict[str, Any]], width: int | None = None) -> RenderableType:
    "Everything about one job, every value whole."
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    fields: list[tuple[str, Any]] = [
        ("id", Text(job["id"])),
        ("task", Text(literal(job["task"] or "?"))),
        ("state", state_text(job["state"])),
        ("args", _json_text(job["args"], compact_up_to=80)),
        ("kwargs", _json_text(job["kwargs"], compact_up_to=80)),
        ("priority", str(job["priority"])),
        ("runs at", job["eta"] if job["state"] in ("scheduled", "retrying") else None),
        ("enqueued", job["enqueued_at"]),
        ("first start", attempts[0]["started_at"] if len(attempts) > 1 else None),
        ("started", job["started_at"]),
        ("finished", job["finished_at"]),
        ("took", human_duration(job["duration"]) + (" (the last attempt)" if len(attempts) > 1 else "")),
        ("elapsed", human_duration(job.get("elapsed"))),
        ("attempts", str(job["attempts"])),
        ("worker", job["worker"] and Text(literal(job["worker"]))),
        ("retry of", job["retry_of"]),
        ("retried as", job["retried_as"]),
        _result_field(job),
        ("error", job["error"] and Text(literal(job["error"]), style="red")),
    ]
    for name, value in fields:
        if value not in (None, ""):
            grid.add_row(name, value)
    parts: list[RenderableType] = [grid]
    if attempts:
        table = _table("Attempts", "#", "started", "finished", "took", "worker", "outcome", "error")
        for attempt in attempts:
            table.add_row(
                str(attempt["attempt"]),
                short_time(attempt["started_at"]),
                short_time(attempt["finished_at"]),
                human_duration(attempt["duration"]),
                plain(attempt["worker"] or "", limit=40),
                state_text(attempt["outcome"]),
                plain(attempt["error"] or "", limit=None, style="red"),
            )
        parts += [Text(), _fit(table, width)]
    parts += _tracebacks(attempts, job)
    return Group(*parts)


def _result_field(job: dict[str, Any]) -> tuple[str, Any]:
    "The whole value when it is still stored, else the record's preview (cut at 200 characters)."
    if "result" in job:
        return "result", _json_text(job["result"], compact_up_to=80)
    if job["result_preview"] is None:
        return "result", None
    return "result (preview)", Text(literal(job["result_preview"]))


def _tracebacks(attempts: list[dict[str, Any]], job: dict[str, Any]) -> list[RenderableType]:
    "Each failed attempt's traceback, once: a repeat says which attempt it matches."
    found = [(a["attempt"], a["traceback"]) for a in attempts if a["traceback"]]
    if not found and job["traceback"]:
        found = [(job["attempts"], job["traceback"])]
    parts: list[RenderableType] = []
    seen: dict[str, int] = {}
    for number, traceback in found:
        if traceback in seen:
            parts.append(Text(f"Attempt {number}: the same traceback as attempt {seen[traceback]}", style="dim"))
            continue
        seen[traceback] = number
        parts += [
            Text(f"\nTraceback of attempt {number}", style="bold"),
            Syntax(literal(traceback.rstrip()), "pytb", theme="ansi_dark", background_color="default", word_wrap=True),
        ]
    return parts


def result_detail(result: dict[str, Any]) -> RenderableType:
    "One cached result: where it came from, then the whole value, pretty-printed."
    header = Text.assemble(
        (result["task"], "bold"),
        f"  computed {result['computed_at']} (age {human_duration(result.get('age'))}), ",
        f"took {human_duration(result['duration'])}, job {result['job_id']}",
        style="",
    )
    return Group(header, _json_text(result["value"]))


def _json_text(value: Any, compact_up_to: int = 0) -> Text:
    "JSON, indented unless it fits in `compact_up_to` characters, coloured by a highlighter (never parsed as markup)."
    dumped = json.dumps(value, default=str, ensure_ascii=False)
    if len(dumped) > compact_up_to:
        dumped = json.dumps(value, default=str, ensure_ascii=False, indent=2)
    text = Text(literal(dumped))
    JSONHighlighter().highlight(text)
    return text


def _more(table: Table, shown: int, total: int | None) -> None:
    if total is not None and total > shown:
        table.caption = f"{shown} of {total} shown; raise --limit to see more"
        table.caption_justify = "left"
