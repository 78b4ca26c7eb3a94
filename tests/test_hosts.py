"""Several hosts on one Redis: consumers split the work, a periodic slot runs once, and
a consumer killed with `kill -9` has its jobs recovered by another host after the lease.

Each consumer records its own host name ($TASKCTL_HOSTNAME), so on this one machine
no consumer can see another's processes: recovery goes by the lease alone, as it
would across machines.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import datetime

import pytest
from conftest import Project, stop, wait_until

pytestmark = pytest.mark.redis

LEASE = "lease = 2\nworkers = 2"  # a short lease: a dead host's claims run out in seconds


def history(project: Project) -> list[dict]:
    return json.loads(project.ok("history", "--json", "--limit", "1000"))["jobs"]


def test_two_hosts_split_the_work_and_run_each_periodic_slot_once(project: Project) -> None:
    project.write_config(taskctl=LEASE, schedules='"sample" = "* * * * *"')
    jobs = [project.enqueue("slow", "0.2") for _ in range(30)]
    consumers = [project.start_consumer(host=host) for host in ("host-a", "host-b")]
    try:
        wait_until(lambda: project.status()["counts"]["succeeded"] >= 30 + 1, timeout=60, what="every job to run")
    finally:
        for consumer in consumers:
            stop(consumer)
    done = {job["id"]: job for job in history(project)}
    assert all(done[j]["state"] == "succeeded" and done[j]["attempts"] == 1 for j in jobs)
    assert {done[j]["worker"].split(":")[0] for j in jobs} == {"host-a", "host-b"}
    # Both consumers checked the schedule on start: one run per minute, not one per consumer.
    minutes = Counter(
        datetime.fromisoformat(job["enqueued_at"]).strftime("%H:%M") for job in done.values()
        if job["task"].endswith(".sample")
    )  # fmt: skip
    assert minutes and set(minutes.values()) == {1}, minutes


def test_a_killed_hosts_job_is_recovered_by_another_after_the_lease(project: Project) -> None:
    project.write_config(taskctl=LEASE)
    marker = project.root / "started"
    job_id = project.enqueue("slow_retried", "30", f"marker={marker}")
    first = project.start_consumer("--no-periodic", host="host-a")
    wait_until(marker.exists, what="host-a to start the job")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    second = project.start_consumer("--no-periodic", host="host-b")
    try:
        wait_until(lambda: project.job(job_id)["state"] == "succeeded", timeout=30, what="host-b to recover it")
    finally:
        stop(second)
    attempts = json.loads(project.ok("show", job_id, "--json"))["attempts"]
    assert [(a["outcome"], a["worker"].split(":")[0]) for a in attempts] == [
        ("lost", "host-a"),
        ("succeeded", "host-b"),
    ]
    assert attempts[0]["error_type"] == "WorkerLost"
