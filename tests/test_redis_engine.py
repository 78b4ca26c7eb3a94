"""The Redis engine on a real redis-server: Huey's own storage suite, then the record
through each change of state, recovery, purges, wake-ups, and two consumers at once."""

from __future__ import annotations

import os

os.environ.setdefault("HUEY_SLOW_TESTS", "1")  # includes Huey's consumer integration test

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from huey import Huey
from huey.consumer import Consumer
from huey.tests.base import BaseTestCase
from huey.tests.test_storage import StorageTests
from redis import Redis

from taskctl import tracking
from taskctl.app import TaskctlHuey
from taskctl.engines.base import Selection
from taskctl.engines.redis_record import RedisRecord
from taskctl.engines.redis_store import RedisJobStorage
from taskctl.model import FINAL, Outcome, State

ADD, BOOM = f"{__name__}.add", f"{__name__}.boom"  # Huey names a task by its module


def fresh() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


class TestHueyStorageSuite(StorageTests, BaseTestCase):
    "Huey's own storage tests, every one, on RedisJobStorage."

    supports_ttl = False  # HEXPIRE needs Redis 7.4: put_if_empty(ttl=...) raises, as the suite expects

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def get_huey(self) -> Huey:
        return Huey(fresh(), storage_class=RedisJobStorage, url=self.url, utc=True)


class Env:
    "A Huey on the engine with taskctl's tracking hooks, its record, and a raw client."

    def __init__(self, url: str, name: str | None = None, **options: Any) -> None:
        options.setdefault("blocking", False)  # an empty dequeue returns at once
        self.url = url
        self.huey = TaskctlHuey(name or fresh(), storage_class=RedisJobStorage, url=url, utc=True, **options)
        tracking.install(self.huey)
        self.store: RedisJobStorage = self.huey.storage
        self.record = RedisRecord(url, self.huey.name)
        self.client = Redis.from_url(url, decode_responses=True)
        h = self.huey

        @h.task(name="add")
        def add(a: int, b: int = 0) -> int:
            return a + b

        @h.task(name="boom", retries=1)
        def boom() -> None:
            raise ValueError("boom")

        @h.task(name="later", retries=1, retry_delay=600)
        def later() -> None:
            raise RuntimeError("again later")

        self.add, self.boom, self.later = add, boom, later

    def run_next(self) -> Any:
        task = self.huey.dequeue()
        assert task is not None
        return self.huey.execute(task)

    def state(self, job_id: str) -> State:
        job = self.record.job(job_id)
        assert job is not None
        return job.state

    def recount(self) -> Counter[str]:
        "States by a full scan of the job hashes; asserts every index agrees with them."
        p, c = self.store.prefix, self.client
        states: Counter[str] = Counter()
        jobs: dict[str, dict[str, str]] = {}
        for key in c.scan_iter(f"{p}job:*"):
            values = c.hmget(key, "id", "state", "task", "retried_as")  # not `data`: a pickle
            job = {k: v for k, v in zip(("id", "state", "task", "retried_as"), values, strict=True) if v is not None}
            jobs[job["id"]] = job
            states[job["state"]] += 1
        counted = {s: int(n) for s, n in c.hgetall(p + "counts").items() if int(n)}
        assert counted == dict(states)
        assert c.zcard(p + "queue") == states["queued"]
        assert c.zcard(p + "schedule") == states["scheduled"] + states["retrying"]
        assert c.zcard(p + "leases") == states["running"] + states["due"]
        assert c.zcard(p + "finished") == sum(states[s] for s in FINAL)
        for s in FINAL:
            assert c.zcard(f"{p}finished:{s}") == states[s]
        assert set(c.zrange(p + "ids", 0, -1)) == set(jobs)
        tasks = Counter(j["task"] for j in jobs.values() if "task" in j)
        assert {t: int(n) for t, n in c.hgetall(p + "tasks").items()} == dict(tasks)
        retryable = {i for i, j in jobs.items() if j["state"] == "failed" and "retried_as" not in j}
        assert set(c.zrange(p + "retryable", 0, -1)) == retryable
        return states


