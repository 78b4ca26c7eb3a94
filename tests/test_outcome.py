"""Huey's own writes as a job ends go with the job's outcome, on each engine.

Huey writes its copy of the return value and clears the job's revoke flag as
the job ends; taskctl's Huey holds them back and the store makes them in the
outcome's own transaction or script. What Huey documents must not change: a
post-execute hook sees the result, a revoke made while the job ran is cleared,
an error is stored, and without taskctl's hook the writes are still made.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Project
from huey.exceptions import TaskException

from taskctl.app import App, build_app
from taskctl.config import load_settings
from taskctl.model import State


def app_of(project: Project) -> App:
    return build_app(load_settings(project.config))


def run_one(app: App) -> None:
    task = app.huey.dequeue()
    assert task is not None
    app.huey.execute(task)


def test_a_success_stores_huey_result_with_the_record(project: Project) -> None:
    app = app_of(project)
    seen: list[Any] = []

    @app.huey.post_execute()
    def peek(task: Any, value: Any, exc: Any) -> None:  # a user's hook runs after taskctl's
        seen.append((app.huey.result(task.id, preserve=True), app.record.job(task.id).state))

    result = app.wrapper(f"{project.module}.add")(2, 3)
    run_one(app)
    assert seen == [(5, State.SUCCEEDED)]
    assert result.get() == 5


def test_a_failure_stores_huey_error_with_the_record(project: Project) -> None:
    app = app_of(project)
    result = app.wrapper(f"{project.module}.boom")("no")
    run_one(app)
    with pytest.raises(TaskException, match="no"):
        result.get()
    assert app.record.job(result.id).state is State.FAILED


def revoke_while_running(app: App) -> list[bool]:
    "Each job revokes itself as it starts (Huey clears the flag as it ends); says whether it took."
    flags: list[bool] = []

    @app.huey.pre_execute()
    def revoke(task: Any) -> None:
        app.huey.revoke_by_id(task.id)
        flags.append(app.huey.is_revoked(task))

    return flags


def test_a_revoke_made_while_the_job_ran_is_cleared_as_it_ends(project: Project) -> None:
    app = app_of(project)
    flags = revoke_while_running(app)
    result = app.wrapper(f"{project.module}.add")(1)
    run_one(app)
    assert flags == [True]
    assert not app.huey.is_revoked(result.id)
    assert result.get() == 1


def test_without_taskctl_hook_huey_writes_are_still_made(project: Project) -> None:
    app = app_of(project)
    app.huey.unregister_post_execute("taskctl.record")
    flags = revoke_while_running(app)
    result = app.wrapper(f"{project.module}.add")(4, 4)
    run_one(app)
    assert flags == [True] and not app.huey.is_revoked(result.id)
    assert result.get() == 8
    assert app.record.job(result.id).state is State.RUNNING  # nothing recorded it: the lease will


def test_a_value_with_no_json_form_is_marked_as_such(project: Project) -> None:
    from datetime import UTC, datetime

    from taskctl.model import NO_JSON_FORM, to_json

    assert to_json({"at": datetime(2026, 1, 2, tzinfo=UTC)}) == '{"at": "2026-01-02 00:00:00+00:00"}'  # a JSON form
    app = app_of(project)
    result = app.wrapper(f"{project.module}.echo")(value={3})
    run_one(app)
    assert result.get() == {3}  # Huey's copy is the value itself
    shown = project.job(result.id)["result_preview"]
    assert shown == f'"{NO_JSON_FORM} set: {{3}}"'
    cached = app.record.result(f"{project.module}.echo")
    assert cached is not None and cached.value == f"{NO_JSON_FORM} set: {{3}}"
