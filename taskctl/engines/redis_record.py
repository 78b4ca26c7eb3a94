"""The Redis engine's read side: what `status`, `show`, `history` and `latest_result` ask.

Every answer comes from an index: counts from the counts hash, lists from
sorted-set ranges with a LIMIT, then one pipelined HMGET of the fields shown.
It never reads a job's `data` (the pickled message), so nothing here unpickles,
and it imports neither Huey nor the write side: a web app opens it from a URL.
The key layout is drawn in redis_scripts.py.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from redis import Redis

from taskctl.engines import redis_scripts as lua
from taskctl.engines.base import Consumer, job_from_fields, shown_state
from taskctl.model import RAN, Attempt, CachedResult, Job, Outcome, Run, State, listed

_JOB_FIELDS = (
    "id", "task", "state", "args", "kwargs", "priority", "eta", "enqueued_at", "started_at", "finished_at",
    "duration", "attempts", "worker_host", "worker_pid", "worker_thread", "error_type", "error_message",
    "traceback", "result_preview", "retry_of", "retried_as",
)  # fmt: skip
PAGE = 200  # ids per round trip when a list is filtered as it is read


class RedisRecord:
    def __init__(self, url: str, queue: str, password: str | None = None, **options: Any) -> None:
        self.queue = queue
        self.prefix = lua.prefix(queue)
        if password:
            options["password"] = password
        # Any: redis-py types every reply `bytes | str`; this client decodes them to str.
        self.conn: Any = Redis.from_url(url, decode_responses=True, **options)

    def counts(self) -> dict[State, int]:
        counts = dict.fromkeys(State, 0)
        for state, n in self.conn.hgetall(self._key(lua.COUNTS)).items():
            counts[shown_state(state)] += int(n)
        return counts

    def queued(self, limit: int) -> list[Job]:
        return self._jobs(lua.entry_id(e) for e in self.conn.zrange(self._key(lua.QUEUE), 0, limit - 1))

    def scheduled(self, limit: int) -> list[Job]:
        return self._jobs(lua.entry_id(e) for e in self.conn.zrange(self._key(lua.SCHEDULE), 0, limit - 1))

    def running(self, limit: int) -> list[Job]:
        "Running jobs, the longest running first: the leases hold them (few: one per worker) and due ones."
        ids = self.conn.zrange(self._key(lua.LEASES), 0, -1)
        pipe = self.conn.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(lua.job_key(self.queue, job_id), "state", "started_at")
        started = {i: float(t) for i, (s, t) in zip(ids, pipe.execute(), strict=True) if s == "running" and t}
        return self._jobs(sorted(started, key=started.__getitem__)[:limit])

    def failed(self, limit: int) -> list[Job]:
        return self._jobs(self.conn.zrevrange(self._key(f"{lua.FINISHED}:failed"), 0, limit - 1))

    def job(self, job_id: str) -> Job | None:
        jobs = self._jobs([job_id])
        return jobs[0] if jobs else None

    def consumers(self) -> list[Consumer]:
        entries = self.conn.hgetall(self._key(lua.CONSUMERS)).items()
        return sorted((consumer_from_entry(owner, raw, self.queue) for owner, raw in entries), key=_started)

    def job_ids(self, prefix: str, limit: int) -> list[str]:
        "Ids that start with `prefix` (a lexicographic range, not a scan)."
        low = prefix.lower()
        return self.conn.zrangebylex(self._key(lua.IDS), f"[{low}", f"[{low}\U0010ffff", start=0, num=limit)

    def attempts(self, job_id: str) -> list[Attempt]:
        fields: dict[int, dict[str, str]] = defaultdict(dict)
        for name, value in self.conn.hgetall(lua.attempts_key(self.queue, job_id)).items():
            n, _, field = name.partition(":")
            fields[int(n)][field] = value
        return [_attempt(job_id, n, fields[n]) for n in sorted(fields) if "started_at" in fields[n]]

    def history(
        self, limit: int, task: str | None = None, state: State | None = None, since: float | None = None
    ) -> list[Job]:
        "Finished jobs, newest first."
        index = f"task:{task}" if task else f"{lua.FINISHED}:{state.value}" if state else lua.FINISHED
        wanted = {state.value} if state and task else None
        return self._newest(index, limit, since, wanted)

    def finished_since(self, since: float, task: str | None = None) -> list[Run]:
        "What `stats` counts: every finished job since `since`, oldest first, with the fields stats reads."
        index = self._key(f"task:{task}" if task else lua.FINISHED)
        jobs: list[Run] = []
        offset = 0
        while True:
            ids = self.conn.zrangebyscore(index, since, "+inf", start=offset, num=1000)
            pipe = self.conn.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(self._job_key(job_id), "task", "state", "finished_at", "duration")
            for t, s, finished, took in pipe.execute():
                if s:
                    jobs.append(Run(t, State(s), _float(finished) or 0.0, _float(took)))
            if len(ids) < 1000:
                return jobs
            offset += len(ids)

    def last_run(self, task: str) -> Job | None:
        "The task's latest job that ran to an end (succeeded or failed)."
        jobs = self._newest(f"task:{task}", 1, None, {s.value for s in RAN})
        return jobs[0] if jobs else None

    def has_task(self, task: str) -> bool:
        return bool(self.conn.hexists(self._key(lua.TASKS), task))

    def tasks_with_history(self) -> list[str]:
        return sorted(self.conn.smembers(self._key(lua.HISTORY)))

    def nth_finished(self, task: str, n: int, exclude: frozenset[State]) -> float | None:
        "When the task's n-th newest finished job (from 0) not in `exclude` finished."
        index = self._key(f"task:{task}")
        if not exclude:  # a rank, O(log N)
            found = self.conn.zrevrange(index, n, n, withscores=True)
            return found[0][1] if found else None
        skip = {s.value for s in exclude}
        for _, state, finished in self._walk(index, newest=True):
            if state not in skip:
                if n == 0:
                    return finished
                n -= 1
        return None

    def retryable(self, limit: int, task: str | None = None) -> list[Job]:
        "Failed jobs not retried yet, in the order they failed."
        ids = []
        for job_id, _, _ in self._walk(self._key(lua.RETRYABLE), newest=False, task=task):
            ids.append(job_id)
            if len(ids) == limit:
                break
        return self._jobs(ids)

    def results(self, limit: int | None = None) -> list[CachedResult]:
        tasks = sorted(self.conn.hkeys(self._key(lua.RESULTS)))[:limit]
        values = self.conn.hmget(self._key(lua.RESULTS), tasks) if tasks else []
        return [listed(_result(t, v)) for t, v in zip(tasks, values, strict=True) if v is not None]

    def result(self, task: str) -> CachedResult | None:
        "The cached result of `task`, by full name or a unique suffix at a dot."
        key = self._key(lua.RESULTS)
        value = self.conn.hget(key, task)
        if value is None:
            matches = [name for name in self.conn.hkeys(key) if name.endswith("." + task)]
            if len(matches) != 1:
                return None
            task, value = matches[0], self.conn.hget(key, matches[0])
        return None if value is None else _result(task, value)

    def known_tasks(self) -> list[str]:
        "The tasks consumers registered, those with jobs, and those with a cached result."
        names = set(self.conn.smembers(self._key(lua.KNOWN_TASKS)))
        names.update(self.conn.hkeys(self._key(lua.TASKS)), self.conn.hkeys(self._key(lua.RESULTS)))
        return sorted(names)

    def close(self) -> None:
        self.conn.close()

    # -- helpers ------------------------------------------------------------

    def catalog(self) -> str | None:
        "What the latest consumer to start recorded it runs (catalog.py's JSON), if any did."
        text: str | None = self.conn.get(self._key(lua.CATALOG))
        return text

    def slot_taken(self, task: str, at: float) -> bool:
        "Has the periodic run of `task` for the minute `at` been queued?"
        return bool(self.conn.exists(self._key(lua.slot(task, at))))

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _job_key(self, job_id: str) -> str:
        return lua.job_key(self.queue, job_id)

    def _jobs(self, ids: Any) -> list[Job]:
        ids = list(ids)
        pipe = self.conn.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self._job_key(job_id), _JOB_FIELDS)
        return [job_from_fields(dict(zip(_JOB_FIELDS, values, strict=True))) for values in pipe.execute() if values[2]]

    def _newest(self, index: str, limit: int, since: float | None, states: set[str] | None) -> list[Job]:
        "Up to `limit` jobs of a finished index, newest first, finished at or after `since`."
        if states is None:
            low = "-inf" if since is None else since
            return self._jobs(self.conn.zrevrangebyscore(self._key(index), "+inf", low, start=0, num=limit))
        ids = []
        for job_id, state, _ in self._walk(self._key(index), newest=True, since=since):
            if state in states:
                ids.append(job_id)
                if len(ids) == limit:
                    break
        return self._jobs(ids)

    def _walk(
        self, key: str, newest: bool, since: float | None = None, task: str | None = None
    ) -> Iterator[tuple[str, str, float]]:
        "(id, state, score) of a sorted set's jobs, a page per round trip, for filters no index holds."
        low = "-inf" if since is None else since
        offset = 0
        while True:
            if newest:
                page = self.conn.zrevrangebyscore(key, "+inf", low, start=offset, num=PAGE, withscores=True)
            else:
                page = self.conn.zrangebyscore(key, low, "+inf", start=offset, num=PAGE, withscores=True)
            pipe = self.conn.pipeline(transaction=False)
            for job_id, _ in page:
                pipe.hmget(self._job_key(job_id), "state", "task")
            for (job_id, score), (state, t) in zip(page, pipe.execute(), strict=True):
                if state and task in (None, t):
                    yield job_id, state, score
            if len(page) < PAGE:
                return
            offset += PAGE


def _attempt(job_id: str, n: int, row: dict[str, str]) -> Attempt:
    return Attempt(
        job_id,
        n,
        float(row["started_at"]),
        finished_at=_float(row.get("finished_at")),
        duration=_float(row.get("duration")),
        worker=row.get("worker"),
        outcome=Outcome(row.get("outcome", "running")),
        error_type=row.get("error_type"),
        error_message=row.get("error_message"),
        traceback=row.get("traceback"),
    )


def _result(task: str, text: str) -> CachedResult:
    document = json.loads(text)
    return CachedResult(task, document["job_id"], document["value"], document["computed_at"], document["duration"])


def _float(text: str | None) -> float | None:
    return None if text is None else float(text)


def consumer_entry(me: Consumer) -> str:
    "A consumer's entry in the consumers hash (its key is the owner)."
    return json.dumps({"host": me.host, "pid": me.pid, "started_at": me.started_at, "beat_at": me.beat_at,
                       "about": me.about()})  # fmt: skip


def consumer_from_entry(owner: str, raw: str | bytes, queue: str) -> Consumer:
    info = json.loads(raw)
    return Consumer.recorded(
        owner, info["host"], info["pid"], info["started_at"], info["beat_at"], queue, info.get("about")
    )


def _started(consumer: Consumer) -> float:
    return consumer.started_at