@pytest.fixture
def env(redis_url: str) -> Env:
    return Env(redis_url)


def test_the_record_after_enqueue_claim_and_success(env: Env) -> None:
    before = time.time()
    result = env.add(2, b=3)
    job = env.record.job(result.id)
    assert job is not None and job.state is State.QUEUED and job.task == ADD
    assert (job.args, job.kwargs, job.attempts) == ((2,), {"b": 3}, 0)
    assert job.enqueued_at is not None and job.enqueued_at >= before
    assert env.record.queued(10) == [job] and env.record.has_task(ADD)
    assert not env.store.slot_taken(ADD, before)  # a plain enqueue takes no periodic slot
    assert env.record.job_ids(result.id[:6].upper(), 5) == [result.id]

    task = env.huey.dequeue()
    running = env.record.job(task.id)
    assert running is not None and running.state is State.RUNNING and running.attempts == 1
    assert running.worker == f"{os.uname().nodename}:{os.getpid()}/{threading.current_thread().name}"
    assert env.record.running(10) == [running]
    assert [a.outcome for a in env.record.attempts(task.id)] == [Outcome.RUNNING]

    env.huey.execute(task)
    done = env.record.job(task.id)
    assert done is not None and done.state is State.SUCCEEDED and done.result_preview == "5"
    assert done.finished_at is not None and done.duration is not None and done.duration >= 0
    assert env.store.message(task.id) is None  # the message goes once the job is done
    cached = env.record.result("add")
    assert cached is not None and (cached.job_id, cached.value, cached.computed_at) == (task.id, 5, done.finished_at)
    assert env.record.results() == [cached] and env.store.peek_result(task.id) == 5
    assert env.record.last_run(ADD) == done and env.record.history(5, task=ADD) == [done]
    assert env.record.tasks_with_history() == [ADD]
    assert [(r.task, r.state) for r in env.record.finished_since(before)] == [(ADD, State.SUCCEEDED)]
    assert env.record.counts()[State.SUCCEEDED] == 1 and env.store.is_idle()
    env.recount()


def test_priority_then_enqueue_order(env: Env) -> None:
    ids = [env.add.schedule((i,), priority=p, delay=0).id for i, p in enumerate((0, 5, 0, 5, 9))]
    assert [j.id for j in env.record.queued(10)] == [ids[4], ids[1], ids[3], ids[0], ids[2]]
    assert [env.huey.dequeue().id for _ in ids] == [ids[4], ids[1], ids[3], ids[0], ids[2]]


def test_a_failure_with_a_retry_then_final_and_taskctl_retry(env: Env) -> None:
    result = env.boom()
    env.run_next()
    job = env.record.job(result.id)
    assert job is not None and job.state is State.QUEUED and job.error == "ValueError: boom"
    assert env.store.message(result.id).retries == 0  # Huey used the retry up in the message
    env.run_next()
    failed = env.record.job(result.id)
    assert failed is not None and failed.state is State.FAILED and failed.attempts == 2
    assert [(a.attempt, a.outcome, a.error_type) for a in env.record.attempts(result.id)] == [
        (1, Outcome.FAILED, "ValueError"),
        (2, Outcome.FAILED, "ValueError"),
    ]
    assert "Traceback" in (env.record.attempts(result.id)[1].traceback or "")
    assert env.record.failed(5) == [failed] and env.record.retryable(5) == [failed]
    assert env.record.last_run(BOOM) == failed and env.store.message(result.id) is not None

    retry = env.store.message(result.id)._replace(id=str(uuid.uuid4()), retries=0)
    assert env.store.enqueue_retry(result.id, env.store.serializer.serialize(retry))
    other = retry._replace(id=str(uuid.uuid4()))
    assert not env.store.enqueue_retry(result.id, env.store.serializer.serialize(other))  # retried already
    assert env.record.job(result.id).retried_as == retry.id and env.record.job(retry.id).retry_of == result.id
    assert env.record.retryable(5) == []
    # With its retry deleted, `retry --failed` still skips it, but by id it can be retried again.
    assert env.store.delete(Selection("queued", states=frozenset({State.QUEUED}))) == 1
    assert env.record.retryable(5, task=BOOM) == []
    assert env.store.enqueue_retry(result.id, env.store.serializer.serialize(other))
    env.recount()


