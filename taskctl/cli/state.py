"""What every command shares: the config path, loaded on first use (so --help needs no config)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType

from taskctl.app import App, build_app
from taskctl.config import Settings, load_settings
from taskctl.errors import DatabaseError, UsageError
from taskctl.registry import SqliteRegistry
from taskctl.storage import FINAL

LIMIT_MAX = 1_000_000  # --limit: more than any screen, and SQLite's integers never overflow


@dataclass
class State:
    config: Path | None = None

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config)

    @cached_property
    def app(self) -> App:
        "The app for commands that write: the database is created if need be."
        return build_app(self.settings)

    @cached_property
    def writer(self) -> App:
        "The app for commands that change existing jobs: with no database there are none, and none is made."
        self.registry  # noqa: B018 - raises when there is no database
        return self.app

    @cached_property
    def reader(self) -> App:
        "The app for commands that only read: a missing database is not created."
        if "app" in self.__dict__:
            return self.app
        return build_app(self.settings, create=False)

    @cached_property
    def registry(self) -> SqliteRegistry:
        settings = self.settings
        if not settings.database.exists():
            raise DatabaseError(
                f"no database at {settings.database} yet: nothing has been queued there; "
                "start `taskctl run-consumer` or queue a job, or fix [taskctl] database if it is a typo"
            )
        self.reader  # noqa: B018 - opening the app migrates the schema before any query
        return SqliteRegistry(settings.database, settings.name, settings.tz, settings.busy_timeout)


TaskOption = Annotated[str | None, typer.Option("--task", help="Only this task (full name or unique suffix).")]


def finished_state(value: str | None) -> str | None:
    "A --state option: one of the states a job ends in."
    if value is not None and value not in FINAL:
        raise UsageError(f"--state {value!r} is not a finished state; use one of: {', '.join(FINAL)}")
    return value


def state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State)


def output(as_json: bool, document: Any, view: Callable[[int], RenderableType], soft_wrap: bool = False) -> None:
    "One JSON document for scripts, or the view built for the terminal's width."
    if as_json:
        typer.echo(json.dumps(document, indent=2, default=str, ensure_ascii=False))
        return
    out = console()
    out.print(view(out.width), soft_wrap=soft_wrap)


def console() -> Console:
    """stdout. With no TTY (a pipe, a file) rich drops colour by itself; tables get
    room to be whole rather than the 80 columns rich would assume."""
    width = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200
    return Console(file=sys.stdout, highlight=False, width=width)
