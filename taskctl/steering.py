"""Acting on jobs by id: find one by prefix, cancel, retry. Engine-neutral."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskctl.engines.base import Record
from taskctl.errors import BadSignature, NotPlainData, UnknownJob, UnknownTask
from taskctl.model import Job, State

if TYPE_CHECKING:
    from taskctl.app import App

MIN_PREFIX = 4


def find_job(record: Record, prefix: str) -> Job:
    "A job by its id or a unique prefix of it, like git."
    prefix = prefix.strip()
    exact = record.job(prefix)
    if exact is not None:
        return exact
    prefix = prefix.lower()  # Huey's ids are lowercase
    if len(prefix) < MIN_PREFIX:
        raise UnknownJob(f"job id {prefix!r} is too short: give at least {MIN_PREFIX} characters of an id")
    ids = record.job_ids(prefix, 6)
    if not ids:
        raise UnknownJob(f"no job with an id starting {prefix!r}; see `taskctl status` or `taskctl history`")
    if len(ids) > 1:
        shown = ", ".join(i[: len(prefix) + 4] for i in ids[:5]) + (", …" if len(ids) > 5 else "")
        raise UnknownJob(f"job id prefix {prefix!r} is ambiguous ({shown}); give more characters")
    job = record.job(ids[0])
    assert job is not None
    return job


@dataclass(frozen=True)
class Outcome:
    "What one command did to one job: `done` or not, and the line that says so."

    done: bool
    message: str


def cancel(app: App, record: Record, prefix: str) -> Outcome:
    job = find_job(record, prefix)
    revoked, was = app.store.cancel(job.id)
    label = f"{job.id} ({job.task})"
    if revoked:
        return Outcome(True, f"revoked {label}; it was {was}")
    if was is State.RUNNING:
        worker = (record.job(job.id) or job).worker  # it may have been claimed since we looked
        return Outcome(
            False,
            f"{label} is running on {worker}; Huey cannot stop a running task, so it will finish "
            '(with worker_type = "process", a task\'s timeout stops it)',
        )
    if was is not None and was.waiting:
        return Outcome(False, f"{label} is moving from the schedule to the queue; try again in a moment")
    return Outcome(False, f"{label} has already finished ({was}); only waiting jobs can be cancelled")


def retry(app: App, record: Record, prefix: str) -> Outcome:
    "Queue a failed job again, with its original arguments, as a new job linked to it."
    return retry_job(app, record, find_job(record, prefix))


def retry_job(app: App, record: Record, job: Job) -> Outcome:
    """`retry --failed` never passes a job retried before; by id, a job can be retried
    again when its retry is gone (purged before it ran)."""
    label = f"{job.id} ({job.task})"
    if job.state is not State.FAILED:
        return Outcome(False, f"{label} did not fail (its state is {job.state}); only failed jobs can be retried")
    if job.retried_as and record.job(job.retried_as) is not None:
        return Outcome(False, f"{label} was already retried as {job.retried_as}")
    try:
        info = app.resolve(job.task or "")
    except UnknownTask:
        return Outcome(False, f"{label}: task {job.task} is not registered; check [taskctl] modules")
    try:
        message = app.store.message(job.id)
    except (NotPlainData, BadSignature) as exc:
        return Outcome(False, f"{label}: its kept message was not retried: {exc}")
    if message is None and job.args_preview:
        return Outcome(False, f"{label}: its message is gone and the record kept only a preview of its arguments")
    # The stored message has the exact arguments; jobs that failed before they
    # were kept have only their JSON copy.
    args = tuple(message.args) if message else tuple(job.args)
    kwargs = dict(message.kwargs or {}) if message else dict(job.kwargs or {})
    new = info.wrapper.task_class(args, kwargs, priority=job.priority or None)
    if not app.store.enqueue_retry(job.id, app.huey.serialize_task(new)):
        return Outcome(False, f"{label} was retried by someone else just now")
    return Outcome(True, f"retried {label} as {new.id}")
