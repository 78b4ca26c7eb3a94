"""taskctl on Redis against bare Huey's PriorityRedisHuey, measured in one run on this machine.

    .venv/bin/python bench/redis.py            # 2,000 jobs, best of 3 rounds, 30 pickup samples (~3 min)
    .venv/bin/python bench/redis.py --quick    # 300 jobs, 1 round, 8 samples: a smoke run (< 1 min)

It starts its own redis-server on a free 127.0.0.1 port (nothing saved, a temporary folder),
FLUSHALLs before each measurement, gives each a fresh queue name, and stops the server at the
end. PriorityRedisHuey is the fair baseline: taskctl's queue has priorities, RedisHuey's has none.
Rounds alternate the two, so drift on a shared machine hits both alike; ratios are taskctl / bare.

1. Enqueue: N no-op jobs through the Python API (`noop(i)`), jobs/s.
2. Drain, 1 consumer: N jobs queued, then one consumer process with one worker thread, the real
   `taskctl --config X run-consumer --burst --workers 1` against `bench/redis.py --bare-consumer`
   (Huey's Consumer with the options taskctl passes, and taskctl's burst exit). Timed from the
   spawn until every job has finished (taskctl's record counts N succeeded and nothing else;
   Huey's result hash holds N), raw and net of start-up. Start-up is measured apart, on an empty
   queue: from the spawn until each worker waits for work (a blocked client in CLIENT LIST).
3. Drain, 4 consumers: the same with 4 processes of one worker each.
4. Idle pickup: one idle consumer of each; a job every 0.5-1 s (and once after 5 s idle), timed
   from just before the enqueue call until the task starts (its first act is to take
   time.time(), written to Redis); for taskctl also until the record's started_at (the claim).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
# This file is redis.py: its folder, first on sys.path when run, would shadow the redis package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parents[1] / "tests")]

from huey import PriorityRedisHuey  # noqa: E402
from huey.consumer import ConsumerStopped  # noqa: E402
from redis import Redis  # noqa: E402
from redis_support import start_redis, stop  # noqa: E402

# taskctl is imported where it is used: the bare consumer, this file too, must not pay for it.
CONSUMER = {"workers": 1, "periodic": False, "initial_delay": 0.05, "max_delay": 1.0, "check_worker_health": True}
BURST_SETTLE = 0.3  # as taskctl.consumer.BURST_SETTLE
LIMIT = 300.0  # seconds any consumer, or any wait for one, may take
STAMPS = "bench:stamps"
TASKS = """
import time

from redis import Redis

from taskctl import task

_clients = {}


@task()
def noop(i):
    return i


@task()
def stamp(url, token):
    now = time.time()
    client = _clients.get(url) or _clients.setdefault(url, Redis.from_url(url))
    client.hset("bench:stamps", token, repr(now))
