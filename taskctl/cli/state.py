"""What every command shares: the config path, loaded on first use (so --help needs no config)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import typer
from rich.console import Console

from taskctl.app import App, build_app
from taskctl.config import Settings, load_settings
from taskctl.registry import SqliteRegistry


@dataclass
class State:
    config: Path | None = None

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config)

    @cached_property
    def app(self) -> App:
        return build_app(self.settings)

    @cached_property
    def registry(self) -> SqliteRegistry:
        settings = self.app.settings  # builds the app first: the schema is migrated
        return SqliteRegistry(settings.database, settings.name, settings.tz, settings.busy_timeout)


def state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State)


def console() -> Console:
    "stdout; with no TTY (a pipe) rich drops colour by itself."
    return Console(file=sys.stdout, highlight=False)
