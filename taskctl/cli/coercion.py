"""Typer's per-parameter coercion, without pydantic for the plain values taskctl takes.

Typer 0.29 coerces every parameter but a bool flag through a pydantic TypeAdapter,
built when the parameter is first processed, even for an option left at its
default: any command but `--help` imports pydantic (~90 ms here, more than the
rest of `taskctl status`). taskctl's parameters are plain: bool, str, int and
float (with min/max), Path, and lists of str. For those, a value that typer would take
as it is, or convert in the one obvious way, is converted here; every other value
(a bad one, or an unusual spelling such as ' 5', '1_000' or '007') goes to typer's
own coercion, so each result and each error message is still typer's. Commands
declared with `cls=PlainCommand` (groups: PlainGroup) get it.

It uses private names of typer, pinned beside its version in pyproject.toml: a
parameter's `type_descriptor` and `_runtime_param` (the coercion typer caches on
it, which is set here before typer builds its own), and `typer._coercion.build_runtime_param`.
If they move, `install` leaves typer's coercion in place (slower, but right).
"""

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.core import TyperCommand, TyperGroup

_MISSING = object()  # "not for the fast path": typer's own coercion decides
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")  # no sign, blank, underscore or leading zero typer reads its own way
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,17})?")
_PATH_DEFAULTS = {
    "exists": False,
    "file_okay": True,
    "dir_okay": True,
    "writable": False,
    "readable": True,
    "resolve_path": False,
    "allow_dash": False,
    "path_type": None,
}


class PlainCoercion:
    "Gives the parameters of a command (its --help too, which click makes per context) the plain coercion."

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            install(param)
        return params


class PlainCommand(PlainCoercion, TyperCommand):
    "A Typer command whose plain parameters are coerced without pydantic."


class PlainGroup(PlainCoercion, TyperGroup):
    "A Typer group whose plain parameters are coerced without pydantic."


def install(param: Any) -> None:
    "The plain coercion for `param`, where it applies and typer has not built its own yet."
    if getattr(param, "_runtime_param", _MISSING) is None and hasattr(param, "type_descriptor"):
        convert = _converter(param.type_descriptor)
        if convert is not None:
            param._runtime_param = PlainParam(param.type_descriptor, convert, _multiple(param))


class PlainParam:
    "Typer's RuntimeParam contract (`coerce`), for one parameter: the plain conversion, else typer's own."

    def __init__(self, descriptor: Any, convert: Callable[[Any], Any], multiple: bool) -> None:
        self.descriptor, self.convert, self.multiple = descriptor, convert, multiple
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # as typer's RuntimeParam.coerce, before it looks at the type
            return () if self.multiple else None
        converted = self.convert(value)
        if converted is not _MISSING:
            return converted
        if self._typer is None:
            from typer._coercion import build_runtime_param  # imports pydantic

            self._typer = build_runtime_param(self.descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


def _multiple(param: Any) -> bool:
    return bool(param.multiple or param.nargs == -1)


def _converter(descriptor: Any) -> Callable[[Any], Any] | None:
    "The plain conversion of a parameter's values, or None when typer's is the only one."
    annotation, info = descriptor.annotation, descriptor.parameter_info
    if info.parser is not None or descriptor.file_annotation is not None:
        return None
    if annotation is bool:  # typer skips its coercion of a flag's bool, but not of its default None
        return _flag
    if annotation is str:
        return _text
    if annotation == list[str]:
        return _texts
    if annotation is int or annotation is float:
        if info.clamp:
            return None
        return _number(annotation, info.min, info.max)
    if annotation is Path and all(getattr(info, k, v) == v for k, v in _PATH_DEFAULTS.items()):
        return _path
    return None


def _flag(value: Any) -> Any:
    return value if type(value) is bool else _MISSING


def _text(value: Any) -> Any:
    return value if type(value) is str else _MISSING


def _texts(value: Any) -> Any:
    if type(value) in (tuple, list) and all(type(item) is str for item in value):
        return list(value)
    return _MISSING


def _number(kind: type, low: float | None, high: float | None) -> Callable[[Any], Any]:
    pattern = _INTEGER if kind is int else _DECIMAL

    def convert(value: Any) -> Any:
        if type(value) is str and pattern.fullmatch(value):
            value = kind(value)
        elif type(value) is not kind:
            return _MISSING
        if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
            return _MISSING  # typer says what is wrong with it
        return value

    return convert


def _path(value: Any) -> Any:
    # Typer's checks with the default flags: an existing file or folder must be readable.
    if type(value) is not str or not value or "\0" in value:
        return _MISSING
    try:
        os.stat(value)
    except OSError:
        return Path(value)
    return Path(value) if os.access(value, os.R_OK) else _MISSING