def test_a_retry_with_a_delay_is_retrying_until_due(env: Env) -> None:
    result = env.later()
    env.run_next()
    job = env.record.job(result.id)
    assert job is not None and job.state is State.RETRYING and job.eta is not None and job.eta > time.time()
    assert env.record.scheduled(5) == [job] and env.record.counts()[State.RETRYING] == 1
    assert not env.store.is_idle()  # a retry waiting for its delay is still work
    assert env.store.cancel(result.id) == (True, State.RETRYING)
    env.recount()


def test_a_job_with_an_eta_waits_in_the_schedule_then_is_due(env: Env) -> None:
    future = env.add.schedule((1,), delay=3600)
    # As in Huey: in the queue until a worker sees it is not due, then on the schedule.
    assert env.state(future.id) is State.QUEUED and not env.store.is_idle()
    env.run_next()
    assert env.state(future.id) is State.SCHEDULED and env.store.is_idle()
    assert env.record.job(future.id).attempts == 0 and env.record.attempts(future.id) == []
    short = Env(env.url, env.huey.name, lease=0.05)
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
    env.store.add_to_schedule(env.huey.serialize_task(env.add.s(2)), past)
    (due,) = short.huey.read_schedule()
    assert env.state(due.id) is State.QUEUED  # due: shown as queued, not yet in the queue
    assert env.record.queued(5) == [] and env.record.counts()[State.QUEUED] == 1 and not env.store.is_idle()
    assert env.store.cancel(due.id) == (False, State.QUEUED)  # Huey is enqueueing it
    until(lambda: env.store.recover_lost() == 1)  # its scheduler never enqueued it: the lease ran out
    assert [j.id for j in env.record.queued(5)] == [due.id]
    env.recount()


def test_a_job_lost_by_its_lease_is_queued_with_a_retry_used_up_then_fails(env: Env) -> None:
    worker = Env(env.url, env.huey.name, lease=0.05)
    result = env.boom()
    task = worker.huey.dequeue()
    assert env.store.renew_leases([os.getpid()]) == 0  # another consumer's claim
    until(lambda: env.store.recover_lost() == 1)
    job = env.record.job(result.id)
    assert job is not None and job.state is State.QUEUED and job.error_type == "WorkerLost"
    assert env.store.message(result.id).retries == 0
    assert [a.outcome for a in env.record.attempts(result.id)] == [Outcome.LOST]
    worker.store.record_success(task.id, 1)  # a late outcome of the lost run: on its attempt only
    assert env.state(result.id) is State.QUEUED and env.record.results() == []
    late = env.record.attempts(result.id)[0]
    assert (late.outcome, late.error_type) == (Outcome.SUCCEEDED, "LateOutcome")

    worker.huey.dequeue()
    assert worker.store.renew_leases([os.getpid()]) == 1 and worker.store.renew_leases([1]) == 0
    until(lambda: env.store.recover_lost() == 1)
    failed = env.record.job(result.id)
    assert failed is not None and failed.state is State.FAILED and failed.error_type == "WorkerLost"
    assert [a.outcome for a in env.record.attempts(result.id)] == [Outcome.SUCCEEDED, Outcome.LOST]
    env.recount()


def test_a_job_whose_worker_process_died_is_lost_at_once(env: Env) -> None:
    result = env.add(1)
    claim = (
        f"import sys; sys.path[:0] = {sys.path!r}\n"
        "from taskctl.engines.redis_store import RedisJobStorage\n"
        f"assert RedisJobStorage({env.huey.name!r}, url={env.url!r}, blocking=False).dequeue()\n"
    )
    subprocess.run([sys.executable, "-c", claim], check=True, timeout=30)
    assert env.state(result.id) is State.RUNNING
    assert env.store.recover_lost() == 1  # the lease (60s) has not run out: the pid is dead
    failed = env.record.job(result.id)
    assert failed is not None and failed.state is State.FAILED and failed.error_type == "WorkerLost"
    env.recount()


