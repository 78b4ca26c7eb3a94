"""`taskctl enqueue TASK --each FILE` and enqueue_many(), on each engine."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
from conftest import Project
from typer.testing import CliRunner

from taskctl.app import build_app
from taskctl.bulk import enqueue_many, job_id, job_ids
from taskctl.cli import app as cli
from taskctl.config import load_settings
from taskctl.errors import UsageError


def lines(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def jobs_of(project: Project) -> list[dict[str, object]]:
    status = project.status()
    # Not the upcoming periodic runs the scheduled section also lists (they have no id yet).
    return [job for section in ("queued", "scheduled") for job in status[section] if job.get("id")]


def test_the_ids_of_a_batch_are_the_uuid5_of_queue_task_batch_and_line() -> None:
    # Ids are how a resumed batch finds its jobs: they must never change between releases.
    for queue, task, batch in (("taskctl", "tasks.add", "0123abcd"), ("café", "m.t", "big batch")):
        of_line = job_ids(queue, task, batch)
        assert [of_line(n) for n in (1, 2, 10, 99_999)] == [job_id(queue, task, batch, n) for n in (1, 2, 10, 99_999)]


def test_each_line_is_a_job_and_the_same_file_again_queues_nothing(project: Project, tmp_path: Path) -> None:
    rows = lines(tmp_path / "rows.jsonl", [[1, 2], {"a": 3, "b": 4}, [1, 2]])  # the same row twice: two jobs
    out = project.ok("enqueue", "add", "--each", str(rows))
    assert "queued 3 job(s)" in out and "0 were queued already" in out
    queued = {job["id"]: (job["args"], job["kwargs"]) for job in jobs_of(project)}
    batch = out.split("(batch ")[1].split(")")[0]
    name, queue = f"{project.module}.add", load_settings(project.config).name
    assert queued == {
        job_id(queue, name, batch, 1): ([1, 2], {}),
        job_id(queue, name, batch, 2): ([], {"a": 3, "b": 4}),
        job_id(queue, name, batch, 3): ([1, 2], {}),
    }
    again = project.ok("enqueue", "add", "--each", str(rows))
    assert "queued 0 job(s)" in again and "3 were queued already" in again
    assert project.status()["counts"]["queued"] == 3
    project.burst()
    assert project.status()["counts"]["succeeded"] == 3


def test_an_interrupted_batch_queues_only_the_rest(project: Project, tmp_path: Path) -> None:
    rows = [[i] for i in range(10)]
    lines(tmp_path / "half.jsonl", rows[:4])  # what got in before the interruption
    lines(tmp_path / "all.jsonl", rows)
    project.ok("enqueue", "add", "--each", str(tmp_path / "half.jsonl"), "--batch", "nightly")
    out = project.ok("enqueue", "add", "--each", str(tmp_path / "all.jsonl"), "--batch", "nightly")
    assert "queued 6 job(s)" in out and "4 were queued already" in out
    assert sorted(job["args"][0] for job in jobs_of(project)) == list(range(10))


def test_csv_rows_are_keyword_arguments(project: Project, tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n\n10,x y\n")
    out = project.ok("enqueue", "add", "--each", str(tmp_path / "rows.csv"), "--skip-bad")
    assert "queued 2 job(s)" in out
    assert sorted(json.dumps(job["kwargs"]) for job in jobs_of(project)) == [
        json.dumps({"a": 1, "b": 2}),
        json.dumps({"a": 10, "b": "x y"}),
    ]


def test_bad_lines_are_named_and_nothing_is_queued(project: Project, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('[1]\n{"nope": 1}\n\n[1, 2, 3]\n"text"\n[NaN]\n[2]\n')
    result = project.cli("enqueue", "add", "--each", str(path))
    assert result.exit_code == 2
    for line in (2, 4, 5, 6):
        assert f"rows.jsonl:{line}: " in result.stderr
    assert "rows.jsonl:1:" not in result.stderr and "rows.jsonl:7:" not in result.stderr
    assert "4 bad line(s)" in result.stderr and "Traceback" not in result.stderr
    assert not project.has_record() or project.status()["counts"]["queued"] == 0
    out = project.ok("enqueue", "add", "--each", str(path), "--skip-bad")
    assert "queued 2 job(s)" in out and "4 bad line(s) skipped" in out


def test_spread_and_rate_give_etas(project: Project, tmp_path: Path) -> None:
    rows = lines(tmp_path / "rows.jsonl", [[i] for i in range(4)])
    before = time.time()
    project.ok("enqueue", "add", "--each", str(rows), "--spread", "10m", "--batch", "spread")
    project.ok("enqueue", "add", "--each", str(rows), "--rate", "2/s", "--batch", "rate")
    settings = load_settings(project.config)
    record, queue = build_app(settings).record, settings.name
    name = f"{project.module}.add"
    for batch, gap in (("spread", 150.0), ("rate", 0.5)):
        etas = [record.job(job_id(queue, name, batch, n)).eta for n in range(1, 5)]  # type: ignore[union-attr]
        assert all(eta is not None for eta in etas)
        assert before - 1 <= etas[0] <= time.time() + 1  # type: ignore[operator]
        steps = [b - a for a, b in itertools.pairwise(etas)]  # type: ignore[operator]
        assert steps == pytest.approx([gap] * 3, abs=1e-3)
    assert project.status()["counts"]["scheduled"] == 8


def test_stdin_and_usage_errors(project: Project, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(project.config), "enqueue", "add", "--each", "-"], input="[5]\n")
    assert result.exit_code == 0, result.stderr
    assert "queued 1 job(s)" in result.stdout
    for args, message in (
        (["--each", "-", "--rate", "fast"], "--rate 'fast' is not a rate"),
        (["--each", "-", "--rate", "1/s", "--spread", "1m"], "--spread or --rate"),
        (["1", "--each", "-"], "no ARGS"),
        (["--spread", "1m"], "go with --each"),
        (["--each", str(tmp_path / "missing.jsonl")], "cannot read --each"),
    ):
        result = project.cli("enqueue", "add", *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)


def test_enqueue_many_from_python(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root)
    monkeypatch.syspath_prepend(str(project.root))
    app = build_app(load_settings(project.config))
    add = app.resolve("add").declaration
    first = enqueue_many(add, [[1], [1], {"a": 2, "b": 3}])
    assert (first.queued, first.present) == (3, 0)
    again = enqueue_many(add, [[1], [1], {"a": 2, "b": 3}])
    assert (again.key, again.queued, again.present) == (first.key, 0, 3)
    with pytest.raises(UsageError, match="item 2"):
        enqueue_many(add, [[1], {"nope": 1}])
    assert len(jobs_of(project)) == 3  # the bad batch queued nothing


def test_bulk_jobs_expire_as_huey_jobs_do(project: Project, tmp_path: Path) -> None:
    rows = lines(tmp_path / "rows.jsonl", [[], []])
    project.ok("enqueue", "perishable", "--each", str(rows))  # expires=1: counted from the enqueue
    time.sleep(1.5)
    project.burst()
    assert project.status()["counts"]["expired"] == 2


@pytest.mark.sqlite
def test_two_queues_in_one_database_each_get_the_batch(project: Project, tmp_path: Path) -> None:
    rows = lines(tmp_path / "rows.jsonl", [[1], [2]])
    project.ok("enqueue", "add", "--each", str(rows))
    project.config.write_text(project.config.read_text().replace("[taskctl]\n", '[taskctl]\nname = "other"\n', 1))
    out = project.ok("enqueue", "add", "--each", str(rows))
    assert "queued 2 job(s)" in out and "0 were queued already" in out
