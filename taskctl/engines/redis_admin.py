"""The Redis store's housekeeping, apart from job states, as sqlite_admin.py is SQLite's:
Huey's result store and counters, which consumers are alive and what the latest one
runs, the import that `taskctl move` writes, and the check of Redis's eviction policy."""

from __future__ import annotations

import json
import logging
from typing import Any

from huey.constants import EmptyData
from redis import ConnectionError as RedisConnectionError
from redis import Redis, RedisError

from taskctl.engines import redis_scripts as lua
from taskctl.engines.base import Consumer, RevokeFlags
from taskctl.engines.redis_record import consumer_entry, consumer_from_entry

logger = logging.getLogger("taskctl.engines.redis")


class RedisAdmin:
    "Mixed into RedisJobStorage: `conn`, `name`, `owner`, `_flags`, `_key` and `_run` are its."

    conn: Any
    name: str
    owner: str
    _flags: RevokeFlags
    _key: Any
    _run: Any

    # -- Huey's result store and counters: a hash each, as Huey's RedisStorage keeps them

    def put_data(self, key: bytes | str, value: bytes, is_result: bool = False) -> None:
        self.conn.hset(self._key(lua.HUEY_KV), key, value)

    def peek_data(self, key: bytes | str) -> Any:
        value = self.conn.hget(self._key(lua.HUEY_KV), key)
        return EmptyData if value is None else value

    def peek_many(self, keys: list[Any]) -> dict[Any, bytes]:
        if self._flags.known_absent(keys):
            return {}
        values = self.conn.hmget(self._key(lua.HUEY_KV), keys) if keys else []
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    def pop_data(self, key: bytes | str) -> Any:
        pipe = self.conn.pipeline()  # MULTI: two readers never both get the value
        pipe.hget(self._key(lua.HUEY_KV), key)
        pipe.hdel(self._key(lua.HUEY_KV), key)
        value, _ = pipe.execute()
        return EmptyData if value is None else value

    def delete_data(self, key: bytes | str) -> bool:
        return self.conn.hdel(self._key(lua.HUEY_KV), key) != 0

    def has_data_for_key(self, key: bytes | str) -> bool:
        return bool(self.conn.hexists(self._key(lua.HUEY_KV), key))

    def put_if_empty(self, key: bytes | str, value: bytes, ttl: float | None = None) -> bool:
        if ttl is not None:  # HEXPIRE needs Redis 7.4; taskctl supports 7.0
            raise NotImplementedError("ttl is not supported by this storage.")
        return bool(self.conn.hsetnx(self._key(lua.HUEY_KV), key, value))

    def result_store_size(self) -> int:
        return self.conn.hlen(self._key(lua.HUEY_KV))

    def result_items(self) -> dict[str, bytes]:
        return {k.decode(): v for k, v in self.conn.hgetall(self._key(lua.HUEY_KV)).items()}

    def flush_results(self) -> None:
        self.conn.delete(self._key(lua.HUEY_KV))

    def incr(self, key: str, amount: int = 1) -> int:
        return self.conn.hincrby(self._key(lua.HUEY_COUNTERS), key, amount)

    def delete_counter(self, key: str) -> None:
        self.conn.hdel(self._key(lua.HUEY_COUNTERS), key)

    def flush_counters(self) -> None:
        self.conn.delete(self._key(lua.HUEY_COUNTERS))

    # -- presence, the catalog, and `move`'s import -------------------------

    def beat(self, me: Consumer, forget_before: float) -> None:
        "This consumer is alive (a hash of consumers, each with its last beat); long-dead ones are forgotten."
        self.conn.hset(self._key(lua.CONSUMERS), self.owner, consumer_entry(me))
        self.consumers(forget_before)

    def register_tasks(self, names: list[str]) -> None:
        "The tasks a consumer serves, kept (with those of earlier ones) for readers that import no task module."
        if names:
            self.conn.sadd(self._key(lua.KNOWN_TASKS), *names)

    def record_catalog(self, text: str, at: float) -> None:
        "What this consumer runs (catalog.py's JSON), replacing what an earlier one recorded."
        self.conn.set(self._key(lua.CATALOG), text)

    def leave(self) -> None:
        self.conn.hdel(self._key(lua.CONSUMERS), self.owner)

    def consumers(self, alive_since: float) -> list[Consumer]:
        "Consumers whose last beat is at or after `alive_since`; older entries are forgotten."
        found: list[Consumer] = []
        gone: list[Consumer] = []
        for owner, raw in self.conn.hgetall(self._key(lua.CONSUMERS)).items():
            consumer = consumer_from_entry(owner.decode(), raw, self.name)
            (gone if consumer.beat_at < alive_since else found).append(consumer)
        if gone:
            self.conn.hdel(self._key(lua.CONSUMERS), *(c.owner for c in gone))
        return sorted(found, key=lambda c: c.started_at)

    def moved_to(self) -> str | None:
        "Redis is where a record moves to, never from."
        return None

    def import_job(self, job: dict[str, Any], attempts: list[dict[str, Any]]) -> bool:
        "A job copied from another engine, as it was; False if it is here already."
        fields = [x for name, value in job.items() if value is not None for x in (name, _text(value))]
        marks = [x for a in attempts for name, value in a.items() if value is not None
                 for x in (f"{a['attempt']}:{name}", _text(value))]  # fmt: skip
        return bool(self._run("import", job["id"], *fields, "--", *marks))

    def import_result(
        self, task: str, job_id: str, value_json: str, computed_at: float, duration: float | None
    ) -> None:
        "A cached result copied from another engine; a newer one here is kept."
        key = self._key(lua.RESULTS)
        current = self.conn.hget(key, task)
        if current is not None and json.loads(current)["computed_at"] >= computed_at:
            return
        tail = f', "computed_at": {computed_at!r}, "duration": {json.dumps(duration)}}}'
        self.conn.hset(key, task, result_head(job_id, value_json) + tail)


def result_head(job_id: str, value_json: str) -> str:
    "A cached result's JSON up to its value; the succeed script adds when and how long (JSON is never parsed there)."
    return '{"job_id": ' + json.dumps(job_id) + ', "value": ' + value_json


def _text(value: Any) -> bytes | str:
    "A value as a hash field holds it: bytes as they are (a message), numbers in full."
    return value if isinstance(value, bytes | str) else repr(value) if isinstance(value, float) else str(value)


def check_eviction(conn: Redis) -> None:
    "Redis evicting keys under memory pressure would delete jobs: only noeviction is safe."
    try:
        policy = conn.config_get("maxmemory-policy").get("maxmemory-policy")
    except RedisConnectionError:
        return  # not reachable yet: the first command says so
    except RedisError as exc:  # CONFIG disabled, as on some managed services
        logger.info("Could not read Redis's maxmemory-policy (%s); it must be noeviction.", exc)
        return
    if policy != "noeviction":
        logger.warning(
            "Redis's maxmemory-policy is %s: under memory pressure Redis would delete jobs. "
            "Set it to noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf).",
            policy,
        )
