"""The web read path: latest_result, and the README's view that uses it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from taskctl import latest_result
from taskctl.errors import ConfigError, ForeignDatabase, UnknownTask
from tests.conftest import ROOT


def readme_view(task: str) -> Any:
    "The WSGI view of the README's precompute section, asking for `task`."
    readme = (ROOT / "README.md").read_text()
    code = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "latest_result(" in block)
    namespace: dict[str, Any] = {}
    exec(code.replace('"stars_by_language"', repr(task)), namespace)
    return namespace["languages"]


def call(view: Any) -> tuple[str, dict[str, Any]]:
    answer: list[str] = []
    body = b"".join(view({"REQUEST_METHOD": "GET", "PATH_INFO": "/languages"}, lambda s, h: answer.append(s)))
    return answer[0], json.loads(body)


def test_the_readme_view_before_and_after_the_first_success(project, tmp_path, monkeypatch):
    elsewhere = tmp_path / "www"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a web server runs somewhere else: the README says to set $TASKCTL_CONFIG
    monkeypatch.setenv("TASKCTL_CONFIG", str(project.config))
    view = readme_view("echo")
    assert call(view) == ("503 Service Unavailable", {"error": "not computed yet"})  # no database yet
    project.enqueue("echo", '{"python": 3}')
    assert call(view)[0] == "503 Service Unavailable"  # queued, not run
    project.burst()
    status, body = call(view)
    assert status == "200 OK" and body["languages"] == {"python": 3} and body["computed_at"].endswith("+00:00")


def test_a_task_name_the_record_does_not_know_is_an_error_with_close_matches(project):
    project.enqueue("add", "1")
    project.burst()
    assert latest_result("echo", config=project.config) is None  # served, never succeeded
    with pytest.raises(UnknownTask, match=rf"unknown task 'ech'.*did you mean {project.module}\.echo"):
        latest_result("ech", config=project.config)
    assert latest_result("add", config=project.config).value == 1


@pytest.mark.sqlite
def test_another_programs_database_is_an_error_not_none(project):
    other = sqlite3.connect(project.database)
    other.execute("CREATE TABLE kv (key TEXT, value TEXT)")
    other.commit()
    other.close()
    with pytest.raises(ForeignDatabase, match="another program's SQLite database"):
        latest_result("echo", config=project.config)
    with pytest.raises(ForeignDatabase):
        latest_result("echo", database=project.database)


@pytest.mark.sqlite
def test_a_missing_config_is_an_error(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TASKCTL_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="config file not found"):
        latest_result("echo")


def test_the_config_is_read_once_until_it_changes(project):
    project.enqueue("echo", "1")
    project.burst()
    assert latest_result("echo", config=project.config).value == 1
    text, stamp = project.config.read_text(), project.config.stat()
    project.config.write_text(text.replace("[taskctl]", "[taskctl"))  # broken TOML...
    os.utime(project.config, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # ...with the same mtime: not read again
    assert latest_result("echo", config=project.config).value == 1
    os.utime(project.config, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))  # changed: read again
    with pytest.raises(ConfigError, match="not valid TOML"):
        latest_result("echo", config=project.config)
