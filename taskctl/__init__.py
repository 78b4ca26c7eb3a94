"""taskctl: see and steer background jobs, on Huey, with SQLite (the default) or Redis."""

from typing import TYPE_CHECKING, Any

from taskctl.decorators import periodic, task

__version__ = "0.1.0"

if TYPE_CHECKING:
    from taskctl.results import CachedResult, LatestResult, latest_result

_RESULTS = ("CachedResult", "LatestResult", "latest_result")


def __getattr__(name: str) -> Any:
    # A task module imports `task` alone: the read path (and its engines) loads on first use.
    if name in _RESULTS:
        from taskctl import results

        return getattr(results, name)
    raise AttributeError(f"module 'taskctl' has no attribute {name!r}")


def settings():  # type: ignore[no-untyped-def]
    "The loaded config.toml, for task modules: `settings().section('github')`."
    from taskctl.app import settings as _settings

    return _settings()


__all__ = ["CachedResult", "LatestResult", "latest_result", "periodic", "settings", "task"]
