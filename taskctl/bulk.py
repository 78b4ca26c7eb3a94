"""Many jobs of one task at once: `taskctl enqueue TASK --each FILE` and `enqueue_many()`.

A job's id comes from its task, its batch and its line number, so the same batch
queued again adds only the jobs that are missing (an interrupted run resumes),
and identical lines stay distinct jobs. The batch is the content's hash unless
the caller names it. Jobs are written CHUNK at a time, each chunk one
transaction (SQLite) or one script (Redis), short enough that workers keep
claiming meanwhile. `spread` and `rate` give the jobs etas: the schedule paces
them, nothing sleeps.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from taskctl.decorators import TaskProxy
from taskctl.errors import UsageError
from taskctl.jobs import call_checker, parse_value

if TYPE_CHECKING:
    from taskctl.app import TaskInfo

CHUNK = 500  # jobs per transaction or script: a few milliseconds of the write lock
NAMESPACE = uuid.UUID("5b0c1f3e-8f6a-4a53-9d0e-2f1c7d3b9a41")  # taskctl's bulk job ids


@dataclass(frozen=True)
class Row:
    line: int  # 1-based, as an editor shows it
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str


@dataclass
class Batch:
    "What a bulk enqueue did: its batch key, and how many jobs were new or there already."

    key: str
    total: int = 0
    queued: int = 0
    present: int = 0
    bad: list[BadLine] = field(default_factory=list)


def batch_key(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]


def job_id(queue: str, task: str, batch: str, line: int) -> str:
    "A bulk job's id, by definition (job_ids makes the same ids, a batch at a time)."
    return str(uuid.uuid5(NAMESPACE, f"{queue}\n{task}\n{batch}\n{line}"))


def job_ids(queue: str, task: str, batch: str) -> Callable[[int], str]:
    """job_id of one batch, line by line: the same uuid5, with the hash of the part
    every line shares taken once (uuid.uuid5 costs more than the job's insert)."""
    shared = hashlib.sha1(NAMESPACE.bytes + f"{queue}\n{task}\n{batch}\n".encode(), usedforsecurity=False)

    def of_line(line: int) -> str:
        digest = shared.copy()
        digest.update(str(line).encode())
        raw = bytearray(digest.digest()[:16])
        raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
        raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    return of_line


def read_lines(text: str, as_csv: bool) -> tuple[list[Row], list[BadLine]]:
    """JSON lines (an array: positional args; an object: keyword args) or CSV rows
    (the header names the keyword args; a value is JSON when valid JSON, else text).
    Blank lines are skipped but counted, so a line number is the editor's."""
    return _read_csv(text) if as_csv else _read_json_lines(text)


def _read_json_lines(text: str) -> tuple[list[Row], list[BadLine]]:
    rows, bad = [], []
    decode = json.JSONDecoder(parse_constant=_no_constant).decode  # one decoder: json.loads makes one a line
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = decode(line)
        except (ValueError, RecursionError) as exc:
            bad.append(BadLine(n, f"not JSON ({exc})"))
            continue
        if isinstance(value, list):
            rows.append(Row(n, value, {}))
        elif isinstance(value, dict):
            rows.append(Row(n, [], value))
        else:
            bad.append(BadLine(n, "a JSON array (the arguments) or object (keyword arguments) is needed"))
    return rows, bad


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _read_csv(text: str) -> tuple[list[Row], list[BadLine]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return [], [BadLine(1, "a CSV header naming the keyword arguments is needed")]
    names = [name.strip() for name in header]
    rows, bad = [], []
    for values in reader:
        n = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(names):
            bad.append(BadLine(n, f"{len(values)} values for {len(names)} columns"))
            continue
        rows.append(Row(n, [], {name: parse_value(v) for name, v in zip(names, values, strict=True)}))
    return rows, bad


def check_rows(info: TaskInfo, rows: list[Row]) -> tuple[list[Row], list[BadLine]]:
    "The rows the task can take, and a BadLine for each it cannot."
    good, bad = [], []
    check = call_checker(info)
    # Whether a call binds depends on its shape alone (how many args, which keywords),
    # and a file's rows mostly share one: each shape is checked once.
    problems: dict[tuple[int, tuple[str, ...]], str | None] = {}
    for row in rows:
        shape = (len(row.args), tuple(row.kwargs))
        if shape not in problems:
            try:
                check(row.args, row.kwargs)
            except UsageError as exc:
                problems[shape] = str(exc)
            else:
                problems[shape] = None
        problem = problems[shape]
        if problem is None:
            good.append(row)
        else:
            bad.append(BadLine(row.line, problem))
    return good, bad


def etas(count: int, start: float, spread: float | None, rate: float | None) -> list[float | None]:
    "Each job's eta (epoch): evenly over `spread` seconds, or `rate` per second, from `start`."
    if spread:
        return [start + spread * i / count for i in range(count)]
    if rate:
        return [start + i / rate for i in range(count)]
    return [None if start <= time.time() else start] * count


def enqueue_rows(
    info: TaskInfo,
    rows: list[Row],
    batch: Batch,
    times: list[float | None],
    progress: Callable[[int], None] | None = None,
) -> Batch:
    "Queue one job per row (ids from the batch and line); the jobs already there are left."
    huey, task_class = info.wrapper.huey, info.wrapper.task_class
    id_of = job_ids(huey.name, info.name, batch.key)
    for start in range(0, len(rows), CHUNK):
        chunk: list[tuple[bytes, Any]] = []
        for row, eta in zip(rows[start : start + CHUNK], times[start : start + CHUNK], strict=True):
            when = None if eta is None else datetime.fromtimestamp(eta, UTC).replace(tzinfo=None)  # Huey's utc=True
            job = task_class(tuple(row.args), row.kwargs, id=id_of(row.line), eta=when)
            if job.expires:
                job.resolve_expires(huey.utc)  # as Huey's enqueue does: counted from now
            message = huey._registry.create_message(job)
            chunk.append((huey.serializer.serialize(message), message))
        added = huey.storage.enqueue_new(chunk)
        batch.queued += added
        batch.present += len(chunk) - added
        if progress:
            progress(len(chunk))
    batch.total = batch.queued + batch.present
    return batch


def enqueue_many(
    task: TaskProxy | str,
    rows: Iterable[list[Any] | tuple[Any, ...] | dict[str, Any]],
    *,
    spread: float | None = None,
    rate: float | None = None,
    batch: str | None = None,
) -> Batch:
    """Queue one job of `task` per item: a list or tuple is the positional arguments, a
    dict the keyword arguments. `spread` (seconds) gives them etas evenly over that
    window, `rate` (jobs per second) paces them; the same batch (by default: the items'
    JSON) queued again adds only the jobs missing. Raises UsageError, with nothing
    queued, if any item does not fit the task."""
    from taskctl.app import app_for

    name = task if isinstance(task, str) else task.name  # a @task function, or its name
    app = app_for(name)
    info = app.resolve(name)
    items = list(rows)
    parsed = [
        Row(n, list(i), {}) if isinstance(i, list | tuple) else Row(n, [], dict(i)) for n, i in enumerate(items, 1)
    ]
    good, bad = check_rows(info, parsed)
    if bad:
        raise UsageError(f"item {bad[0].line}: {bad[0].problem} ({len(bad)} bad item(s); nothing queued)")
    key = batch or batch_key(json.dumps(items, sort_keys=True, default=repr).encode())
    return enqueue_rows(info, good, Batch(key), etas(len(good), time.time(), spread, rate))
