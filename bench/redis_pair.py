"""taskctl on Redis against bare Huey's PriorityRedisHuey, measured in one run on this machine.

    .venv/bin/python bench/redis_pair.py            # 2,000 jobs, best of 3 rounds, 30 pickups (~2 min)
    .venv/bin/python bench/redis_pair.py --quick    # 300 jobs, 1 round, 8 pickups: a smoke run (< 1 min)

It starts its own redis-server on a free 127.0.0.1 port (nothing saved, a temporary folder),
FLUSHALLs before each measurement, gives each a fresh queue name, and stops the server at the
end. PriorityRedisHuey is the fair baseline: taskctl's queue has priorities, RedisHuey's has none.
Rounds alternate the two, so drift on a shared machine hits both alike; ratios are taskctl / bare.

1. Enqueue: N no-op jobs through the Python API (`noop(i)`), jobs/s.
2. Drain, 1 consumer: N jobs queued, then one consumer process with one worker thread, the real
   `taskctl --config X run-consumer --burst --workers 1` against `bench/redis_pair.py --bare-consumer`
   (Huey's Consumer with the options taskctl passes, in taskctl's run loop). Timed from the spawn
   until every job has finished (polled: taskctl's record counts N succeeded, and after the run
   nothing else; Huey's result hash holds N): raw, and net of start-up (the spawn until the first
   job finished, reported apart). Also redis-server's CPU time per job (INFO cpu), and a burst
   run on an empty queue, from the spawn to the exit.
3. Drain, 4 consumers: the same with 4 processes of one worker each.
4. Idle pickup: one idle consumer of each; a job every 0.5-1 s (and once after 5 s idle), timed
   from just before the enqueue call until the task starts (its first act is to take
   time.time(), written to Redis); for taskctl also until the record's started_at (the claim).
5. Per job, in this process: R rounds, alternating the two, each enqueueing C jobs and then
   draining them with Huey's own dequeue + execute (what a worker thread does), with no consumer
   start-up. Each round gives a ratio; the median ratio is the figure, steady where the machine
   is busy. Also the CPU each job costs, this process's and redis-server's together.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parents[1] / "tests")]

from huey import PriorityRedisHuey  # noqa: E402
from huey.consumer import ConsumerStopped  # noqa: E402
from redis import Redis  # noqa: E402
from redis_support import start_redis, stop  # noqa: E402

# taskctl is imported where it is used: the bare consumer (this file, run again) must not pay for it.
CONSUMER = {"workers": 1, "periodic": False, "initial_delay": 0.05, "max_delay": 1.0, "check_worker_health": True}
BURST_SETTLE = 0.3  # as taskctl.consumer.BURST_SETTLE
LIMIT = 300.0  # seconds any consumer, or any wait for one, may take
STAMPS = "bench:stamps"
TASKS = """import time
from redis import Redis
from taskctl import task
clients = {}
@task()
def noop(i):
    return i
@task()
def stamp(url, token):
    now = time.time()
    (clients.get(url) or clients.setdefault(url, Redis.from_url(url))).hset("bench:stamps", token, repr(now))
