"""Stopping a consumer the way services are stopped: SIGTERM, to the whole process group."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from conftest import subprocess_env, wait_until


def _start(project, *args: str) -> subprocess.Popen[str]:
    "A consumer leading a process group of its own, as a systemd unit's is; its log goes to consumer.log."
    log = (project.root / "consumer.log").open("w")
    return subprocess.Popen(
        project.command("run-consumer", *args), stdout=subprocess.DEVNULL, stderr=log, text=True,
        cwd=project.root, env=subprocess_env(), start_new_session=True,
    )  # fmt: skip


def _signal_group(consumer: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    "What systemd's default KillMode does: every process of the unit gets the signal."
    os.killpg(consumer.pid, sig)


def _finish(project, consumer: subprocess.Popen[str]) -> str:
    try:
        consumer.wait(timeout=30)
    finally:
        if consumer.poll() is None:
            os.killpg(consumer.pid, signal.SIGKILL)
            consumer.wait()
    return _log(project)


def _log(project) -> str:
    return (project.root / "consumer.log").read_text()


@pytest.mark.sqlite  # the stop is the consumer's, not the engine's; both engines run the next test
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_sigterm_lets_the_running_job_finish(project, tmp_path, worker_type):
    marker = tmp_path / "started"
    job_id = project.enqueue("slow", "1.5", f"marker={marker}")
    consumer = _start(project, "--worker-type", worker_type)
    try:
        wait_until(marker.exists, what="the job to start")
        _signal_group(consumer)
    finally:
        err = _finish(project, consumer)
    assert consumer.returncode == 0, err
    assert "Stopping (SIGTERM): running jobs finish first" in err
    assert "Traceback" not in err
    job = project.job(job_id)
    assert (job["state"], job["result_preview"], job["attempts"]) == ("succeeded", "1.5", 1), err


@pytest.mark.parametrize(
    ("worker_type", "first"),
    [("thread", signal.SIGTERM), ("process", signal.SIGTERM), ("process", signal.SIGINT)],  # SIGINT: a Ctrl+C
)
def test_a_second_signal_interrupts_and_the_job_goes_back_to_the_queue(project, tmp_path, worker_type, first):
    marker = tmp_path / "started"
    job_id = project.enqueue("slow", "60", f"marker={marker}")
    consumer = _start(project, "--worker-type", worker_type)
    try:
        wait_until(marker.exists, what="the job to start")
        _signal_group(consumer, first)
        wait_until(lambda: f"Stopping ({first.name})" in _log(project), what="the graceful stop")
        _signal_group(consumer)  # then SIGTERM, as a service manager sends
    finally:
        err = _finish(project, consumer)
    assert consumer.returncode == 0, err
    assert "Traceback" not in err
    job = project.job(job_id)
    assert job["state"] == "queued", err
    attempts = project.cli("show", job_id, "--json").stdout
    assert '"outcome": "interrupted"' in attempts


@pytest.mark.sqlite  # the requeue on both engines is the test above
def test_the_grace_period_running_out_interrupts_running_jobs(project, tmp_path):
    marker = tmp_path / "started"
    job_id = project.enqueue("slow", "60", f"marker={marker}")
    consumer = _start(project, "--grace", "1s")
    try:
        wait_until(marker.exists, what="the job to start")
        _signal_group(consumer)
    finally:
        err = _finish(project, consumer)
    assert consumer.returncode == 0, err
    assert "for 1s at most" in err
    assert project.job(job_id)["state"] == "queued", err


@pytest.mark.sqlite  # parsing an option
def test_a_bad_grace_is_one_clear_line(project):
    result = project.cli("run-consumer", "--grace", "soon")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --grace 'soon' is not a duration")
    assert "Traceback" not in result.stderr


@pytest.mark.sqlite  # the restart is the consumer's, not the engine's
def test_sighup_restarts_the_consumer_in_place_after_its_jobs_finish(project, tmp_path):
    # Huey's consumer restarts on SIGHUP; a service's `reload` sends it.
    marker = tmp_path / "started"
    first = project.enqueue("slow", "1", f"marker={marker}")
    consumer = _start(project)
    try:
        wait_until(marker.exists, what="the job to start")
        os.kill(consumer.pid, signal.SIGHUP)
        wait_until(lambda: "Restarting: the same command again" in _log(project), what="the restart")
        assert project.job(first)["state"] == "succeeded"  # it finished before the restart
        second = project.enqueue("add", "1", "2")
        wait_until(lambda: project.job(second)["state"] == "succeeded", what="a job run after the restart")
        assert consumer.poll() is None  # the same process, running the command again
        _signal_group(consumer)
    finally:
        err = _finish(project, consumer)
    assert consumer.returncode == 0, err
    assert "Restarting (SIGHUP): running jobs finish first." in err
    assert "Traceback" not in err
