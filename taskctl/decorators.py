"""`@task` and `@periodic`: what task modules import.

Task modules are imported before (or without) a Huey app, so the decorators
only declare the task, and a declaration never changes. Each app that app.py
builds binds the declarations of its modules to its own Huey; calling a task
(or `.schedule()`, `.s()`, `.revoke()`...) enqueues it through the latest app
that has it, as in Huey, and `.func` is the plain function for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:  # importing taskctl must not import Huey (web apps read results only)
    from huey.api import TaskWrapper


class TaskProxy:
    """A task function as declared in a module; behaves like Huey's TaskWrapper."""

    def __init__(
        self, func: Callable[..., Any], options: Mapping[str, Any], cron: str | None = None, catch_up: Any = None
    ):
        for attr, value in (
            ("func", func),
            ("options", MappingProxyType(dict(options))),
            ("cron", cron),
            ("catch_up", catch_up),  # a catchup.CatchUp, for @periodic
            ("__doc__", func.__doc__),
            ("__name__", func.__name__),
            ("__module__", func.__module__),
        ):
            object.__setattr__(self, attr, value)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"{self!r} is a declaration and does not change; apps hold their own bindings")

    @property
    def name(self) -> str:
        "Huey's registry name: module.function (or module.<name=...>)."
        return f"{self.func.__module__}.{self.options.get('name') or self.func.__name__}"

    def bound(self) -> TaskWrapper:
        "This task in the app a plain call goes to (the CLI's, else one built from the config)."
        from taskctl.app import app_for  # at call time only: declaring a task needs no app

        return app_for(self.name).wrapper(self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.bound()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        # schedule(), s(), revoke()... come from Huey's TaskWrapper.
        if attr.startswith("__"):
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


def periodic(
    cron: str, catch_up: str = "once", catch_up_within: str | float = "1d", **options: Any
) -> Callable[[Callable[..., Any]], TaskProxy]:
    """Declare a task that runs on a cron schedule (`[schedules]` in config.toml wins).
    A run missed while no consumer ran (a laptop asleep) runs once when one starts,
    if it is less than `catch_up_within` old; `catch_up="skip"` skips it."""
    from taskctl.catchup import parse  # light: no Huey

    def declare(func: Callable[..., Any]) -> TaskProxy:
        where = f"@periodic on {func.__module__}.{func.__name__}"
        return TaskProxy(func, options, cron=cron, catch_up=parse(catch_up, catch_up_within, where))

    return declare
