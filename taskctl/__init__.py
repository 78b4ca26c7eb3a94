"""taskctl: see and steer background jobs, on Huey, with SQLite (the default) or Redis."""

from taskctl.decorators import periodic, task
from taskctl.results import CachedResult, LatestResult, latest_result


def settings():  # type: ignore[no-untyped-def]
    "The loaded config.toml, for task modules: `settings().section('github')`."
    from taskctl.app import settings as _settings

    return _settings()


__all__ = ["CachedResult", "LatestResult", "latest_result", "periodic", "settings", "task"]
