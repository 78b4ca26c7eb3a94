"""The Redis engine's write side: Huey's storage, with the queue *in* the job record.

A job's hash is its record, and the queue, the schedule and every other index
are sorted sets of its id. Each change in the state table of engines/base.py
(drawn once, for both engines) is one method here, and one Lua script
(lua/, loaded by redis_scripts.py) that moves the index entries and writes the
record together, so a job is never queued but unrecorded, nor gone from both.

`due` is the moment between the schedule and the queue: Huey enqueues what
read_schedule returns right after the call, and the lease brings it back if it
never does. Readers show it as queued.

Record times are the caller's clock, as on SQLite; leases are Redis's. The
keys are drawn in redis_scripts.py; the read side is redis_record.py.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
import weakref
from datetime import datetime
from functools import partial
from typing import Any

from huey.constants import EmptyData
from huey.registry import Message
from huey.serializer import Serializer
from huey.storage import BaseStorage
from redis import ConnectionError as RedisConnectionError
from redis import ConnectionPool, Redis, RedisError, ResponseError
from redis import TimeoutError as RedisTimeoutError

from taskctl.engines import redis_prune
from taskctl.engines import redis_scripts as lua
from taskctl.engines.base import (
    DUE,
    HueyWrites,
    Progress,
    RevokeFlags,
    Selection,
    hostname,
    periodic_slot,
    pid_alive,
    shown_state,
)
from taskctl.engines.messages import describe, message_of, trusted_message, undeliverable, worker
from taskctl.engines.redis_admin import RedisAdmin, check_eviction, result_head
from taskctl.model import State, preview, to_json
from taskctl.signing import load_trusted
from taskctl.times import to_epoch

logger = logging.getLogger("taskctl.engines.redis")

# An outcome reported after its job was recovered as lost: kept on the worker's attempt.
LATE = ("LateOutcome", "the worker finished after its job was recovered as lost", "")
SLOT_MEMORY = 2 * 86400  # seconds a periodic slot is remembered: it only guards its own minute
CLOCK_CHECK = 60.0  # seconds between measures of this host's clock against Redis's (clock_offset)
BATCH = 500  # jobs per script call of a read_schedule or a purge: no call blocks Redis for long


class RedisJobStorage(RedisAdmin, BaseStorage):
    "A Huey storage on Redis whose queue and schedule are indexes of the job record."

    blocking = True  # dequeue waits for a wake-up marker: Huey's workers need not poll
    priority = True

    def __init__(
        self,
        name: str = "huey",
        url: str = "redis://127.0.0.1:6379/0",
        serializer: Serializer | None = None,
        lease: float = 60.0,
        password: str | None = None,
        read_timeout: float = 1.0,
        blocking: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(name)
        self.serializer = serializer or Serializer()
        self.lease = lease
        self.read_timeout = read_timeout
        self.blocking = blocking
        # Marks the jobs this consumer claimed (its forked workers share it), so
        # its heartbeat renews only their leases.
        self.owner = uuid.uuid4().hex
        self._offset, self._offset_at = 0.0, -CLOCK_CHECK  # clock_offset: not measured yet
        self.prefix = lua.prefix(name)
        self.url = url
        self._options = {**kwargs, **({"password": password} if password else {})}
        self._connect()
        check_eviction(self.conn)
        os.register_at_fork(after_in_child=partial(_reconnect, weakref.ref(self)))

    def _connect(self) -> None:
        # redis-py's pool is thread-safe; a forked worker builds its own (see _reconnect).
        self.pool = ConnectionPool.from_url(self.url, **self._options)
        # Any: redis-py types every reply `bytes | str` (decode_responses decides at run
        # time); this client's replies are bytes.
        self.conn: Any = Redis(connection_pool=self.pool)
        self._claimed = threading.local()  # per worker thread: the id of the job its last claim found
        self._flags = RevokeFlags()
        self._own = threading.local()  # per thread: its own client for the scripts (_client)
        self._scripts = {name: self.conn.register_script(lua.LIB + body) for name, body in lua.SCRIPTS.items()}
        self._functions: bool | None = None  # Redis Functions (7.0+) or scripts: known at the first call

    def close(self) -> None:
        self.pool.disconnect()

    # -- the queue and the schedule, as Huey calls them -------------------

    def enqueue(self, data: bytes, priority: float | None = None) -> None:
        # Always the queue, even with an eta, as in Huey: a worker moves a job that
        # is not due yet to the schedule (and Huey signals SIGNAL_SCHEDULED then).
        message = self._message(data)
        minute = periodic_slot.minute_for(message.id) if message else None
        marks = (repr(minute), SLOT_MEMORY) if minute is not None else ()
        self._run("enqueue", *self._job(data, message, State.QUEUED, priority), *marks)

    def add_to_schedule(self, data: bytes, ts: datetime) -> None:
        message = self._message(data)
        priority = message.priority if message else None
        self._run("enqueue", *self._job(data, message, State.SCHEDULED, priority, to_epoch(ts)))

    def enqueue_new(self, batch: list[tuple[bytes, Message]]) -> int:
        """Jobs not in the record yet, in one script: queued, or scheduled for their eta.
        A job whose id is here already is left as it is. Returns how many were new."""
        args: list[Any] = []
        for data, message in batch:
            state = State.SCHEDULED if message.eta else State.QUEUED
            args += self._job(data, message, state, message.priority)
        return int(self._run("enqueue_new", *args))

    def dequeue(self) -> bytes | None:
        data = self._claim()
        if data is None and self.blocking:
            # A script cannot block, and a pop outside the claim would lose the job on a
            # crash: wait for the marker an enqueue pushes, then claim again.
            data = self._wait_then_claim()
        return data

    def _claim(self) -> bytes | None:
        host, pid, thread = worker()
        return self._claimed_job(self._run("claim", host, pid, thread, self.owner, self.lease, time.time()))

    def _wait_then_claim(self) -> bytes | None:
        """Waits for a wake-up marker and claims in the same round trip: the claim goes out
        right behind the BLPOP, and Redis runs it the moment the BLPOP returns (a client's
        commands run in order), instead of after a reply and a second request. The claim
        cannot know when that is: it records its start by Redis's clock, shifted onto this
        host's (clock_offset). After the BLPOP's timeout it runs too, and claims nothing."""
        if self._functions is None:
            self._functions = self._load_functions()
        if not self._functions:  # Redis 6: the claim is a script sent whole, not a function to pipeline
            self.conn.blpop([self._key(lua.WAKE)], timeout=self.read_timeout)
            return self._claim()
        host, pid, thread = worker()
        claim = ("FCALL", lua.FUNCTIONS["claim"], 1, self.prefix, host, pid, thread, self.owner, self.lease, "",
                 self.clock_offset())  # fmt: skip
        conn = self._client().connection
        try:
            conn.send_packed_command(conn.pack_commands([("BLPOP", self._key(lua.WAKE), self.read_timeout), claim]))
            conn.read_response()  # the marker, or nil after the timeout
            claimed = conn.read_response()
        except ResponseError as exc:
            if "function not found" not in str(exc).lower():
                raise
            self._load_functions()  # gone since: a restart without persistence, or FUNCTION FLUSH
            return self._claim()
        except (RedisConnectionError, RedisTimeoutError):
            conn.disconnect()  # a reply may still come: no later command must read it as its own
            raise
        return self._claimed_job(claimed)

    def clock_offset(self) -> float:
        """This host's clock minus Redis's, measured every CLOCK_CHECK seconds: at most what it
        is, by the length of the TIME round trip (the shortest of three), so a start recorded
        with it is never later than the true one and no duration comes out negative."""
        if time.monotonic() - self._offset_at > CLOCK_CHECK:
            samples = []
            for _ in range(3):
                before = time.time()
                seconds, micros = self.conn.time()
                samples.append((time.time() - before, before - (seconds + micros / 1e6)))
            self._offset, self._offset_at = min(samples)[1], time.monotonic()
        return self._offset

    def _claimed_job(self, claimed: Any) -> bytes | None:
        if not claimed:
            self._flags.claimed()
            return None
        data, job_id, task, revoked, task_revoked = claimed
        self._claimed.id = job_id.decode()  # bytes that are no message name no job: record_undeliverable
        # The job's revoke flags were read in the claim too, which Huey reads next (RevokeFlags).
        self._flags.claimed(self._claimed.id, task.decode() if task else None, bool(revoked or task_revoked))
        return data

    def wake_waiters(self, count: int) -> None:
        """Idle workers blocked on the wake list look again now (the consumer stops): one
        marker each. A marker left over costs some worker one empty claim, which drops it."""
        if count <= 0:
            return
        try:
            self.conn.lpush(self._key(lua.WAKE), *["1"] * count)
        except RedisError:  # a replica, a lost connection: the waits end by their timeout instead
            logger.debug("Could not wake the waiting workers.", exc_info=True)

    def queue_size(self) -> int:
        return self.conn.zcard(self._key(lua.QUEUE))

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        return self._data(lua.QUEUE, limit)

    def flush_queue(self) -> None:
        redis_prune.flush(self, {"queued"})

    def read_schedule(self, ts: datetime) -> list[bytes]:
        found: list[bytes] = []
        while True:
            batch = self._run("read_schedule", to_epoch(ts), self.lease, BATCH)
            found += batch
            if len(batch) < BATCH:
                return found

    def schedule_size(self) -> int:
        return self.conn.zcard(self._key(lua.SCHEDULE))

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        return self._data(lua.SCHEDULE, limit)

    def flush_schedule(self) -> None:
        redis_prune.flush(self, {"scheduled", "retrying", DUE})

    # -- outcomes, as taskctl's Huey and its hooks report them -------------

    def record_success(self, job_id: str, value: Any, writes: HueyWrites | None = None) -> None:
        "The job succeeded: clear its message, keep a preview, cache the whole value."
        now, shown, head = time.time(), preview(value), result_head(job_id, to_json(value))
        if not self._run("succeed", job_id, *worker(), now, shown, head, *_huey(writes)):  # recovered as lost meanwhile
            self._run("late", job_id, *worker(), now, "succeeded", *LATE, shown, head)

    def record_error(
        self, job_id: str, exc: BaseException, tb: str, final: bool, writes: HueyWrites | None = None
    ) -> None:
        """An attempt raised. A final failure keeps the message, for `taskctl retry`;
        a retry stays running until Huey puts it back (enqueue or add_to_schedule)."""
        now, error = time.time(), (type(exc).__name__, str(exc), tb)
        if not self._run("fail", job_id, *worker(), now, int(final), *error, *_huey(writes)):  # recovered meanwhile
            self._run("late", job_id, *worker(), now, "failed", *error, "", "")

    def record_skipped(self, job_id: str, state: State) -> None:
        "Revoked or expired: taken from the queue but never run, so not an attempt."
        self._run("skip", job_id, State(state).value, time.time(), *worker())

    def unclaim(self, job_id: str, state: State = State.SCHEDULED) -> None:
        """This worker's claim is given back unrun: not an attempt. To the schedule (Huey found
        the job not due yet), or to the queue (the consumer is stopping)."""
        self._run("unclaim", job_id, *worker(), State(state).value)

    def record_undeliverable(self, data: bytes, exc: Exception) -> None:
        """A claimed entry this consumer cannot run: its task is not registered here, or
        it is no Huey message at all (then it is the one this thread claimed last)."""
        message = self._message(data)
        job_id = message.id if message is not None else getattr(self._claimed, "id", None)
        if job_id is not None:
            error_type, error = undeliverable(message, exc)
            self._run("undeliverable", job_id, time.time(), error, *worker(), error_type)

    def requeue_interrupted(self, job_id: str) -> None:
        "The consumer stopped mid-run: the job goes back to the queue to run again."
        self._run("interrupt", job_id, self.owner, time.time())

    # -- the consumer's heartbeat: leases (its presence: redis_admin.py) ----

    def renew_leases(self, pids: list[int]) -> int:
        """The running jobs this consumer claimed, in these live processes (itself,
        and its worker processes), are still being worked on."""
        return self._run("renew", self.owner, hostname(), self.lease, *pids)

    def recover_lost(self) -> int:
        """Put right the jobs whose worker is gone: a running job whose lease ran out
        (by Redis's clock), or at once one whose worker process on this host is dead;
        a due job whose scheduler never queued it. A lost job with a retry left goes
        back to the queue, using the retry up; otherwise it fails as WorkerLost.
        Returns how many this call put right (a concurrent consumer may take some)."""
        leases = self.conn.zrange(self._key(lua.LEASES), 0, -1, withscores=True)
        if not leases:
            return 0
        seconds, micros = self.conn.time()
        now, host = seconds + micros / 1e6, hostname()
        pipe = self.conn.pipeline(transaction=False)
        for job_id, _ in leases:
            pipe.hmget(self._job_key(job_id.decode()), "state", "attempts", "worker_host", "worker_pid")
        lost = 0
        for (raw_id, deadline), (state, attempt, w_host, w_pid) in zip(leases, pipe.execute(), strict=True):
            job_id = raw_id.decode()
            if state == b"due" and deadline < now:
                lost += self._run("recover", job_id, DUE, "", "", "", 0, time.time(), "", "")
            elif state == b"running":
                dead = w_host == host.encode() and not pid_alive(int(w_pid or 0))
                if dead or deadline < now:
                    data, retries = self._use_retry(job_id)
                    args = (job_id, "running", attempt, w_host, w_pid, int(dead), time.time(), data, retries)
                    lost += self._run("recover", *args)
        return lost

    def _use_retry(self, job_id: str) -> tuple[bytes, int | str]:
        "The job's message with one retry used up (Huey counts from there), or none left."
        data = self.conn.hget(self._job_key(job_id), "data")
        message = self._message(data) if data is not None else None
        if message is None or not message.retries:
            return b"", ""
        return self.serializer.serialize(message._replace(retries=message.retries - 1)), message.retries - 1

    def is_idle(self) -> bool:
        """Nothing queued, running, waiting for a retry, or due now (for `--burst`).
        Jobs scheduled for a later time do not count: they are not work for this
        run (a delayed job still in the queue does: a worker moves it to the schedule)."""
        pipe = self.conn.pipeline(transaction=False)
        pipe.hmget(self._key(lua.COUNTS), "queued", "running", DUE, "retrying")
        pipe.zrangebyscore(self._key(lua.SCHEDULE), "-inf", time.time(), start=0, num=1)
        counts, due = pipe.execute()
        return not due and not any(int(n or 0) > 0 for n in counts)

    # -- what commands change ---------------------------------------------

    def cancel(self, job_id: str) -> tuple[bool, State | None]:
        """Revoke a job still waiting to run, in the one script that takes it off the
        queue, so no worker can claim it afterwards. Returns whether it was revoked,
        and the state it was in (None: no such job)."""
        revoked, state = self._run("cancel", job_id, time.time())
        if not state:
            return False, None
        # A due job is being enqueued by Huey this moment: its enqueue would undo a revoke.
        return bool(revoked), shown_state(state.decode())

    def enqueue_retry(self, old_id: str, data: bytes) -> bool:
        """Queue `data`, a new job, as the retry of the failed job `old_id`, and link
        the two. False, and nothing queued, if `old_id` is not failed or was retried
        already (by a concurrent `retry`, say) by a job that still exists."""
        message = self._message(data)
        if message is None:
            raise ValueError("not a Huey message")
        return bool(self._run("enqueue_retry", old_id, *self._job(data, message, State.QUEUED, message.priority)))

    def count(self, selection: Selection) -> int:
        return redis_prune.count(self, selection)

    def delete(self, selection: Selection, progress: Progress | None = None) -> int:
        return redis_prune.delete(self, selection, progress)

    # -- reads that need the message or Huey's own keys ---------------------

    def message(self, job_id: str) -> Message | None:
        "The job's Huey message while it is kept (queued, scheduled, running, failed)."
        data = self.conn.hget(self._job_key(job_id), "data")
        return trusted_message(self.serializer, data) if data is not None else None

    def peek_result(self, job_id: str) -> Any:
        "Huey's stored return value for a job, left in place; EmptyData if none."
        data = self.peek_data(job_id)
        return data if data is EmptyData else load_trusted(self.serializer, data)

    def slot_taken(self, task: str, at: float) -> bool:
        "Has the periodic run of `task` for the minute `at` been queued?"
        return bool(self.conn.exists(self._key(lua.slot(task, at))))

    def forget_slots(self, before: float) -> int:
        "Slots expire by themselves (SLOT_MEMORY)."
        return 0

    def _run(self, script: str, *args: Any) -> Any:
        if self._functions is None:
            self._functions = self._load_functions()
        client = self._client()
        if not self._functions:  # Redis 6: the same code as scripts, with LIB run at every call
            return self._scripts[script](keys=[self.prefix], args=args, client=client)
        try:
            return _send(client, "FCALL", lua.FUNCTIONS[script], 1, self.prefix, *args)
        except ResponseError as exc:
            if "function not found" not in str(exc).lower():
                raise
            self._load_functions()  # gone since: a restart without persistence, or FUNCTION FLUSH
            return _send(client, "FCALL", lua.FUNCTIONS[script], 1, self.prefix, *args)

    def _client(self) -> Any:
        """This thread's own client, holding one connection of the pool: a pooled command
        takes a connection from the pool and gives it back each time, a fifth of what a
        script call costs this process. A thread runs one command at a time; when it
        ends, its client gives the connection back to the pool."""
        client = getattr(self._own, "client", None)
        if client is None:
            client = self._own.client = Redis(connection_pool=self.pool, single_connection_client=True)
        return client

    def _load_functions(self) -> bool:
        "Loads taskctl's library, unless this version's is there already; False on Redis 6."
        try:
            self.conn.function_load(lua.LIBRARY)
        except ResponseError as exc:
            message = str(exc).lower()
            if "unknown command" in message or "noperm" in message:  # Redis 6, or an ACL without FUNCTION
                return False
            if "already exists" not in message:
                raise
        return True

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _job_key(self, job_id: str) -> str:
        return lua.job_key(self.name, job_id)

    def _message(self, data: bytes) -> Message | None:
        return message_of(self.serializer, data)

    def _job(
        self, data: bytes, message: Message | None, state: State, priority: float | None, eta: float | None = None
    ) -> tuple[str, bytes]:
        "A job as the enqueue scripts take it (LIB's job_args): its meta as one JSON array, and its message."
        job = describe(message)
        eta = job.eta if eta is None else eta
        # Numbers as redis-py would send them (repr), so the hash holds the same text;
        # '' for what is absent. The worker: a running job is put back only by its holder.
        meta = (job.id, job.task or "", job.args or "", job.kwargs or "", state.value, repr(priority or 0),
                "" if eta is None else repr(eta), repr(job.retries), repr(time.time()), _claimer())  # fmt: skip
        return _META.encode(meta), data

    def _data(self, index: str, limit: int | None) -> list[bytes]:
        if limit is not None and limit <= 0:
            return []
        entries = self.conn.zrange(self._key(index), 0, -1 if limit is None else limit - 1)
        pipe = self.conn.pipeline(transaction=False)
        for entry in entries:
            pipe.hget(self._job_key(lua.entry_id(entry.decode())), "data")
        return [data for data in pipe.execute() if data is not None]


def _send(client: Any, *command: Any) -> Any:
    """A command on a single-connection client, sent and read on its connection: redis-py's
    per-command machinery (its retry wrapper, metrics, event hooks) costs this process as
    much as the call itself. On a connection error, that machinery takes over: it
    reconnects and retries as the client is configured to, as it would have anyway."""
    conn = client.connection
    try:
        conn.send_command(*command)
        return conn.read_response()
    except (RedisConnectionError, RedisTimeoutError):
        conn.disconnect()  # a reply may still come: no later command must read it as its own
        return client.execute_command(*command)


# ensure_ascii=False: text goes as UTF-8, as redis-py sends a str, and cjson has no escapes to undo.
_META = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _claimer() -> str:
    "This worker as the enqueue script (lua/enqueue.lua) compares it with a running job's holder, in one argument."
    host, pid, thread = worker()
    return f"{host}\n{pid}\n{thread}"


def _huey(writes: HueyWrites | None) -> tuple[bytes | str, str]:
    "Huey's writes as the outcome scripts take them ('' for none)."
    if writes is None:
        return "", ""
    return writes.result if writes.result is not None else "", writes.clear_revoke or ""


def _reconnect(ref: weakref.ref[RedisJobStorage]) -> None:
    # A forked worker must not share its parent's sockets, nor a pool lock another
    # thread held at the fork: it builds a pool of its own. redis-py closes the
    # inherited connections without shutting down the parent's.
    storage = ref()
    if storage is not None:
        storage._connect()
