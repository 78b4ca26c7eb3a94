"""`@task` and `@periodic`: what task modules import.

Task modules are imported before (or without) a Huey app, so the decorators
only describe the task. app.py binds each one to the Huey instance it builds
from the config; after that, calling the task enqueues it, as in Huey, and
`.func` is the plain function for tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:  # importing taskctl must not import Huey (web apps read results only)
    from huey.api import TaskWrapper


class TaskProxy:
    """A task function as declared in a module; behaves like Huey's TaskWrapper once bound."""

    def __init__(self, func: Callable[..., Any], options: dict[str, Any], cron: str | None = None):
        self.func = func
        self.options = options
        self.cron = cron
        self.wrapper: TaskWrapper | None = None
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__
        self.__module__ = func.__module__

    @property
    def name(self) -> str:
        "Huey's registry name: module.function (or module.<name=...>)."
        return f"{self.func.__module__}.{self.options.get('name') or self.func.__name__}"

    def bound(self) -> TaskWrapper:
        if self.wrapper is None:
            from taskctl.app import default_app

            default_app()
        assert self.wrapper is not None, f"{self.name} is not in the config's modules"
        return self.wrapper

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.bound()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        # schedule(), s(), revoke()... come from Huey's TaskWrapper.
        if attr.startswith("__") or attr in ("func", "options", "cron", "wrapper"):
            raise AttributeError(attr)
        return getattr(self.bound(), attr)

    def __repr__(self) -> str:
        return f"<task {self.name}>"


@overload
def task(func: Callable[..., Any], /) -> TaskProxy: ...
@overload
def task(**options: Any) -> Callable[[Callable[..., Any]], TaskProxy]: ...
def task(func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Declare an on-demand task. Takes Huey's options: retries, retry_delay,
    retry_backoff, priority, timeout, expires, name, context."""
    if func is not None:
        return TaskProxy(func, options)
    return lambda f: TaskProxy(f, options)


def periodic(cron: str, **options: Any) -> Callable[[Callable[..., Any]], TaskProxy]:
    """Declare a task that runs on a cron schedule (`[schedules]` in config.toml wins)."""
    return lambda f: TaskProxy(f, options, cron=cron)
