"""Pure functions: plain data in, rich renderables out. Nothing else builds tables but
its two neighbours, on its helpers: render_detail.py (one job or result in full) and
render_workers.py (the consumers).

Everything a task produced is shown as text: never read as rich markup, and
with control characters made visible, so a result cannot restyle or clear the
terminal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, OverflowMethod, RenderableType
from rich.table import Column, Table
from rich.text import Text

from taskctl.escape import CONTROL as _CONTROL
from taskctl.model import Attempt, CachedResult, Job, Snapshot, State, TaskSummary, Upcoming
from taskctl.times import human_duration

if TYPE_CHECKING:
    from taskctl.stats import TaskStats

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


def short_time(epoch: float | None, tz: tzinfo | None = None) -> str:
    "A time as tables show it, in `tz`: the time alone when it is today, else date and time."
    if epoch is None:
        return ""
    moment = datetime.fromtimestamp(epoch, UTC).astimezone(tz)
    if moment.date() == datetime.now(moment.tzinfo).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def short_id(job_id: str | None) -> Text:
    "Tables show an id's first 8 characters, like git; JSON has the whole id."
    return Text(job_id[:8], style="bold") if job_id else Text("—", style="dim")


def state_text(state: State | str) -> Text:
    name = state.value if isinstance(state, State) else state
    return Text(name, style=STATE_STYLES.get(name, ""))


def error_cell(failure: Job | Attempt, limit: int | None = None) -> Text:
    "The innermost cause of a chained error first (it says what to fix), then the error raised."
    cause = failure.cause
    text = plain(cause.text if cause else failure.error or "", limit=limit, style="red")
    if cause:
        text.append(" ← ", style="dim")
        text.append_text(plain(failure.error or "", limit=limit, style="red"))
    return text


def call_text(job: Job) -> Text:
    if job.args_preview:
        return plain(job.args_preview, limit=40)
    parts = [json.dumps(a, default=str, ensure_ascii=False) for a in job.args]
    parts += [f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in (job.kwargs or {}).items()]
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
_ERRORS = {"error", "result / error"}


def titled_table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        width = max(len(column), _MIN_WIDTH.get(column, 0))
        # An error is folded onto more lines, never cut: its end often says what to fix.
        overflow: OverflowMethod = "fold" if column in _ERRORS else "ellipsis"
        table.add_column(column, no_wrap=column in _NO_WRAP, overflow=overflow, min_width=width)
    return table


# On a narrow terminal, columns go in this order (first listed, first dropped)
# until the table fits; the others always stay.
_DROPPABLE = (
    "attempts", "priority", "kind", "retries", "timeout", "schedule", "worker", "last error", "took",
    "fail %", "p50", "computed at", "finished", "started", "outcome", "last run", "args", "state", "p95", "max",
    "runs over time",
)  # fmt: skip
_SQUEEZABLE = {"args", "error", "value", "result / error", "worker", "last error"}  # these wrap, to ~16 wide


def fit(table: Table, width: int | None) -> Table:
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


def counts_line(counts: dict[State, int]) -> Text:
    "One line of counts by state: `queued 3 · running 1 · failed 0 ...`."
    line = Text("Jobs: ", style="bold")
    for i, state in enumerate(State):
        count = counts.get(state, 0)
        if i:
            line.append(" · ", style="dim")
        line.append(f"{state} ", style=STATE_STYLES.get(state.value, ""))
        line.append(str(count), style="bold" if count else "dim")
    return line


def jobs_table(
    title: str,
    jobs: Sequence[Job | Upcoming],
    kind: str,
    total: int | None = None,
    width: int | None = None,
    tz: tzinfo | None = None,
    now: float = 0.0,
    overdue: frozenset[str] = frozenset(),
) -> RenderableType:
    if not jobs:
        return Text(f"{title}: none", style="dim")
    columns = {
        "queued": ("id", "task", "args", "priority", "enqueued", "runs at"),
        "scheduled": ("id", "task", "args", "state", "runs at", "last error"),
        "running": ("id", "task", "args", "worker", "started", "elapsed", "attempts"),
        "failed": ("id", "task", "error", "attempts", "failed at"),
    }[kind]
    table = titled_table(title, *columns)
    for job in jobs:
        table.add_row(*_job_cells(job, kind, tz, now, overdue))
    _more(table, sum(1 for job in jobs if isinstance(job, Job)), total)
    if kind == "queued" and not any(isinstance(job, Job) and job.eta for job in jobs):
        table.columns = [c for c in table.columns if c.header != "runs at"]
    return fit(table, width)


def _job_cells(
    job: Job | Upcoming, kind: str, tz: tzinfo | None, now: float, overdue: frozenset[str] = frozenset()
) -> Iterable[RenderableType]:
    task = plain(job.task or "?", limit=40)
    if isinstance(job, Upcoming):
        schedule = Text(job.schedule, style="dim", no_wrap=True)
        return short_id(None), task, schedule, state_text("periodic"), short_time(job.eta, tz), ""
    job_id = short_id(job.id)
    if kind == "queued":
        return (
            job_id,
            task,
            call_text(job),
            str(job.priority or 0),
            short_time(job.enqueued_at, tz),
            short_time(job.eta, tz),
        )
    if kind == "scheduled":
        error = plain(job.error or "", limit=40, style="red")
        return job_id, task, call_text(job), state_text(job.state), short_time(job.eta, tz), error
    if kind == "running":
        return (
            job_id,
            task,
            call_text(job),
            plain(job.worker or "", limit=40),
            short_time(job.started_at, tz),
            elapsed_text(job, now, overdue),
            str(job.attempts),
        )
    error = error_cell(job)
    if job.retried_as:
        error.append(f" (retried as {job.retried_as[:8]})", style="dim")
    return job_id, task, error, str(job.attempts), short_time(job.finished_at, tz)


def elapsed_text(job: Job, now: float, overdue: frozenset[str]) -> Text:
    "How long a running job has run; red, and said, once past its task's timeout."
    if job.id in overdue:
        return Text(f"{human_duration(job.elapsed(now))} overdue", style="bold red")
    return Text(human_duration(job.elapsed(now)))


def consumers_line(snapshot: Snapshot, tz: tzinfo | None = None) -> Text:
    "Who runs the jobs: the live consumers, or plainly that none is, when jobs wait."
    live = snapshot.live_consumers
    if not live:
        waiting = sum(snapshot.counts.get(s, 0) for s in (State.QUEUED, State.SCHEDULED, State.RETRYING, State.RUNNING))
        if not waiting:
            return Text("Consumers: none running", style="dim")
        return Text(
            f"No consumer is running: {waiting} job(s) wait and will not run until one starts "
            "(taskctl run-consumer, or taskctl service install).",
            style="bold red",
        )
    line = Text("Consumers: ", style="bold")
    for i, status in enumerate(live):
        c = status.consumer
        if i:
            line.append(" · ", style="dim")
        line.append(plain(f"{c.host}:{c.pid}", limit=40))
        line.append(f" ({c.workers} {c.worker_type}, since {short_time(c.started_at, tz)})", style="dim")
    return line


def results_table(
    results: list[CachedResult], total: int | None = None, width: int | None = None, tz: tzinfo | None = None,
    now: float = 0.0,
) -> RenderableType:  # fmt: skip
    if not results:
        return Text("Cached results: none yet", style="dim")
    table = titled_table("Cached results (latest success of each task)", "task", "computed at", "age", "took", "value")
    for result in results:
        table.add_row(
            plain(result.task, limit=40),
            short_time(result.computed_at, tz),
            human_duration(result.age(now)),
            human_duration(result.duration),
            plain(result.value_preview or json.dumps(result.value, default=str, ensure_ascii=False), limit=60),
        )
    _more(table, len(results), total)
    return fit(table, width)


def status_view(
    snapshot: Snapshot, zone: str = "", width: int | None = None, tz: tzinfo | None = None
) -> RenderableType:
    "The whole `status` screen; the same builder can feed rich's Live."
    counts, now = snapshot.counts, snapshot.now
    return Group(
        counts_line(counts),
        consumers_line(snapshot, tz),
        Text(f"Times are in {zone}." if zone else "", style="dim"),
        *([catalog_notice(notice)] if (notice := snapshot.catalog and snapshot.catalog.notice()) else []),
        jobs_table("Running", snapshot.running, "running", counts[State.RUNNING], width, tz, now, snapshot.overdue),
        jobs_table("Queued", snapshot.queued, "queued", counts[State.QUEUED], width, tz, now),
        jobs_table(
            "Scheduled", snapshot.scheduled, "scheduled", counts[State.SCHEDULED] + counts[State.RETRYING], width, tz
        ),
        jobs_table("Failed", snapshot.failed, "failed", counts[State.FAILED], width, tz),
        results_table(snapshot.results, width=width, tz=tz, now=now),
    )


def tasks_view(
    rows: list[TaskSummary],
    total: int | None = None,
    width: int | None = None,
    tz: tzinfo | None = None,
    notice: str | None = None,
) -> RenderableType:
    "`taskctl tasks`: the table, and a line when the tasks shown are not simply what runs (catalog.py)."
    table = tasks_table(rows, total, width, tz)
    return Group(table, catalog_notice(notice)) if notice else table


def catalog_notice(notice: str) -> Text:
    return Text(notice, style="yellow")


def tasks_table(
    rows: list[TaskSummary], total: int | None = None, width: int | None = None, tz: tzinfo | None = None
) -> RenderableType:
    if not rows:
        return Text("No tasks registered: check [taskctl] modules in the config", style="yellow")
    table = titled_table(
        "Tasks", "task", "kind", "schedule", "next run", "retries", "timeout", "last run", "outcome", "took"
    )
    for row in rows:
        last = row.last_run
        table.add_row(
            plain(row.name, limit=None),
            row.kind,
            row.schedule or "",
            _next_run(row, tz),
            str(row.retries),
            human_duration(row.timeout) if row.timeout else "",
            short_time(last.finished_at, tz) if last else "",
            state_text(last.state).append(" (caught up)" if row.caught_up else "") if last else "",
            human_duration(last.duration) if last else "",
        )
    _more(table, len(rows), total)
    return fit(table, width)


def _next_run(row: TaskSummary, tz: tzinfo | None) -> Text:
    text = Text(short_time(row.next_run, tz))
    if row.missed is not None:  # the next consumer to start runs it
        text.append(f" (missed {short_time(row.missed, tz)})", style="yellow")
    return text


def history_table(
    jobs: list[Job], more: bool = False, width: int | None = None, tz: tzinfo | None = None
) -> RenderableType:
    "Finished jobs, newest first; `more` when --limit held some back."
    if not jobs:
        return Text("History: no finished jobs match", style="dim")
    table = titled_table(
        "History (newest first)", "id", "task", "state", "finished", "took", "attempts", "result / error"
    )
    for job in jobs:
        outcome = error_cell(job) if job.error and job.state is not State.SUCCEEDED else None
        table.add_row(
            short_id(job.id),
            plain(job.task or "?", limit=40),
            state_text(job.state),
            short_time(job.finished_at, tz),
            human_duration(job.duration),
            str(job.attempts),
            outcome or plain(job.result_preview or ""),
        )
    if more:
        table.caption = f"newest {len(jobs)} shown; raise --limit to see more"
        table.caption_justify = "left"
    return fit(table, width)


def sparkline(runs: list[int], failures: list[int]) -> Text:
    "One character per time bucket, its height the runs in it; red where a run failed."
    peak = max(runs, default=0) or 1
    line = Text()
    for count, failed in zip(runs, failures, strict=True):
        level = 0 if not count else max(1, round(count / peak * (len(SPARK) - 1)))
        line.append(SPARK[level], style="red" if failed else "green")
    return line


def stats_table(
    rows: list[TaskStats], window: str, more: bool = False, width: int | None = None, tz: tzinfo | None = None
) -> RenderableType:
    if not rows:
        return Text(f"No job finished in the last {window}", style="dim")
    table = titled_table(
        f"Per task, last {window}",
        "task", "runs", "failed", "fail %", "p50", "p95", "max", "last run", "outcome", "runs over time",
    )  # fmt: skip
    for row in rows:
        table.add_row(
            plain(row.task, limit=40),
            f"{row.runs:,}",
            Text(f"{row.failures:,}", style="red" if row.failures else "dim"),
            f"{row.failure_rate * 100:.1f}",
            human_duration(row.p50),
            human_duration(row.p95),
            human_duration(row.max),
            short_time(row.last_run, tz),
            state_text(row.last_outcome),
            sparkline(list(row.runs_by_bucket), list(row.failures_by_bucket)),
        )
    table.caption = f"runs over time: {len(rows[0].runs_by_bucket)} bars, oldest on the left; red: a failure"
    if more:
        table.caption += "; more tasks with a higher --limit"
    table.caption_justify = "left"
    fit(table, width)
    if table.columns[-1].header != "runs over time":  # too narrow for the chart
        table.caption = "more tasks with a higher --limit" if more else None
    return table


def _more(table: Table, shown: int, total: int | None) -> None:
    if total is not None and total > shown:
        table.caption = f"{shown} of {total} shown; raise --limit to see more"
        table.caption_justify = "left"
