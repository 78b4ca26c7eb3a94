"""A Redis record written by the release before keeps working: its enqueue script took
one argument per field, this one takes them as one JSON array, and both must leave the
same job hash, so jobs queued by the old code run, retry and fail under the new."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from test_redis_engine import ADD, BOOM, Env

from taskctl.model import State


@pytest.fixture
def env(redis_url: str) -> Env:
    return Env(redis_url)


def old_enqueue(env: Env, wrapper: Any, name: str, *args: int) -> str:
    """Queue a job as the release before's ENQUEUE script wrote it (its upsert and index,
    command by command), with its message; returns the id."""
    task = wrapper.s(*args)
    data = env.huey.serialize_task(task)
    p, c = env.store.prefix, env.client
    seq = c.incr(p + "seq")
    fields = {"id": task.id, "task": name, "args": "[" + ", ".join(map(str, args)) + "]", "kwargs": "{}",
              "state": "queued", "priority": "0", "seq": str(seq), "retries": str(task.retries),
              "enqueued_at": repr(time.time()), "attempts": "0"}  # fmt: skip
    raw = env.store.conn  # bytes: the message is a pickle
    raw.hset(env.store._job_key(task.id), mapping={**fields, "data": data})
    c.zadd(p + "ids", {task.id: 0})
    c.hincrby(p + "tasks", name, 1)
    c.hincrby(p + "counts", "queued", 1)
    c.zadd(p + "queue", {f"{seq:016d}:{task.id}": 0})
    c.lpush(p + "wake", "1")
    return task.id


def test_a_job_queued_by_the_release_before_runs(env: Env) -> None:
    job_id = old_enqueue(env, env.add, ADD, 40, 2)
    assert env.record.job(job_id).state is State.QUEUED
    assert env.run_next() == 42
    done = env.record.job(job_id)
    assert done is not None and done.state is State.SUCCEEDED and done.attempts == 1 and done.args == (40, 2)
    assert env.recount() == Counter({"succeeded": 1})


def test_a_job_queued_by_the_release_before_retries_then_fails(env: Env) -> None:
    "Its retry goes through the new enqueue's path for a job already in the record."
    job_id = old_enqueue(env, env.boom, BOOM)
    env.run_next()
    assert env.record.job(job_id).state is State.QUEUED  # put back by Huey, for its one retry
    assert env.recount() == Counter({"queued": 1})
    env.run_next()
    failed = env.record.job(job_id)
    assert failed is not None and failed.state is State.FAILED and failed.attempts == 2
    assert env.recount() == Counter({"failed": 1})


def test_the_new_enqueue_writes_the_hash_the_old_one_wrote(env: Env) -> None:
    "Field by field, as text: readers and scripts of either release read the other's jobs."
    old_id = old_enqueue(env, env.add, ADD, 1)
    new_id = env.add(1).id
    raw = env.store.conn
    old, new = (raw.hgetall(env.store._job_key(i)) for i in (old_id, new_id))
    assert set(old) == set(new)
    same = {b"task", b"args", b"kwargs", b"state", b"priority", b"retries", b"attempts"}
    assert {k: new[k] for k in same} == {k: old[k] for k in same}
    assert int(new[b"seq"]) == int(old[b"seq"]) + 1 and float(new[b"enqueued_at"]) >= float(old[b"enqueued_at"])
    assert env.run_next() == 1 and env.run_next() == 1
    assert env.recount() == Counter({"succeeded": 2})