def test_a_forked_worker_uses_connections_of_its_own(env: Env) -> None:
    result = env.add(1)
    assert env.store.queue_size() == 1  # the parent's pool now holds a connection
    pid = os.fork()
    if pid == 0:  # a process worker: claims, runs and records through the storage it inherited
        ok = False
        try:
            env.huey.execute(env.huey.dequeue())
            ok = True
        finally:
            os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0
    job = env.record.job(result.id)
    assert job is not None and job.state is State.SUCCEEDED and job.worker is not None
    assert job.worker.endswith(f":{pid}/MainThread")
    assert env.store.queue_size() == 0  # the parent's connection outlived the child


def test_unclaim_interrupt_undeliverable_and_revoke(env: Env) -> None:
    first = env.add(1)
    env.huey.dequeue()
    other = threading.Thread(target=env.store.unclaim, args=(first.id,))
    other.start()
    other.join()
    assert env.state(first.id) is State.RUNNING  # only the claiming thread gives it back
    env.store.unclaim(first.id)
    job = env.record.job(first.id)
    # Straight to the schedule, where Huey puts a job that is not due yet.
    assert job is not None and job.state is State.SCHEDULED and job.attempts == 0 and job.worker is None
    assert env.record.attempts(first.id) == []
    for task in env.huey.read_schedule():  # as the consumer's scheduler does
        env.huey.enqueue(task)

    env.huey.dequeue()
    Env(env.url, env.huey.name).store.requeue_interrupted(first.id)  # another consumer's job
    assert env.state(first.id) is State.RUNNING
    env.store.requeue_interrupted(first.id)
    assert env.state(first.id) is State.QUEUED
    assert [a.outcome for a in env.record.attempts(first.id)] == [Outcome.INTERRUPTED]

    data = env.store.dequeue()
    env.store.record_undeliverable(data, KeyError("add"))
    job = env.record.job(first.id)
    assert job is not None and job.state is State.FAILED and job.error_type == "UnknownTask"

    revoked = env.add(2)
    env.huey.revoke_by_id(revoked.id)
    env.run_next()
    job = env.record.job(revoked.id)
    assert job is not None and job.state is State.REVOKED and job.attempts == 0
    assert env.record.attempts(revoked.id) == []
    env.recount()


def test_cancel(env: Env) -> None:
    queued, scheduled = env.add(1), env.add.schedule((2,), delay=600)
    assert env.store.cancel(queued.id) == (True, State.QUEUED)
    assert env.store.cancel(scheduled.id) == (True, State.QUEUED)  # not seen by a worker yet
    assert env.store.cancel(queued.id) == (False, State.REVOKED)
    assert env.store.cancel("no-such-job") == (False, None)
    job = env.record.job(queued.id)
    assert job is not None and job.error == "Cancelled: by taskctl cancel" and env.store.message(queued.id) is None
    assert env.store.queue_size() == 0 and env.store.schedule_size() == 0 and env.huey.dequeue() is None
    assert env.record.counts()[State.REVOKED] == 2
    env.recount()


