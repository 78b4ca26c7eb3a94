"""`taskctl enqueue TASK --each FILE`: one job per line, with bad lines named by number."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from taskctl import bulk
from taskctl.cli.state import state
from taskctl.errors import UsageError
from taskctl.times import parse_at, parse_duration

SHOWN_BAD = 10  # bad lines listed one by one; the rest are counted
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*([smh]))?\s*$")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: str) -> float:
    "'50/s', '300/m', '1000/h' or a plain number per second -> jobs per second."
    match = _RATE.match(text.lower())
    rate = float(match[1]) / _PER[match[2] or "s"] if match else 0.0
    if not rate > 0:
        raise UsageError(f"--rate {text!r} is not a rate; use jobs per second, minute or hour: 50/s, 300/m, 1000/h")
    return rate


def enqueue_each(
    ctx: typer.Context,
    task: str,
    source: str,
    as_csv: bool,
    spread: str | None,
    rate: str | None,
    batch: str | None,
    skip_bad: bool,
    delay: str | None,
    at: str | None,
) -> None:
    if spread is not None and rate is not None:
        raise UsageError("use --spread or --rate, not both")
    if delay is not None and at is not None:
        raise UsageError("use --delay or --at, not both")
    window = parse_duration(spread, "--spread") if spread is not None else None
    per_second = parse_rate(rate) if rate is not None else None
    obj = state(ctx)
    start = time.time()
    if delay is not None:
        start += parse_duration(delay)
    elif at is not None:
        start = parse_at(at, obj.settings.tz).timestamp()
    content = _read(source)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source} is not UTF-8 text (byte {exc.start})") from None
    rows, bad = bulk.read_lines(text, as_csv or source.lower().endswith(".csv"))
    info = obj.app.resolve(task)
    rows, unfit = bulk.check_rows(info, rows)
    bad = sorted(bad + unfit, key=lambda b: b.line)
    for line in bad[:SHOWN_BAD]:
        typer.echo(f"{source}:{line.line}: {line.problem}", err=True)
    if len(bad) > SHOWN_BAD:
        typer.echo(f"… and {len(bad) - SHOWN_BAD} more bad line(s)", err=True)
    if bad and not skip_bad:
        raise UsageError(f"{len(bad)} bad line(s) in {source}; nothing queued (fix them, or --skip-bad)")
    result = bulk.Batch(batch or bulk.batch_key(content), bad=bad)
    times = bulk.etas(len(rows), start, window, per_second)
    err = Console(stderr=True)
    if err.is_terminal and len(rows) > bulk.CHUNK:
        columns = (TextColumn("queueing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True) as progress:
            bar = progress.add_task("queue", total=len(rows))
            bulk.enqueue_rows(info, rows, result, times, lambda n: progress.advance(bar, n))
    else:
        bulk.enqueue_rows(info, rows, result, times)
    pace = f", spread over {spread}" if spread else f", {rate}" if rate else ""
    skipped = f"; {len(bad)} bad line(s) skipped" if bad else ""
    typer.echo(
        f"queued {result.queued:,} job(s) of {info.name} from {source} (batch {result.key}{pace}); "
        f"{result.present:,} were queued already{skipped}"
    )


def _read(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --each {source}: {exc.strerror or exc}") from None
