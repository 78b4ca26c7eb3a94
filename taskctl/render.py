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
from rich.table import Table
from rich.text import Text

from taskctl.times import human_duration

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
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
    "computed at", "next run", "age", "took", "elapsed", "attempts", "priority",
}  # fmt: skip
_MIN_WIDTH = {"id": 8, "state": 9, "runs at": 8, "enqueued": 8, "started": 8, "failed at": 8, "computed at": 8}


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        width = max(len(column), _MIN_WIDTH.get(column, 0))
        table.add_column(column, no_wrap=column in _NO_WRAP, overflow="ellipsis", min_width=width)
    return table


def counts_line(counts: dict[str, int]) -> Text:
    "One line of counts by state: `queued 3 · running 1 · failed 0 ...`."
    line = Text("Jobs: ", style="bold")
    for i, (state, count) in enumerate(counts.items()):
        if i:
            line.append(" · ", style="dim")
        line.append(f"{state} ", style=STATE_STYLES.get(state, ""))
        line.append(str(count), style="bold" if count else "dim")
    return line


def jobs_table(title: str, jobs: list[dict[str, Any]], kind: str, total: int | None = None) -> RenderableType:
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
    shown = sum(1 for job in jobs if job["id"])
    if total is not None and total > shown:
        table.caption = f"{shown} of {total} shown; raise --limit to see more"
        table.caption_justify = "left"
    return table


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
    return job_id, task, error, str(job["attempts"]), short_time(job["finished_at"])


def results_table(results: list[dict[str, Any]]) -> RenderableType:
    if not results:
        return Text("Cached results: none yet", style="dim")
    table = _table("Cached results (latest success of each task)", "task", "computed at", "age", "took", "value")
    for result in results:
        table.add_row(
            plain(result["task"], limit=40),
            short_time(result["computed_at"]),
            human_duration(result.get("age")),
            human_duration(result["duration"]),
            plain(result["value"], limit=60),
        )
    return table


def status_view(snapshot: dict[str, Any], zone: str = "") -> RenderableType:
    "The whole `status` screen; the same builder can feed rich's Live."
    counts = snapshot["counts"]
    return Group(
        counts_line(counts),
        Text(f"Times are in {zone}." if zone else "", style="dim"),
        jobs_table("Running", snapshot["running"], "running", counts["running"]),
        jobs_table("Queued", snapshot["queued"], "queued", counts["queued"]),
        jobs_table("Scheduled", snapshot["scheduled"], "scheduled", counts["scheduled"] + counts["retrying"]),
        jobs_table("Failed", snapshot["failed"], "failed", counts["failed"]),
        results_table(snapshot["results"]),
    )


def tasks_table(rows: list[dict[str, Any]]) -> RenderableType:
    if not rows:
        return Text("No tasks registered: check [taskctl] modules in the config", style="yellow")
    table = _table("Tasks", "task", "kind", "schedule", "next run", "retries", "timeout")
    for row in rows:
        table.add_row(
            plain(row["name"], limit=None),
            row["kind"],
            row["schedule"] or "",
            short_time(row["next_run"]),
            str(row["retries"]),
            human_duration(row["timeout"]) if row["timeout"] else "",
        )
    return table