def test_purge_and_retention_selections(env: Env) -> None:
    env.add(1), env.boom.schedule(retries=0, delay=0), env.add(2)
    env.run_next(), env.run_next(), env.run_next()
    cancelled = env.add(3)
    env.store.cancel(cancelled.id)
    newest = env.add(4)
    env.run_next()
    waiting = [env.add(5).id, env.boom().id]
    finished = sorted(env.record.history(10), key=lambda j: j.finished_at or 0)
    ok, failed, revoked = State.SUCCEEDED, State.FAILED, State.REVOKED
    assert [j.state for j in finished] == [ok, failed, ok, revoked, ok]
    cut = finished[-1].finished_at
    assert env.record.nth_finished(ADD, 0, frozenset({State.FAILED})) == cut
    assert env.record.nth_finished(ADD, 3, frozenset()) == finished[0].finished_at
    assert env.record.nth_finished(ADD, 4, frozenset({State.FAILED})) is None

    keep = Selection("old", states=frozenset({State.SUCCEEDED, State.REVOKED, State.EXPIRED}), finished_before=cut)
    cap = Selection("cap", task=ADD, states=FINAL - {State.FAILED}, finished_until=cut, finished_from=cut)
    queued_add = Selection("queued add", states=frozenset({State.QUEUED}), task=ADD)
    assert [env.store.count(s) for s in (keep, cap, queued_add)] == [3, 1, 1]
    assert env.store.delete(keep) == 3
    assert [j.id for j in env.record.history(10)] == [newest.id, finished[1].id]
    assert env.store.delete(queued_add) == 1
    assert [j.id for j in env.record.queued(10)] == [waiting[1]]
    progress: list[int] = []
    assert env.store.delete(cap, progress.append) == 1 and progress == [1]
    assert env.record.history(10) == [env.record.job(finished[1].id)]
    assert env.record.tasks_with_history() == [BOOM] and env.record.last_run(ADD) is None
    env.recount()


def test_deleting_jobs_removes_every_key_of_them(env: Env) -> None:
    env.add(1), env.boom(), env.add.schedule((2,), delay=600)
    env.run_next(), env.run_next()
    env.huey.dequeue()  # one running
    env.store.put_data("lock-x", b"kept")  # Huey's own keys stay
    everything = Selection("all")
    assert env.store.count(everything) == 3
    assert env.store.delete(everything) == 3
    assert env.recount() == Counter()
    keys = set(env.client.scan_iter(f"{env.store.prefix}*"))
    left = {k.removeprefix(env.store.prefix) for k in keys}
    assert left == {"seq", "counts", "results", "huey:kv", "wake"}
    assert env.client.hkeys(env.store.prefix + "huey:kv") == ["lock-x"]
    assert env.record.counts() == dict.fromkeys(State, 0)


def test_results_selections_delete_cached_results_and_unread_huey_results(env: Env) -> None:
    first, second = env.add(1), env.add(2)
    env.run_next(), env.run_next()
    env.store.put_data("r:revoke-flag", b"kept")
    cached, unread = Selection("cached", kind="results"), Selection("unread", kind="huey_results", task=ADD)
    assert [env.store.count(cached), env.store.count(unread)] == [1, 2]
    assert env.store.delete(cached) == 1 and env.record.results() == []
    assert env.store.count(Selection("unread", kind="huey_results", task=BOOM)) == 0
    assert env.store.delete(unread) == 2 and env.store.result_items() == {"r:revoke-flag": b"kept"}
    assert env.state(first.id) is State.SUCCEEDED and env.state(second.id) is State.SUCCEEDED
    with pytest.raises(ValueError, match="unknown selection kind"):
        env.store.delete(Selection("typo", kind="result"))


def test_counts_equal_a_full_recount_after_a_mixed_workload(env: Env) -> None:
    short = Env(env.url, env.huey.name, lease=0.05)
    ids = [env.add(i).id for i in range(10)] + [env.boom().id for _ in range(5)] + [env.later().id for _ in range(3)]
    ids += [env.add.schedule((i,), delay=600, priority=i).id for i in range(4)]
    for _ in range(9):
        env.run_next()
    env.store.cancel(ids[12])
    env.huey.revoke_by_id(ids[13])
    short.huey.dequeue(), short.huey.dequeue()  # two claims whose leases run out
    env.store.add_to_schedule(env.huey.serialize_task(env.add.s(99)), datetime(2000, 1, 1))
    env.huey.read_schedule()  # one due
    until(lambda: env.store.recover_lost() > 0)
    while (task := env.huey.dequeue()) is not None:
        env.huey.execute(task)
    env.store.delete(Selection("succeeded", states=frozenset({State.SUCCEEDED}), task=ADD))
    states = env.recount()
    assert sum(states.values()) > 0 and states["failed"] > 0 and states["scheduled"] == 4