"""
_clients: dict[str, Redis] = {}
Procs = list[subprocess.Popen[bytes]]


def noop(i: int) -> int:
    return i


def stamp(url: str, token: str) -> None:
    now = time.time()
    client = _clients.get(url) or _clients.setdefault(url, Redis.from_url(url))
    client.hset(STAMPS, token, repr(now))


# Huey names a task by its module: the same here and in the bare consumers, however this file is run.
noop.__module__ = stamp.__module__ = "bench_redis"


class BareHuey(PriorityRedisHuey):
    "PriorityRedisHuey with the same two tasks, counting the jobs executing (for the burst exit)."

    def __init__(self, name: str, url: str) -> None:
        super().__init__(name, url=url, utc=True)
        self.executing, self.lock = 0, threading.Lock()
        self.noop, self.stamp = self.task(name="noop")(noop), self.task(name="stamp")(stamp)

    def execute(self, task: Any, timestamp: Any = None) -> Any:
        with self.lock:
            self.executing += 1
        try:
            return super().execute(task, timestamp)
        finally:
            with self.lock:
                self.executing -= 1


def bare_consumer(url: str, name: str, burst: bool) -> None:
    "The bare side's consumer process: taskctl's run loop, Huey alone."
    huey = BareHuey(name, url)
    consumer = huey.create_consumer(**CONSUMER)
    consumer.start()
    health, idle_since, deadline = time.monotonic(), None, time.monotonic() + LIMIT
    try:
        while time.monotonic() < deadline:
            health = consumer.loop(health)
            if not burst:
                continue
            if huey.executing or huey.pending_count():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= BURST_SETTLE:
                break
        consumer.stop(graceful=True)
    except ConsumerStopped:
        pass


class Bare:
    label, waits_on = "bare", "bzpopmin"

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.huey = url, BareHuey("unused", url)

    def fresh(self) -> None:
        self.huey.storage.pool.disconnect()
        self.queue = f"bare{uuid.uuid4().hex[:8]}"
        self.huey = BareHuey(self.queue, self.url)
        self.noop, self.stamp = self.huey.noop, self.huey.stamp

    def command(self, burst: bool) -> list[str]:
        return [sys.executable, str(HERE), "--bare-consumer", self.url, self.queue, *(["--burst"] if burst else [])]

    def finished(self) -> int:
        return self.huey.storage.conn.hlen(self.huey.storage.result_key)

    def check(self, jobs: int) -> None:
        assert self.finished() == jobs and self.huey.pending_count() == 0, "bare Huey lost jobs"

    def started_at(self, job_id: str) -> float | None:
        return None


class Taskctl:
    label, waits_on = "taskctl", "blpop"

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder, self.app = url, folder, None
        (folder / "benchtasks.py").write_text(TASKS)

    def fresh(self) -> None:
        from taskctl.app import build_app
        from taskctl.config import load_settings

        if self.app is not None:
            self.app.store.close()
            self.app.record.close()
        self.config = self.folder / f"tc{uuid.uuid4().hex[:8]}.toml"
        name = self.config.stem
        self.config.write_text(f'[taskctl]\nmodules = ["benchtasks"]\ndatabase = "{self.url}"\nname = "{name}"\n')
        self.app = build_app(load_settings(self.config))
        self.noop, self.stamp = self.app.wrapper("benchtasks.noop"), self.app.wrapper("benchtasks.stamp")

    def command(self, burst: bool) -> list[str]:
        mode = "--burst" if burst else "--no-periodic"
        return [sys.executable, "-m", "taskctl", "--config", str(self.config), "run-consumer", "--workers", "1", mode]

    def finished(self) -> int:
        from taskctl.model import State

        return self.app.record.counts()[State.SUCCEEDED]

    def check(self, jobs: int) -> None:
        counts = {state.value: n for state, n in self.app.record.counts().items() if n}
        assert counts == {"succeeded": jobs}, f"taskctl's record says {counts}, not {jobs} succeeded"

    def started_at(self, job_id: str) -> float | None:
        job = self.app.record.job(job_id)
        return job.started_at if job else None


Engine = Bare | Taskctl


def spawn(commands: list[list[str]], log: Path) -> Procs:
    with log.open("ab") as out:
        return [subprocess.Popen(command, stdout=out, stderr=out) for command in commands]


def reap(procs: Procs, interrupt: bool = False) -> None:
    "Wait for the consumers to exit (after Ctrl+C, if `interrupt`); kill any still there after 15 s."
    for proc in procs:
        if interrupt and proc.poll() is None:
            proc.send_signal(2)
    deadline = time.monotonic() + 15
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(done: Callable[[], bool], procs: Procs, what: str, log: Path, timeout: float = LIMIT) -> None:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout or all(p.poll() is not None for p in procs):
            if done():
                return
            reap(procs, interrupt=True)
            raise RuntimeError(f"{what}: not done after {time.monotonic() - start:.1f}s; consumer output:\n"
                               + log.read_text(errors="replace")[-3000:])  # fmt: skip
        time.sleep(0.005)


class Bench:
    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.log = url, folder / "consumers.log"
        self.client = Redis.from_url(url, decode_responses=True)
        self.engines: list[Engine] = [Bare(url, folder), Taskctl(url, folder)]
        self.samples: dict[tuple[str, str], list[float]] = {}

    def add(self, engine: Engine, measure: str, value: float) -> None:
        self.samples.setdefault((measure, engine.label), []).append(value)

    def fresh(self, engine: Engine) -> None:
        self.client.flushall()
        engine.fresh()

    def drain(self, engine: Engine, jobs: int, consumers: int) -> None:
        self.fresh(engine)
        start = time.perf_counter()
        for i in range(jobs):
            engine.noop(i)
        self.add(engine, "enqueue", time.perf_counter() - start)
        start = time.perf_counter()
        procs = spawn([engine.command(burst=True)] * consumers, self.log)
        wait_until(lambda: engine.finished() >= jobs, procs, f"{engine.label} drain", self.log)
        self.add(engine, f"drain {consumers}", time.perf_counter() - start)
        reap(procs)
        engine.check(jobs)

    def ready(self, engine: Engine, consumers: int, procs: Procs) -> None:
        "Until each consumer's worker has waited for work (a blocked client, seen once)."
        seen: set[str] = set()

        def ready() -> bool:
            clients = self.client.client_list()
            seen.update(c["id"] for c in clients if c["cmd"] == engine.waits_on and "b" in c["flags"])
            return len(seen) >= consumers

        wait_until(ready, procs, f"{engine.label} start-up", self.log)

    def start_up(self, engine: Engine, consumers: int) -> None:
        self.fresh(engine)
        start = time.perf_counter()
        procs = spawn([engine.command(burst=True)] * consumers, self.log)
        self.ready(engine, consumers, procs)
        self.add(engine, f"start-up {consumers}", time.perf_counter() - start)
        reap(procs)
        self.add(engine, f"empty burst {consumers}", time.perf_counter() - start)

    def pickup(self, samples: int) -> None:
        procs: Procs = []
        for engine in self.engines:
            self.fresh(engine) if not procs else engine.fresh()  # one FLUSHALL: both run at once
            procs += spawn([engine.command(burst=False)], self.log)
            self.ready(engine, 1, procs)
        time.sleep(3)  # idle a few seconds first
        gaps = [0.5 + 0.125 * (i % 5) for i in range(samples)]
        gaps[samples // 2] = 5.0
        try:
            for i, gap in enumerate([1.0, *gaps]):  # the first is a warm-up (connections, imports)
                for engine in self.engines[:: 1 if i % 2 else -1]:
                    time.sleep(gap / 2)  # each engine idles about `gap` between its jobs
                    token = uuid.uuid4().hex
                    sent = time.time()
                    job_id = engine.stamp(self.url, token).id
                    wait_until(lambda t=token: self.client.hexists(STAMPS, t), procs, "pickup", self.log, 30)
                    if i:
                        self.add(engine, "pickup", float(self.client.hget(STAMPS, token) or 0) - sent)
                        if (claimed := engine.started_at(job_id)) is not None:
                            self.add(engine, "claim", claimed - sent)
        finally:
            reap(procs, interrupt=True)

    def run(self, jobs: int, rounds: int, samples: int) -> None:
        for r in range(rounds):  # interleaved, so drift on a shared machine hits both alike
            order = self.engines[:: 1 if r % 2 == 0 else -1]
            for measure in (lambda e: self.drain(e, jobs, 1), lambda e: self.drain(e, jobs, 4)):
                for engine in order:
                    measure(engine)
            for consumers in (1, 4):
                for engine in order:
                    self.start_up(engine, consumers)
        self.pickup(samples)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


def report(bench: Bench, jobs: int) -> None:
    s = bench.samples

    def rate(key: str) -> Callable[[str], float]:
        return lambda e: jobs / min(s[(key, e)])

    def net(n: int) -> Callable[[str], float]:
        return lambda e: jobs / min(d - statistics.median(s[(f"start-up {n}", e)]) for d in s[(f"drain {n}", e)])

    def median(key: str, scale: float = 1.0) -> Callable[[str], float]:
        return lambda e: statistics.median(s[(key, e)]) * scale

    def pickup(q: float, key: str = "pickup") -> Callable[[str], float]:
        return lambda e: percentile(s[(key, e)], q) * 1000

    rows: list[tuple[str, Callable[[str], float], str]] = [
        ("1. enqueue, jobs/s", rate("enqueue"), ".0f"),
        ("2. drain, 1 consumer, jobs/s, raw", rate("drain 1"), ".0f"),
        ("   drain, 1 consumer, jobs/s, net of start-up", net(1), ".0f"),
        ("3. drain, 4 consumers, jobs/s, raw", rate("drain 4"), ".0f"),
        ("   drain, 4 consumers, jobs/s, net of start-up", net(4), ".0f"),
        ("   start-up, 1 consumer, s (median)", median("start-up 1"), ".3f"),
        ("   start-up, 4 consumers, s (median)", median("start-up 4"), ".3f"),
        ("   burst on an empty queue, spawn to exit, s", median("empty burst 1"), ".3f"),
        ("4. idle pickup p50, ms (enqueue to task start)", pickup(0.5), ".2f"),
        ("   idle pickup p99, ms", pickup(0.99), ".2f"),
    ]
    print(f"{'':48} {'bare':>9} {'taskctl':>9}  taskctl/bare")
    for label, value, spec in rows:
        bare, ours = value("bare"), value("taskctl")
        better = "higher" if spec == ".0f" else "lower"
        print(f"{label:48} {bare:9{spec}} {ours:9{spec}}  {ours / bare:5.2f} ({better} is better)")
    p50, p99 = pickup(0.5, "claim")("taskctl"), pickup(0.99, "claim")("taskctl")
    print(f"   taskctl, enqueue to the record's started_at (the claim): p50 {p50:.2f} ms, p99 {p99:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30, help="idle pickups per engine")
    parser.add_argument("--quick", action="store_true", help="300 jobs, 1 round, 8 pickups")
    parser.add_argument("--bare-consumer", nargs=2, metavar=("URL", "QUEUE"), help=argparse.SUPPRESS)
    parser.add_argument("--burst", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_consumer:
        return bare_consumer(*args.bare_consumer, burst=args.burst)
    if args.quick:
        args.jobs, args.rounds, args.samples = 300, 1, 8
    started = time.monotonic()
    url, server = start_redis()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench = Bench(url, Path(tmp))
            version = bench.client.info("server")["redis_version"]
            print(f"taskctl on Redis vs bare PriorityRedisHuey: redis-server {version} at {url},")
            print(f"{args.jobs:,} jobs, best of {args.rounds} round(s); start-up median; {args.samples} pickups\n")
            bench.run(args.jobs, args.rounds, args.samples)
            report(bench, args.jobs)
    finally:
        stop(server)
    print(f"\n(ran in {time.monotonic() - started:.0f}s; target: taskctl >= 0.8x bare on throughput)")


if __name__ == "__main__":
    main()
