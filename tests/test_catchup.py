"""Missed periodic runs: caught up once when a consumer starts, or after a suspend."""

from __future__ import annotations

import json
import signal
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from conftest import stop, wait_until
from redis import Redis

from taskctl import catchup, periodic
from taskctl.app import build_app
from taskctl.config import load_settings
from taskctl.engines.redis_scripts import job_key
from taskctl.errors import ConfigError


def _app(project):
    return build_app(load_settings(project.config))


def _ran_once_now(project) -> datetime:
    "A run of the periodic task, finished: its last run, enqueued now."
    job_id = project.enqueue("sample")
    project.burst()
    return datetime.fromisoformat(project.job(job_id)["enqueued_at"])


def _jobs(project) -> list[dict]:
    return json.loads(project.ok("history", "--task", "sample", "--json", "--limit", "100"))["jobs"]


def test_missed_runs_are_caught_up_once_with_an_injected_clock(project):
    project.write_config(schedules=f'"{project.module}.sample" = "0 * * * *"')
    last = _ran_once_now(project)
    app = _app(project)
    later = last + timedelta(hours=5)  # five hourly slots missed
    [job_id] = catchup.catch_up(app, later)
    slot = later.replace(minute=0, second=0, microsecond=0)
    if slot == later.replace(second=0, microsecond=0):  # this minute is the scheduler's own
        slot -= timedelta(hours=1)
    assert catchup.catch_up(app, later) == []  # a second start: the slot is taken
    assert catchup.catch_up(app, later + timedelta(minutes=1)) == []
    # One job for the five slots, which says which run it stands for (the slot is ahead of
    # the real clock here: the runs themselves are in the subprocess test below).
    job = project.job(job_id)
    assert (job["task"], job["state"]) == (f"{project.module}.sample", "queued")
    assert datetime.fromisoformat(job["eta"]) == slot
    assert project.status()["counts"]["queued"] == 1


@pytest.mark.sqlite  # engine-neutral rules; the slot key is tested on both
def test_a_new_task_missed_nothing(project):
    project.write_config(schedules=f'"{project.module}.sample" = "0 * * * *"')
    project.enqueue("add", "1")  # the record exists, the task never ran
    assert catchup.catch_up(_app(project), datetime.now(UTC) + timedelta(hours=5)) == []


@pytest.mark.sqlite  # engine-neutral rules; the slot key is tested on both
def test_older_misses_are_skipped_and_skip_means_skip(project):
    name = f"{project.module}.sample"
    project.write_config(schedules=f'"{name}" = {{ cron = "0 3 * * *", catch_up_within = "1h" }}')
    last = _ran_once_now(project)
    three = (last + timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
    app = _app(project)
    assert catchup.catch_up(app, three + timedelta(hours=5)) == []  # 5 h old, more than 1 h
    assert catchup.missed_slot(app, app.tasks[name], three + timedelta(minutes=30)) == three

    project.write_config(schedules=f'"{name}" = {{ cron = "0 3 * * *", catch_up = "skip" }}')
    assert catchup.catch_up(_app(project), three + timedelta(minutes=30)) == []


@pytest.mark.sqlite  # engine-neutral rules; the slot key is tested on both
def test_catch_up_options_are_checked(project):
    project.write_config(schedules=f'"{project.module}.sample" = {{ cron = "0 3 * * *", catch_up = "always" }}')
    result = project.cli("status")
    assert result.exit_code != 0
    assert "catch_up must be one of 'once', 'skip', not 'always'" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(ConfigError, match="catch_up_within"):
        periodic("0 3 * * *", catch_up_within="soon")(lambda: None)
    declared = periodic("0 3 * * *", catch_up="skip", catch_up_within="2h")(lambda: None)
    assert declared.catch_up == catchup.CatchUp("skip", 7200.0)


def test_a_resume_from_suspend_is_seen_by_the_clocks():
    wall, mono = [1000.0], [50.0]
    watch = catchup.ClockWatch(lambda: wall[0], lambda: mono[0])
    wall[0], mono[0] = 1015.0, 65.0  # awake: both clocks moved alike
    assert not watch.jumped()
    wall[0], mono[0] = 4615.0, 80.0  # an hour asleep: the monotonic clock stood still
    assert watch.jumped()
    assert not watch.jumped()


def _age_last_run(project, job_id: str, seconds: float) -> None:
    "Make the record look as if the job was queued `seconds` earlier (the consumer slept meanwhile)."
    if project.url:
        key = job_key(project.module, job_id)
        redis = Redis.from_url(project.url)
        redis.hset(key, "enqueued_at", float(redis.hget(key, "enqueued_at")) - seconds)
    else:
        with sqlite3.connect(project.database) as db:
            db.execute("UPDATE taskctl_jobs SET enqueued_at = enqueued_at - ? WHERE id = ?", (seconds, job_id))


def test_consumers_started_after_a_missed_slot_run_it_once(project):
    project.write_config(schedules=f'"{project.module}.sample" = "0 * * * *"')
    first = project.enqueue("sample")
    project.burst()
    _age_last_run(project, first, 2 * 3600)  # its last run was two hours ago: an hourly slot was missed
    [listed] = [t for t in json.loads(project.ok("tasks", "--json"))["tasks"] if t["name"].endswith(".sample")]
    assert listed["missed"] is not None and listed["catch_up"] == {"mode": "once", "within": 86400.0}
    assert "(missed " in project.ok("tasks")
    consumers = [project.start_consumer(), project.start_consumer()]  # two start together
    try:
        caught = wait_until(
            lambda: [j for j in _jobs(project) if j["id"] != first and j["eta"] and j["state"] == "succeeded"],
            what="the missed run",
        )
    finally:
        errs = [stop(c, signal.SIGTERM)[1] for c in consumers]
    assert len(caught) == 1, errs
    assert sum("missed its run" in err for err in errs) == 1, errs
    assert caught[0]["eta"] == listed["missed"]  # the job says which run it stands for
    [listed] = [t for t in json.loads(project.ok("tasks", "--json"))["tasks"] if t["name"].endswith(".sample")]
    assert listed["missed"] is None and listed["caught_up"] is True
    assert "(caught up)" in project.ok("tasks")