def test_the_claim_reads_hueys_revoke_flags_once(env: Env) -> None:
    revoked, kept, later = env.add(1), env.add(2), env.add(3)
    env.huey.revoke_by_id(revoked.id)
    env.run_next(), env.run_next()
    assert env.state(revoked.id) is State.REVOKED and env.state(kept.id) is State.SUCCEEDED
    task = env.huey.dequeue()
    assert task is not None and task.id == later.id
    # Revoked after the claim read the flags: as if while it ran, so it runs and the flag goes.
    env.huey.revoke_by_id(later.id)
    assert env.huey.execute(task) == 3 and env.state(later.id) is State.SUCCEEDED
    assert env.store.result_items().keys() == {f"r:{revoked.id}", kept.id, later.id}  # Huey keeps a revoke
    env.add.revoke()  # the task's own flag (`rt:`), read by the claim too
    job = env.add(4)
    task = env.huey.dequeue()
    assert env.huey.is_revoked(task) and env.huey.is_revoked(task)  # a flag found: each read asks Redis
    env.huey.execute(task)
    assert env.state(job.id) is State.REVOKED


def test_an_idle_worker_wakes_on_the_enqueue_marker(env: Env) -> None:
    blocking = RedisJobStorage(env.huey.name, url=env.url, read_timeout=10, client_name="waiting-worker")
    wake = env.store.prefix + "wake"
    got: list[bytes | None] = []
    worker = threading.Thread(target=lambda: got.append(blocking.dequeue()))
    worker.start()
    clients = env.client.client_list
    until(lambda: any(c["name"] == "waiting-worker" and c["cmd"] == "blpop" for c in clients()))  # in BLPOP
    env.store.enqueue(b"wake-up")
    worker.join(5)
    assert got == [b"wake-up"]
    assert env.client.llen(wake) == 0  # the marker was taken: the BLPOP returned, it did not time out
    for _ in range(250):
        env.store.enqueue(b"x")
    assert 0 < env.client.llen(wake) <= 200  # markers are bounded (trimmed to 100 past 200)
    while env.store.dequeue() is not None:
        pass
    assert env.client.llen(wake) == 0  # the empty claim dropped the stale markers


def test_a_claim_behind_the_wait_records_its_start_on_this_hosts_clock(env: Env) -> None:
    """The claim goes out behind the BLPOP and runs in Redis as it returns: its start is
    Redis's clock shifted onto this host's, never before the enqueue nor after the worker has the job."""
    blocking = RedisJobStorage(env.huey.name, url=env.url, read_timeout=10, client_name="claim-behind")
    got: list[tuple[bytes | None, float]] = []
    worker = threading.Thread(target=lambda: got.append((blocking.dequeue(), time.time())))
    worker.start()
    until(lambda: any(c["name"] == "claim-behind" and c["cmd"] == "blpop" for c in env.client.client_list()))
    result = env.add(1, 2)
    worker.join(5)
    (data, received), job = got[0], env.record.job(result.id)
    assert data is not None and job is not None and job.state is State.RUNNING
    assert job.enqueued_at is not None and job.started_at is not None
    assert job.enqueued_at <= job.started_at <= received
    assert [a.started_at for a in env.record.attempts(result.id)] == [job.started_at]
    # A wait that times out claims nothing, and leaves no reply behind for the next call.
    blocking.read_timeout = 0.1
    assert blocking.dequeue() is None
    env.add(3)
    assert blocking.dequeue() is not None and env.recount() == Counter({"running": 2})


