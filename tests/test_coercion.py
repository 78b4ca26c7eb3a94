"""The plain coercion (cli/coercion.py) gives what typer's own gives, value for value and
error for error, for every parameter of every command; and it spares `status` pydantic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer._coercion import build_runtime_param

from taskctl.cli import app, coercion
from tests.test_fast_start import loaded

TEXTS = ["", "x", " 5", "5", "-3", "0", "007", "+5", "1_0", "1.5", "2.50", "-0", "1e3", "inf", "nan", "-inf",
         "abc", "\uff15", "99999999999999999999", "1000000", "1000001", "0.2", "0.1", "3600", "3600.5", "86400",
         "café", "a//b", "a=b", "-", "\0"]  # fmt: skip
OTHERS: list[Any] = [None, True, False, 0, 20, 2.0, 300.0, 3, 1.5, (), ("a", "b"), ["x"], ("a", 1), Path("p")]


def parameters() -> list[tuple[str, Any]]:
    "Every parameter of every command, by its command path."
    found = []

    def walk(command: Any, path: str) -> None:
        for param in command.params:
            found.append((f"{path} {param.name}", param))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "taskctl")
    return found


def outcome(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        got = runtime.coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as exc:
        return "error", exc.format_message()
    except Exception as exc:  # typer's own may raise something else for a value no command line gives
        return "raised", f"{type(exc).__name__}: {exc}"
    return "value", (type(got), repr(got))  # repr: NaN is not equal to itself


@pytest.mark.parametrize(("path", "param"), parameters(), ids=[path for path, _ in parameters()])
def test_every_parameter_coerces_as_typer_does(path, param, tmp_path):
    readable, unreadable = tmp_path / "file", tmp_path / "secret"
    readable.write_text("x")
    unreadable.write_text("x")
    unreadable.chmod(0)
    values = [*TEXTS, *OTHERS, str(readable), str(tmp_path), str(unreadable)]
    convert = coercion._converter(param.type_descriptor)
    plain = coercion.PlainParam(param.type_descriptor, convert, coercion._multiple(param)) if convert else None
    ours = plain or build_runtime_param(param.type_descriptor)
    theirs = build_runtime_param(param.type_descriptor)
    ctx = typer.Context(typer.main.get_command(app))
    for value in values:
        if value == str(unreadable) and os.access(unreadable, os.R_OK):
            continue  # root reads anything: typer's error cannot happen
        assert outcome(ours, value, param, ctx) == outcome(theirs, value, param, ctx), (path, value)


def test_taskctl_s_plain_parameters_all_take_the_plain_coercion():
    # A new parameter type would silently bring pydantic back: say so here.
    assert [path for path, param in parameters() if coercion._converter(param.type_descriptor) is None] == []


def test_status_with_options_does_not_import_pydantic_and_bad_values_get_typer_s_errors(project):
    project.burst()
    modules = loaded("--config", str(project.config), "status", "--limit", "5", "--json", cwd=project.root)
    assert not [m for m in modules if m.split(".")[0] == "pydantic"]
    result = project.cli("status", "--limit", "x")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: Invalid value for '--limit': Input should be a valid integer, unable to parse string as an integer "
        "(see 'root status --help')\n"
    )
    result = project.cli("status", "--interval", "0.1")
    assert "Input should be greater than or equal to 0.2" in result.stderr and result.exit_code == 2
