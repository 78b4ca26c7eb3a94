"""A consumer's worker processes die with it, and a worker's late outcome is kept."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import Project, stop, wait_until
from proc_support import alive, children_of
from test_claims import in_thread, stalled


@pytest.mark.sqlite
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_worker_processes_die_with_a_killed_consumer(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    project.enqueue("slow", "30", f"marker={marker}")
    consumer = project.start_consumer("--worker-type", "process", "--workers", "2")
    try:
        wait_until(marker.exists, what="a worker process to start the job")
        # Two workers and the scheduler.
        wait_until(lambda: len(children_of(consumer.pid)) >= 3, what="3 children")
        children = children_of(consumer.pid)
    finally:
        stop(consumer, signal.SIGKILL)
    try:
        wait_until(lambda: not any(alive(pid) for pid in children), timeout=10, what="the orphans to die")
    finally:
        for pid in filter(alive, children):  # a failure must not leave them behind
            os.kill(pid, signal.SIGKILL)

    # The job its worker was running is lost at once, not left to a living orphan.
    project.burst()
    assert project.status()["counts"].get("running", 0) == 0


def test_a_success_after_recovery_is_kept(project: Project) -> None:
    "A worker finishing a job that was recovered as lost meanwhile: the record says it succeeded."
    app, job_id, stale = stalled(project, "add", 1, 2)  # no retries: recovery failed it as WorkerLost
    assert project.job(job_id)["error_type"] == "WorkerLost"
    in_thread("A", app.huey.execute, stale)
    job = project.job(job_id)
    assert (job["state"], job["result_preview"], job["error"]) == ("succeeded", "3", None)
    [attempt] = json.loads(project.ok("show", job_id, "--json"))["attempts"]
    assert (attempt["outcome"], attempt["error"]) == ("succeeded", None)


def test_a_success_after_the_job_was_run_again_is_recorded_on_its_attempt(project: Project, tmp_path: Path) -> None:
    app, job_id, stale = stalled(project, "slow_retried", 0, str(tmp_path / "marker"))
    in_thread("B", app.huey.dequeue)  # the retry is running elsewhere now
    in_thread("A", app.huey.execute, stale)
    job = project.job(job_id)
    assert job["state"] == "running" and job["worker"].endswith("/B")  # B's claim is untouched
    first = json.loads(project.ok("show", job_id, "--json"))["attempts"][0]
    assert first["outcome"] == "succeeded" and first["error_type"] == "LateOutcome"


@pytest.mark.sqlite  # the consumer's processes, whatever the engine
def test_a_child_starts_with_the_group_signals_held_until_its_handlers_are_set() -> None:
    # A Ctrl+C to the process group while a worker is still starting must not kill it
    # with a KeyboardInterrupt before its own handlers (ignore SIGINT) are in place.
    from taskctl.children import STARTUP_SIGNALS
    from taskctl.stopping import INTERRUPT, WorkerProcesses

    environment = WorkerProcesses(signal.SIGINT, INTERRUPT)
    read, write = os.pipe()

    def child() -> None:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        os.kill(os.getpid(), signal.SIGINT)  # the group's Ctrl+C, arriving now
        environment.init_child(type("Process", (), {"huey": None})())
        after = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        os.write(write, json.dumps([sorted(held), sorted(after)]).encode())

    process = environment.create_process(child, "probe")
    process.start()
    process.join(10)
    os.close(write)
    held, after = json.loads(os.read(read, 4096))
    os.close(read)
    assert process.exitcode == 0  # the SIGINT went to the handler set for it (ignored), not Python's default
    assert set(held) >= {int(s) for s in STARTUP_SIGNALS}
    assert not set(after) & {int(s) for s in STARTUP_SIGNALS}
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the parent's mask is as it was