def test_two_consumers_on_one_redis_never_claim_the_same_job(redis_url: str) -> None:
    name, done = fresh(), f"test:{uuid.uuid4().hex}:done"
    client = Redis.from_url(redis_url, decode_responses=True)
    envs = [Env(redis_url, name, blocking=True) for _ in range(2)]
    for e in envs:

        @e.huey.task(name="append", context=True)
        def append(task: Any = None) -> None:
            client.rpush(done, task.id)

        e.append = append  # type: ignore[attr-defined]
    ids = [envs[0].append().id for _ in range(150)]  # type: ignore[attr-defined]
    with consumers(*(e.huey for e in envs)):
        ids += [envs[1].append().id for _ in range(150)]  # type: ignore[attr-defined]
        until(lambda: client.llen(done) >= len(ids), timeout=20)
    ran = client.lrange(done, 0, -1)
    assert len(ran) == len(set(ran)) == 300 and set(ran) == set(ids)
    assert envs[0].record.counts()[State.SUCCEEDED] == 300
    envs[0].recount()


def test_the_record_opens_without_huey() -> None:
    "A web app reads cached results through it: no Huey, no pickles."
    code = "import sys, taskctl.engines.redis_record; assert 'huey' not in sys.modules, 'huey imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_a_policy_that_evicts_is_warned_about(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    admin = Redis.from_url(redis_url)
    admin.config_set("maxmemory-policy", "allkeys-lru")
    try:
        RedisJobStorage(fresh(), url=redis_url)
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
    assert "maxmemory-policy is allkeys-lru" in caplog.text
    caplog.clear()
    RedisJobStorage(fresh(), url=redis_url)
    assert "maxmemory-policy" not in caplog.text


def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@contextmanager
def consumers(*hueys: Huey) -> Iterator[None]:
    "Real Huey consumers with thread workers, stopped gracefully; the test's signal handlers restored."
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    running = [Consumer(h, workers=4, worker_type="thread", periodic=False, check_worker_health=False) for h in hueys]
    try:
        for consumer in running:
            consumer.start()
        yield
    finally:
        for consumer in running:
            consumer.stop(graceful=True)
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_latest_result_reads_redis_without_importing_huey(env: Env) -> None:
    env.add(40, 2)
    env.run_next()
    code = (
        "import sys; from taskctl import latest_result; "
        f"r = latest_result('add', database={env.url!r}, queue={env.huey.name!r}); "
        "print(r.value, r.task, r.computed_at.tzinfo is not None, 'huey' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["42", ADD, "True", "False"]


def test_the_functions_come_back_after_a_function_flush(env: Env) -> None:
    "A Redis restarted without persistence has none of taskctl's functions: the next call loads them."
    env.add(1)
    env.client.function_flush()
    env.add(2)
    assert [env.run_next(), env.run_next()] == [1, 2]
    assert env.recount() == Counter({"succeeded": 2})


def test_a_connection_redis_closed_is_opened_again_by_the_next_call(env: Env) -> None:
    "Each thread sends the scripts on a connection it holds: one Redis dropped (a restart, a timeout) reconnects."
    first = env.add(1)
    assert env.client.client_kill_filter(_type="normal", skipme=True) >= 1  # every connection but this one
    second = env.add(2)
    assert [env.run_next(), env.run_next()] == [1, 2]
    assert [env.state(r.id) for r in (first, second)] == [State.SUCCEEDED, State.SUCCEEDED]
    assert env.recount() == Counter({"succeeded": 2})


def test_redis_6_runs_the_same_code_as_scripts(env: Env) -> None:
    "Where FUNCTION LOAD is an unknown command (Redis 6), the store calls the same code with EVALSHA."
    env.store._functions = False  # what _load_functions answers on Redis 6
    env.client.function_flush()
    result = env.add(3, 4)
    assert env.run_next() == 7 and result.get() == 7
    assert env.recount() == Counter({"succeeded": 1})
    waiting = RedisJobStorage(env.huey.name, url=env.url, read_timeout=0.1)
    waiting._functions = False  # a worker waits, then claims with EVALSHA (no function to send behind the wait)
    assert waiting.dequeue() is None
    env.add(1)
    assert waiting.dequeue() is not None and env.recount() == Counter({"succeeded": 1, "running": 1})
    assert env.client.function_list() == []  # nothing loaded: the scripts did it all
