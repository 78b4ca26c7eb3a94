"""`taskctl workers` as rich renders it: each consumer, alive or dead, and what it runs now."""

from __future__ import annotations

from datetime import tzinfo

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from taskctl.model import Job
from taskctl.presence import FORGET_AFTER, ConsumerStatus
from taskctl.render import elapsed_text, plain, short_id, short_time
from taskctl.times import human_duration


def workers_table(consumers: list[ConsumerStatus], tz: tzinfo | None = None, now: float = 0.0) -> RenderableType:
    if not consumers:
        return Text("No consumer is running, and none died lately. Start one: taskctl run-consumer")
    table = Table(title="Consumers", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("consumer", "state", "started", "last beat", "workers", "version", "running now", "config"):
        table.add_column(name, no_wrap=name != "running now", overflow="ellipsis")
    for status in consumers:
        c = status.consumer
        state = Text("alive", style="green") if status.alive else Text("dead", style="bold red")
        running = Text("\n").join(_running(job, status, now) for job in status.running)
        table.add_row(
            plain(f"{c.host}:{c.pid}", limit=40),
            state,
            short_time(c.started_at, tz),
            f"{human_duration(max(now - c.beat_at, 0))} ago",
            f"{c.workers} {c.worker_type}" if c.workers else "?",
            c.version or "?",
            running if status.running else Text("idle", style="dim"),
            plain(c.config or "?", limit=60),
        )
    if any(not s.alive for s in consumers):
        table.caption = f"A dead consumer stopped without saying so; it is forgotten after {FORGET_AFTER / 3600:g}h."
    return table


def _running(job: Job, status: ConsumerStatus, now: float) -> Text:
    elapsed = elapsed_text(job, now, status.overdue)
    return Text.assemble(short_id(job.id), " ", plain(job.task or "?", limit=40), " ", elapsed)
