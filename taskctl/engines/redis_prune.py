"""Deleting from the Redis record in batches: what a `Selection` means in Redis's indexes.

Each batch is one script call of at most BATCH jobs (looking at VISIT index
entries at most), so no call holds Redis up for long.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from taskctl.engines import redis_scripts as lua
from taskctl.engines.base import DUE, Progress, Selection
from taskctl.model import FINAL

if TYPE_CHECKING:
    from taskctl.engines.redis_store import RedisJobStorage

BATCH = 500  # jobs per script call
VISIT = 5000  # index entries a purge script looks at, at most, per call
_FINAL = frozenset(s.value for s in FINAL)
_ALL = _FINAL | {"queued", "scheduled", "retrying", "running", DUE}
# The unfinished states a purge finds in each index, and all the states the index holds:
# when the two are the same (and no task is asked for), ZCOUNT counts them.
_WAITING = {
    lua.QUEUE: ({"queued"}, {"queued"}),
    lua.SCHEDULE: ({"scheduled", "retrying"}, {"scheduled", "retrying"}),
    lua.LEASES: ({"running", DUE}, {"running", DUE}),
}


def count(storage: RedisJobStorage, selection: Selection) -> int:
    if selection.kind == "jobs":
        return sum(_count_source(storage, source) for source in _Pick.of(selection).sources())
    return _results(storage, selection, None, delete=False)


def delete(storage: RedisJobStorage, selection: Selection, progress: Progress | None = None) -> int:
    if selection.kind == "jobs":
        return _delete(storage, _Pick.of(selection), progress)
    return _results(storage, selection, progress, delete=True)


def flush(storage: RedisJobStorage, states: set[str]) -> int:
    "Every job in these engine states (Huey's flush_queue and flush_schedule)."
    return _delete(storage, _Pick(frozenset(states)))


def _count_source(self: RedisJobStorage, source: _Source) -> int:
    key = self._key(source.key)
    if source.exact:
        return self.conn.zcount(key, source.low, source.high)
    return sum(1 for _ in _matching(self, source))


def _matching(self: RedisJobStorage, source: _Source, page: int = 1000) -> Iterator[str]:
    "Ids in the source's index (and score window) whose state and task match."
    offset = 0
    while True:
        members = self.conn.zrangebyscore(self._key(source.key), source.low, source.high, start=offset, num=page)
        ids = [m.decode() for m in members]
        if source.key in (lua.QUEUE, lua.SCHEDULE):
            ids = [lua.entry_id(i) for i in ids]
        pipe = self.conn.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(self._job_key(job_id), "state", "task")
        for job_id, (state, task) in zip(ids, pipe.execute(), strict=True):
            if state and state.decode() in source.states and source.task in (None, task and task.decode()):
                yield job_id
        if len(members) < page:
            return
        offset += page


def _delete(self: RedisJobStorage, pick: _Pick, progress: Progress | None = None) -> int:
    "Delete in batches of BATCH jobs, one script call each; returns how many went."
    deleted = 0
    window = ["" if v is None else v for v in (pick.before, pick.start, pick.until)]
    for source in pick.sources():
        states = ",".join(sorted(source.states))
        # The cursor counts the entries kept: entries that leave the index between two
        # calls shift later ones under it, so a walk that needed one is walked again.
        for _ in range(2):
            offset, resumed = 0, False
            while True:
                args = (source.key, source.low, source.high, offset, BATCH, VISIT, states, source.task or "")
                gone, kept, exhausted = self._run("delete", *args, *window)
                deleted += gone
                if progress and gone:
                    progress(gone)
                resumed, offset = resumed or offset > 0, offset + kept
                if exhausted:
                    break
            if not resumed:
                break
    return deleted


def _results(self: RedisJobStorage, selection: Selection, progress: Progress | None, delete: bool) -> int:
    """Kind "results": the cached results (of a task, or all). Kind "huey_results": Huey's
    stored return values of jobs in the record that nobody has read (`Result.get()`)."""
    task = selection.task
    if selection.kind == "results":
        key = self._key(lua.RESULTS)
        if task:
            done = int(self.conn.hdel(key, task) if delete else self.conn.hexists(key, task))
        else:
            done = self.conn.hlen(key)
            if delete:
                self.conn.delete(key)
        if progress and done and delete:
            progress(done)
        return done
    if selection.kind != "huey_results":  # never read an unknown kind as "every job"
        raise ValueError(f"unknown selection kind {selection.kind!r}")
    done, keys = 0, [name for name, _ in self.conn.hscan_iter(self._key(lua.HUEY_KV), count=BATCH)]
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        if delete:
            gone = self._run("delete_huey_results", task or "", *batch)
            if progress and gone:
                progress(gone)
        else:
            pipe = self.conn.pipeline(transaction=False)
            for name in batch:
                pipe.hmget(self._job_key(name.decode()), "state", "task")
            gone = sum(1 for state, t in pipe.execute() if state and (not task or t == task.encode()))
        done += gone
    return done


class _Source(NamedTuple):
    "One index a purge walks, the states it picks there, and the score window."

    key: str  # under the prefix
    states: frozenset[str]
    task: str | None
    low: str = "-inf"
    high: str = "+inf"
    exact: bool = False  # every entry in the window matches: ZCOUNT counts them


class _Pick(NamedTuple):
    "The jobs a Selection means (`due` goes with `queued`, as readers show it), and where they are."

    states: frozenset[str] | None
    task: str | None = None
    before: float | None = None  # finished_at < this
    start: float | None = None  # finished_at >= this
    until: float | None = None  # finished_at <= this

    @classmethod
    def of(cls, selection: Selection) -> _Pick:
        states = None if selection.states is None else frozenset(s.value for s in selection.states)
        if states is not None and "queued" in states:
            states |= {DUE}
        return cls(states, selection.task, selection.finished_before, selection.finished_from, selection.finished_until)

    def sources(self) -> list[_Source]:
        states = set(_ALL if self.states is None else self.states)
        if self.before is not None or self.start is not None or self.until is not None:
            states &= _FINAL  # only finished jobs have a finish time
        low, high = "-inf" if self.start is None else repr(self.start), "+inf"
        if self.before is not None and (self.until is None or self.before <= self.until):
            high = f"({self.before!r}"
        elif self.until is not None:
            high = repr(self.until)
        found, finals = [], frozenset(states & _FINAL)
        if finals and self.task:
            found.append(_Source(f"task:{self.task}", finals, self.task, low, high, finals == _FINAL))
        elif finals == _FINAL:
            found.append(_Source(lua.FINISHED, finals, None, low, high, True))
        else:
            found += [_Source(f"{lua.FINISHED}:{s}", frozenset({s}), None, low, high, True) for s in sorted(finals)]
        for index, (finds, holds) in _WAITING.items():
            if picked := frozenset(states & finds):
                found.append(_Source(index, picked, self.task, exact=not self.task and picked == holds))
        return found