"""
_clients: dict[str, Redis] = {}
Procs = list[subprocess.Popen[bytes]]


def noop(i: int) -> int:
    return i


def stamp(url: str, token: str) -> None:
    now = time.time()
    (_clients.get(url) or _clients.setdefault(url, Redis.from_url(url))).hset(STAMPS, token, repr(now))


# Huey names a task by its module: the same here and in the bare consumers, however this file is run.
noop.__module__ = stamp.__module__ = "bench_redis"


class Bare:
    "A PriorityRedisHuey with the same two tasks."

    label = "bare"

    def __init__(self, url: str, name: str = "unused") -> None:
        self.url, self.huey = url, PriorityRedisHuey(name, url=url, utc=True)
        self.noop, self.stamp = self.huey.task(name="noop")(noop), self.huey.task(name="stamp")(stamp)

    def fresh(self) -> None:
        self.__init__(self.url, f"bare{uuid.uuid4().hex[:8]}")  # type: ignore[misc]

    def command(self, burst: bool) -> list[str]:
        return [sys.executable, str(HERE), "--bare-consumer", self.url, self.huey.name, *(["--burst"] * burst)]

    def finished(self) -> int:
        return self.huey.storage.conn.hlen(self.huey.storage.result_key)

    def check(self, jobs: int) -> None:
        assert self.finished() == jobs and self.huey.pending_count() == 0, "bare Huey lost jobs"


def bare_consumer(url: str, name: str, burst: bool) -> None:
    "The bare side's consumer process: taskctl's run loop (taskctl/consumer.py) on Huey alone."
    huey = Bare(url, name).huey
    consumer = huey.create_consumer(**CONSUMER)
    consumer.start()
    health, idle_since, deadline = time.monotonic(), None, time.monotonic() + LIMIT
    try:
        while time.monotonic() < deadline:
            health = consumer.loop(health)
            if not burst or huey.pending_count():
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= BURST_SETTLE:
                break
        consumer.stop(graceful=True)  # a job still running finishes first
    except ConsumerStopped:
        pass


class Taskctl:
    "An app built from a config.toml on Redis, and its record."

    label = "taskctl"

    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.folder = url, folder
        (folder / "benchtasks.py").write_text(TASKS)

    def fresh(self) -> None:
        from taskctl.app import build_app
        from taskctl.config import load_settings

        self.config = self.folder / f"tc{uuid.uuid4().hex[:8]}.toml"
        self.config.write_text(
            f'[taskctl]\nmodules = ["benchtasks"]\ndatabase = "{self.url}"\nname = "{self.config.stem}"\n'
        )
        self.app = build_app(load_settings(self.config))
        self.noop, self.stamp = self.app.wrapper("benchtasks.noop"), self.app.wrapper("benchtasks.stamp")

    def command(self, burst: bool) -> list[str]:
        mode = "--burst" if burst else "--no-periodic"
        return [sys.executable, "-m", "taskctl", "--config", str(self.config), "run-consumer", "--workers", "1", mode]

    def counts(self) -> dict[str, int]:
        return {state.value: n for state, n in self.app.record.counts().items() if n}

    def finished(self) -> int:
        return self.counts().get("succeeded", 0)

    def check(self, jobs: int) -> None:
        assert self.counts() == {"succeeded": jobs}, f"taskctl's record says {self.counts()}, not {jobs} succeeded"


Engine = Bare | Taskctl


def spawn(engine: Engine, consumers: int, log: Path, burst: bool = True) -> Procs:
    with log.open("ab") as out:
        return [subprocess.Popen(engine.command(burst), stdout=out, stderr=out) for _ in range(consumers)]


def reap(procs: Procs, interrupt: bool = False) -> None:
    "Wait for the consumers to exit (after a Ctrl+C, if `interrupt`); kill any left after 15 s."
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


def wait_until(done: Callable[[], bool], procs: Procs, log: Path, timeout: float = LIMIT) -> None:
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout or all(p.poll() is not None for p in procs):
            if done():
                return
            reap(procs, interrupt=True)
            output = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"not done after {time.monotonic() - start:.1f}s; consumer output:\n{output}")
        time.sleep(0.005)


class Bench:
    def __init__(self, url: str, folder: Path) -> None:
        self.url, self.log = url, folder / "consumers.log"
        self.client = Redis.from_url(url, decode_responses=True)
        self.engines: list[Engine] = [Bare(url), Taskctl(url, folder)]
        self.samples: dict[tuple[str, str], list[float]] = {}

    def add(self, engine: Engine, measure: str, value: float) -> None:
        self.samples.setdefault((measure, engine.label), []).append(value)

    def fresh(self, engine: Engine) -> None:
        self.client.flushall()
        engine.fresh()

    def redis_cpu(self) -> float:
        return sum(v for k, v in self.client.info("cpu").items() if k in ("used_cpu_user", "used_cpu_sys"))

    def drain(self, engine: Engine, jobs: int, consumers: int) -> None:
        self.fresh(engine)
        start = time.perf_counter()
        for i in range(jobs):
            engine.noop(i)
        self.add(engine, "enqueue", time.perf_counter() - start)
        start, cpu = time.perf_counter(), self.redis_cpu()
        procs = spawn(engine, consumers, self.log)
        wait_until(lambda: engine.finished() > 0, procs, self.log)
        self.add(engine, f"start-up {consumers}", time.perf_counter() - start)
        wait_until(lambda: engine.finished() >= jobs, procs, self.log)
        self.add(engine, f"drain {consumers}", time.perf_counter() - start)
        self.add(engine, f"cpu {consumers}", (self.redis_cpu() - cpu) / jobs)
        reap(procs)
        engine.check(jobs)

    def empty_burst(self, engine: Engine) -> None:
        self.fresh(engine)
        start = time.perf_counter()
        reap(spawn(engine, 1, self.log))
        self.add(engine, "empty burst", time.perf_counter() - start)

    def pickup(self, engine: Engine, procs: Procs, keep: bool = True) -> None:
        token, sent = uuid.uuid4().hex, time.time()
        job_id = engine.stamp(self.url, token).id
        wait_until(lambda: self.client.hexists(STAMPS, token), procs, self.log, 60)
        if keep:
            self.add(engine, "pickup", float(self.client.hget(STAMPS, token) or 0) - sent)
        if keep and isinstance(engine, Taskctl) and (job := engine.app.record.job(job_id)):
            self.add(engine, "claim", (job.started_at or 0) - sent)

    def pickups(self, samples: int) -> None:
        self.client.flushall()  # once: both consumers run at the same time, on queues of their own
        procs: Procs = []
        for engine in self.engines:
            engine.fresh()
            procs += spawn(engine, 1, self.log, burst=False)
        gaps = [0.5 + 0.125 * (i % 5) for i in range(samples)]
        gaps[samples // 2] = 5.0
        try:
            for engine in self.engines:
                self.pickup(engine, procs, keep=False)  # waits for its start-up; connects the task's client
            time.sleep(3)  # idle a few seconds first
            for i, gap in enumerate(gaps):
                for engine in self.engines[:: 1 if i % 2 else -1]:
                    time.sleep(gap / 2)  # so each engine idles about `gap` between its jobs
                    self.pickup(engine, procs)
        finally:
            reap(procs, interrupt=True)

    def in_process(self, rounds: int, chunk: int) -> None:
        self.client.flushall()  # once: each engine has a queue of its own
        for engine in self.engines:
            engine.fresh()
        for r in range(rounds):
            for engine in self.engines[:: 1 if r % 2 == 0 else -1]:
                huey = engine.huey if isinstance(engine, Bare) else engine.app.huey
                for measure in ("inproc enqueue", "inproc drain"):
                    start, cpu, redis_cpu = time.perf_counter(), time.process_time(), self.redis_cpu()
                    if measure == "inproc enqueue":
                        for i in range(chunk):
                            engine.noop(i)
                    else:
                        drain_here(huey)
                    self.add(engine, measure, time.perf_counter() - start)
                    self.add(engine, measure + " cpu", time.process_time() - cpu + self.redis_cpu() - redis_cpu)

    def run(self, jobs: int, rounds: int, samples: int) -> None:
        for r in range(rounds):  # interleaved, so drift on a shared machine hits both alike
            order = self.engines[:: 1 if r % 2 == 0 else -1]
            for consumers in (1, 4):
                for engine in order:
                    self.drain(engine, jobs, consumers)
            for engine in order:
                self.empty_burst(engine)
        self.pickups(samples)


def drain_here(huey: Any) -> None:
    huey.storage.blocking = False  # both wait up to a second on an empty queue: not part of draining
    while (task := huey.dequeue()) is not None:
        huey.execute(task)


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[round(q * (len(values) - 1))]


def figures(s: dict[tuple[str, str], list[float]], jobs: int, e: str) -> list[tuple[str, float, str]]:
    "One engine's rows: label, value, format (.0f: a rate, higher is better; else lower is better)."
    med = statistics.median
    rows = [("1. enqueue, jobs/s", jobs / min(s["enqueue", e]), ".0f")]
    for n, part in ((1, "2."), (4, "3.")):
        drains, ups = s[f"drain {n}", e], s[f"start-up {n}", e]
        net = max(jobs / (d - u) for d, u in zip(drains, ups, strict=True))  # the round's own start-up
        rows += [
            (f"{part} drain, {n} consumer(s), jobs/s, raw", jobs / min(drains), ".0f"),
            (f"   drain, {n} consumer(s), jobs/s, net of start-up", net, ".0f"),
            ("   start-up (spawn to first job done), s, median", med(ups), ".3f"),
            ("   redis-server CPU per job, us, median", med(s[f"cpu {n}", e]) * 1e6, ".1f"),
        ]
    rows.append(("   burst on an empty queue (spawn to exit), s, median", med(s["empty burst", e]), ".3f"))
    rows.append(("4. idle pickup p50, ms (enqueue to task start)", percentile(s["pickup", e], 0.5) * 1000, ".2f"))
    rows.append(("   idle pickup p99, ms", percentile(s["pickup", e], 0.99) * 1000, ".2f"))
    return rows


def report(samples: dict[tuple[str, str], list[float]], jobs: int, chunk: int) -> None:
    print(f"{'':53} {'bare':>9} {'taskctl':>9}  taskctl/bare")
    for (label, bare, spec), (_, ours, _) in zip(
        figures(samples, jobs, "bare"), figures(samples, jobs, "taskctl"), strict=True
    ):
        better = "higher" if spec == ".0f" else "lower"
        print(f"{label:53} {bare:9{spec}} {ours:9{spec}}  {ours / bare:5.2f}  ({better} is better)")
    for measure in ("enqueue", "drain"):
        bare, ours = samples[f"inproc {measure}", "bare"], samples[f"inproc {measure}", "taskctl"]
        ratios = sorted(b / o for b, o in zip(bare, ours, strict=True))
        cpu = [statistics.median(samples[f"inproc {measure} cpu", e]) / chunk * 1e6 for e in ("bare", "taskctl")]
        print(
            f"5. in one process, {measure}: taskctl/bare throughput, median of {len(ratios)} rounds "
            f"{statistics.median(ratios):.2f} (range {ratios[0]:.2f}-{ratios[-1]:.2f}); "
            f"CPU per job {cpu[0]:.0f} us bare, {cpu[1]:.0f} us taskctl"
        )
    claims = [c * 1000 for c in samples["claim", "taskctl"]]
    p50, p99 = percentile(claims, 0.5), percentile(claims, 0.99)
    print(f"   taskctl, enqueue to the record's started_at (the claim): p50 {p50:.2f} ms, p99 {p99:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30, help="idle pickups per engine")
    parser.add_argument("--inproc-rounds", type=int, default=16, help="rounds of the in-process pair")
    parser.add_argument("--inproc-jobs", type=int, default=300, help="jobs per round of the in-process pair")
    parser.add_argument("--quick", action="store_true", help="300 jobs, 1 round, 8 pickups, 6 in-process rounds")
    parser.add_argument("--bare-consumer", nargs=2, metavar=("URL", "QUEUE"), help=argparse.SUPPRESS)
    parser.add_argument("--burst", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_consumer:
        url, queue = args.bare_consumer
        return bare_consumer(url, queue, args.burst)
    if args.quick:
        args.jobs, args.rounds, args.samples, args.inproc_rounds = 300, 1, 8, 6
    started = time.monotonic()
    url, server = start_redis()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench = Bench(url, Path(tmp))
            version = bench.client.info("server")["redis_version"]
            print(f"taskctl on Redis vs bare PriorityRedisHuey, redis-server {version} at {url}")
            print(f"{args.jobs:,} jobs, best of {args.rounds} round(s); {args.samples} pickups each\n")
            bench.run(args.jobs, args.rounds, args.samples)
            bench.in_process(args.inproc_rounds, args.inproc_jobs)
            report(bench.samples, args.jobs, args.inproc_jobs)
    finally:
        stop(server)
    print(f"\nratios: taskctl / bare; target >= 0.8 for throughput. Ran in {time.monotonic() - started:.0f}s.")


if __name__ == "__main__":
    main()
