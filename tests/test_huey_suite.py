"""Huey's own test-suite (the `huey.tests` package) run against taskctl's Huey, as the CLI builds it.

Every huey.tests class built on BaseTestCase is subclassed here, with `get_huey` returning the
Huey of `build_app` on a fresh folder. A test that fails because taskctl's Huey differs from the
bare Huey the test was written for is listed in KNOWN_DIFFERENCES (strict xfail): fix the
difference, and the test turns red until its entry is removed.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import shutil
import sys
import tempfile
import time
import unittest
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huey import Huey

from taskctl.app import build_app
from taskctl.config import load_settings

os.environ.setdefault("HUEY_SLOW_TESTS", "1")  # read when huey.tests is imported; HUEY_SLOW_TESTS= turns them off

_UTC = (
    "needs utc=False: with utc=True (the CLI's build, and bare SqliteHuey's default) Huey's local_to_utc "
    "truncates a naive datetime to the second; fails on bare SqliteHuey(utc=True) too"
)

# "Class::test": why taskctl's Huey fails a test that bare Huey passes (xfail, strict).
# Empty: every difference found is fixed. (The utc=False tests are skipped below:
# they fail on bare SqliteHuey(utc=True) too, and pytest-xdist can crash building
# their xfail report on CPython 3.11.7: "AST constructor recursion depth mismatch".)
KNOWN_DIFFERENCES: dict[str, str] = {}

_BACKEND = "tests another Huey backend, not taskctl's"
# Class or "Class::test": why it is not run against taskctl's Huey.
SKIPPED: dict[str, str] = {
    "TestMemoryStorage": "MemoryStorage's own tests (StorageTests run against taskctl as TestSqliteStorage)",
    "TestChordPrimitive::test_chord_bookkeeping_cleared": "reads MemoryStorage._counters",
    "TestCustomErrorMetadata": "its get_huey is a MemoryHuey subclass overriding build_error_result",
    "TestImmediateMemoryStorage": "its get_huey is a Huey on a storage that raises on every call",
    "TestWrappers": "builds Huey's wrapper class of every backend (redis too); never uses get_huey",
    "TestMiniHuey": "MiniHuey (gevent) is another class, with no storage",
    "TestQueue::test_expires": _UTC,
    "TestQueue::test_reschedule_expires": _UTC,
    "TestQueue::test_retrytask_eta_delay": _UTC,
    "TestSqliteStorage_redis::test_task_index": "SqliteStorage's own SQL index (its StorageTests run on Redis)",
    "TestSqliteStorage_redis::test_timeout": "SqliteStorage's own busy timeout (its StorageTests run on Redis)",
    **dict.fromkeys(
        (
            "TestRedisStorage",
            "TestRedisStorageWaitResult",
            "TestRedisExpireStorage",
            "TestPriorityRedisStorage",
            "TestPriorityRedisStorageNotBlocking",
            "TestRedisStorageOffline",
            "TestLockTaskSemaphore",
            "TestCySqliteStorage",
            "TestFileStorageMethods",
            "TestValkeyGlideStorage",
            "TestPostgresStorage",
            "TestSqlStorage",
            "TestDjangoTasksConsumer",
        ),
        _BACKEND,
    ),
}

# Huey(...) arguments a class's own get_huey passes and config.toml cannot express: set on the built Huey.
HUEY_OPTIONS: dict[str, dict[str, Any]] = {
    "TestImmediate": {"immediate": True},
    "TestDisableResultStore": {"results": False},
    "TestStoreIntermediateErrors": {"store_intermediate_errors": False},
}

ENGINES = ("sqlite", "redis")

CONFIG = """
[taskctl]
modules = ["huey_suite_tasks"]
{database}
busy_timeout = 3  # as the SqliteHuey(timeout=3) of Huey's TestSqliteStorage
[retention]
schedule = ""  # no built-in 'prune' task in the registry
"""


def taskctl_huey(engine: str, tmp: Path, redis_url: str | None = None) -> Huey:
    "taskctl's Huey for `engine`, built by the CLI's own path from a config.toml in `tmp`."
    if engine == "redis":
        database = f'database = "{redis_url}"\nname = "hs_{uuid.uuid4().hex[:12]}"'  # a queue of its own
    else:
        database = 'database = "taskctl.db"'
    (tmp / "huey_suite_tasks.py").write_text("")
    (tmp / "config.toml").write_text(CONFIG.format(database=database))
    return build_app(load_settings(tmp / "config.toml")).huey


def _set_tz(value: str | None) -> None:
    if value is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = value
    time.tzset()


def _get_huey(engine: str, options: dict[str, Any]) -> Callable[[unittest.TestCase], Huey]:
    def get_huey(self: unittest.TestCase) -> Huey:
        tmp = Path(tempfile.mkdtemp(prefix="huey-suite-"))
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        self.addCleanup(sys.path.__setitem__, slice(None), list(sys.path))  # build_app adds the folder
        self.addCleanup(sys.modules.pop, "huey_suite_tasks", None)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(tmp)  # Huey's sqlite tests open files by relative name
        # Huey's tests take naive datetime.now() for Huey's clock, true with utc=True only in UTC.
        self.addCleanup(_set_tz, os.environ.get("TZ"))
        _set_tz("UTC")
        huey = taskctl_huey(engine, tmp, getattr(self, "redis_url", None))
        self.addCleanup(huey.storage.close)
        for name, value in options.items():
            setattr(huey, name, value)
        return huey

    return get_huey


def _redis_server(self: unittest.TestCase, redis_url: str) -> None:
    "The session's redis-server (conftest), for the classes on the Redis engine."
    self.redis_url = redis_url  # type: ignore[attr-defined]


def _marked(test: Callable[..., Any], mark: pytest.MarkDecorator) -> Callable[..., Any]:
    "A copy of an inherited test, marked (the mark must not land on Huey's own function)."

    @functools.wraps(test)
    def run(self: unittest.TestCase) -> Any:
        return test(self)

    return mark(run)


def _adapt(case: type[unittest.TestCase], engine: str) -> type[unittest.TestCase]:
    name = case.__name__ if len(ENGINES) == 1 else f"{case.__name__}_{engine}"
    namespace: dict[str, Any] = {"__module__": __name__, "__qualname__": name}
    namespace["get_huey"] = _get_huey(engine, HUEY_OPTIONS.get(case.__name__, {}))
    if engine == "redis":
        namespace["_redis"] = pytest.fixture(autouse=True)(_redis_server)
    if skip := SKIPPED.get(name, SKIPPED.get(case.__name__)):
        namespace["pytestmark"] = [pytest.mark.skip(reason=skip)]
    for test in unittest.TestLoader().getTestCaseNames(case):
        # A key may name the engine's class ("TestQueue_redis::test_x") or all engines' ("TestQueue::test_x").
        keys = (f"{name}::{test}", f"{case.__name__}::{test}")
        if skip := next((SKIPPED[k] for k in keys if k in SKIPPED), None):
            namespace[test] = _marked(getattr(case, test), pytest.mark.skip(reason=skip))
        elif reason := next((KNOWN_DIFFERENCES[k] for k in keys if k in KNOWN_DIFFERENCES), None):
            namespace[test] = _marked(getattr(case, test), pytest.mark.xfail(strict=True, reason=reason))
    return type(name, (case,), namespace)


def _huey_cases() -> list[type[unittest.TestCase]]:
    "The test classes of huey.tests that use get_huey (BaseTestCase), each once."
    package = importlib.import_module("huey.tests")
    base = importlib.import_module("huey.tests.base").BaseTestCase
    names = [m.name for m in pkgutil.iter_modules(package.__path__, "huey.tests.") if ".test_" in m.name]
    return [
        value
        for module in map(importlib.import_module, names)
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, base)
        and value.__module__ == module.__name__
        and unittest.TestLoader().getTestCaseNames(value)
    ]


def _adapted_cases() -> dict[str, type[unittest.TestCase]]:
    cases = _huey_cases()
    return {cls.__name__: cls for cls in (_adapt(case, engine) for engine in ENGINES for case in cases)}


# pytest collects every TestCase class in the module's namespace: only the adapted ones are there.
globals().update(_adapted_cases())
