"""What every command shares: the config path, loaded on first use (so --help needs no config).

Imports what a command needs when it needs it: `--help`, and every command's
parsing, must not pay for rich's console, the engines or the config loader."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

import typer

from taskctl import completion as complete

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from taskctl.app import App
    from taskctl.catalog import Catalog
    from taskctl.config import Settings
    from taskctl.engines.base import Record
    from taskctl.model import State

LIMIT_MAX = 1_000_000  # --limit: more than any screen, and SQLite's integers never overflow


@dataclass
class Session:
    config: Path | None = None

    @cached_property
    def settings(self) -> Settings:
        from taskctl.config import load_settings

        return load_settings(self.config)

    @property
    def tz(self) -> tzinfo:
        return self.settings.tz

    @cached_property
    def app(self) -> App:
        "The app for commands that write: the database is created if need be, unless it was moved."
        from taskctl.app import build_app  # Huey and the engines load only for a command that needs them
        from taskctl.errors import DatabaseError

        app = build_app(self.settings)
        if where := app.store.moved_to():
            raise DatabaseError(
                f"{self.settings.location} was moved to {where} by `taskctl move`; its jobs run there now: "
                f'set [taskctl] database = "{where}" in {self.settings.path}'
            )
        return app

    @cached_property
    def writer(self) -> App:
        "The app for commands that change existing jobs: with no database there are none, and none is made."
        from taskctl.engines import require_database

        require_database(self.settings)
        return self.app

    @property
    def checker(self) -> App:
        "The app to check a command against before it writes: with no database yet, one that makes none."
        if self.settings.engine == "sqlite" and not self.settings.database.exists():
            return self.reader
        return self.app

    @cached_property
    def reader(self) -> App:
        "The app for commands that only read: a missing database is not created."
        if "app" in self.__dict__:
            return self.app
        from taskctl.app import build_app

        return build_app(self.settings, create=False)

    @cached_property
    def record(self) -> Record:
        """The read side; raises when there is no database yet, or one whose schema only
        a command that writes may upgrade. Builds no app: Huey and the task modules stay unloaded."""
        from taskctl.engines import open_record, refuse_outdated

        refuse_outdated(self.settings)
        return open_record(self.settings)

    @cached_property
    def catalog(self) -> Catalog:
        return self.current_catalog()

    def current_catalog(self) -> Catalog:
        """The tasks a consumer runs, as the record has them now, with what differs on disk;
        built from disk (Huey, the task modules) only when no consumer recorded them,
        or the disk changed while none runs. See catalog.py."""
        from taskctl import catalog, presence

        record = self.record_if_any
        lease = self.settings.lease
        return catalog.current(
            self.settings, record, lambda: record is not None and presence.any_alive(record, lease), lambda: self.reader
        )

    @cached_property
    def record_if_any(self) -> Record | None:
        "The read side, or None while nothing has been written (a SQLite file not made, or being made)."
        from taskctl.errors import NoDatabase

        try:
            return self.record
        except NoDatabase:
            return None


TaskOption = Annotated[
    str | None,
    typer.Option("--task", help="Only this task (full name or unique suffix).", autocompletion=complete.task_names),
]


def finished_state(value: str | None) -> State | None:
    "A --state option: one of the states a job ends in."
    from taskctl.errors import UsageError
    from taskctl.model import FINAL, State

    if value is None:
        return None
    names = [s.value for s in State if s in FINAL]
    if value not in names:
        raise UsageError(f"--state {value!r} is not a finished state; use one of: {', '.join(names)}")
    return State(value)


def state(ctx: typer.Context) -> Session:
    return ctx.ensure_object(Session)


def output(
    as_json: bool, document: Callable[[], Any], view: Callable[[int], RenderableType], soft_wrap: bool = False
) -> None:
    "One JSON document for scripts, or the view built for the terminal's width."
    if as_json:
        from taskctl.model import dumps

        typer.echo(dumps(document()))
        return
    out = console()
    out.print(view(out.width), soft_wrap=soft_wrap)


def console() -> Console:
    """stdout. With no TTY (a pipe, a file) rich drops colour by itself; tables get
    room to be whole rather than the 80 columns rich would assume, and lose the
    spaces rich pads each line with up to the table's width."""
    from rich.console import Console

    # emoji=False: a `:name:` in a header or a value stays text (and rich's emoji table, ~4 ms, unloaded).
    if sys.stdout.isatty():
        return Console(file=sys.stdout, highlight=False, emoji=False)
    width = None if "COLUMNS" in os.environ else 200
    # rich needs only write, flush and isatty of its file.
    return Console(file=cast(TextIO, TrimmedLines(sys.stdout)), highlight=False, width=width, emoji=False)


class TrimmedLines(io.TextIOBase):
    "A text stream that writes each line without its trailing spaces."

    def __init__(self, target: TextIO) -> None:
        self.target, self.pending = target, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        if lines:
            self.target.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self.pending:  # rich writes whole lines; a partial one is kept as it is
            self.target.write(self.pending)
            self.pending = ""
        self.target.flush()

    def isatty(self) -> bool:
        return False
