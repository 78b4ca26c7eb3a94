"""The Redis engine's Lua scripts: every state change of a job, each one atomic.
The scripts are the files of lua/, one per change, with their arguments at their top;
this module loads them, and names the keys they share with the Python side.

Redis runs a script whole, with nothing in between, so the queue entry, the
job's hash, its indexes and the counts by state change together (BullMQ's
moveToActive and moveToFinished work the same way). Each script begins with
LIB (lua/lib.lua), whose `update` unindexes a job by its old fields, writes the
new ones and indexes it again: a job's index entries are a function of its
hash, and no script keeps an index by hand.

KEYS[1] is the queue's prefix, `taskctl:{queue}:`. Every key is built from it
and shares its hash tag, so a cluster would keep them all in one slot. Record
times (enqueued, started, finished) come from the caller's clock, as on
SQLite; leases come from Redis's own clock (TIME), so no host's clock decides
whether another host's job is lost. Nothing here unpickles: `data` is opaque.

Keys, all under `taskctl:{queue}:` (one hash tag, so one cluster slot):

    job:<id>        hash    task, args, kwargs (JSON), state, priority, eta, seq, data (the
                            pickled message while the job waits, runs or failed), retries,
                            enqueued_at, started_at, finished_at, duration, attempts, worker_host,
                            worker_pid, worker_thread, owner, lease_until, error_type,
                            error_message, traceback, result_preview, retry_of, retried_as
    attempts:<id>   hash    `<n>:<field>` of each attempt n (started_at, finished_at, duration,
                            worker, outcome, error_type, error_message, traceback)
    queue           zset    queued: score -priority, member `<seq, 16 digits>:<id>`, so the
                            highest priority comes first, then enqueue order
    schedule        zset    scheduled and retrying: score eta, member `<seq>:<id>`
    leases          zset    running and due: score the lease deadline, by Redis's clock
    finished        zset    final jobs: score finished_at; also finished:<state> per final
                            state, and task:<task> per task
    retryable       zset    failed and not retried yet (`retry --failed`): score finished_at
    ids             zset    every job, score 0: a unique id prefix resolves by ZRANGEBYLEX
    counts          hash    state -> jobs, kept by the scripts (`status` is O(1))
    tasks           hash    task -> jobs in the record;  history  set: tasks with finished jobs
    seq             string  enqueue order across hosts (INCR), not a host's clock
    wake            list    markers: each job queued pushes one, an idle worker BLPOPs one (its
                            claim sent right behind), an empty claim drops them all (stale)
    results         hash    task -> JSON of its latest success: job_id, value, computed_at, duration
    huey:kv         hash    Huey's result store (return values, revoke flags, locks)
    huey:counters   hash    Huey's counters (chords)
    catalog         string  what the latest consumer to start runs: its tasks and their options (JSON)
    consumers       hash    owner -> a live consumer's JSON (host, pid, last beat, what it runs)
    known_tasks     set     the tasks consumers have served (latest_result tells a typo by them)
    slot:<task>:<minute>    string  a periodic run queued for that minute (expires after 2 days)
"""

from __future__ import annotations

import hashlib
from importlib.resources import files

# Keys under the prefix, as the docstring draws them.
QUEUE, SCHEDULE, LEASES = "queue", "schedule", "leases"
FINISHED, RETRYABLE, IDS, COUNTS = "finished", "retryable", "ids", "counts"
TASKS, HISTORY, SEQ, WAKE = "tasks", "history", "seq", "wake"
KNOWN_TASKS = "known_tasks"  # a set: the tasks consumers serve, for latest_result
CATALOG = "catalog"  # a string: what the latest consumer to start runs (catalog.py's JSON)
RESULTS, HUEY_KV, HUEY_COUNTERS, CONSUMERS = "results", "huey:kv", "huey:counters", "consumers"
WAKE_MARKERS = 100  # markers kept when the wake list is trimmed (past twice this many)


def prefix(queue: str) -> str:
    return f"taskctl:{{{queue}}}:"


def job_key(queue: str, job_id: str) -> str:
    return f"{prefix(queue)}job:{job_id}"


def attempts_key(queue: str, job_id: str) -> str:
    return f"{prefix(queue)}attempts:{job_id}"


def slot(task: str, at: float) -> str:
    "The key (under the prefix) that marks the periodic run of `task` for the minute `at` as queued."
    return f"slot:{task}:{at!r}"


def entry_id(entry: str) -> str:
    "The job id of a queue or schedule member (`<seq>:<id>`)."
    return entry.partition(":")[2]


# The scripts, each in lua/<name>.lua with its arguments in a comment at its top, in the
# order the library registers them. Each begins with LIB (lua/lib.lua).
NAMES = (
    "enqueue",
    "enqueue_new",
    "enqueue_retry",
    "claim",
    "read_schedule",
    "succeed",
    "fail",
    "skip",
    "late",
    "unclaim",
    "undeliverable",
    "interrupt",
    "renew",
    "recover",
    "cancel",
    "delete",
    "delete_huey_results",
    "import",
)


def _lua(name: str) -> str:
    return (files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


LIB = _lua("lib").replace("ARGV_WAKE_MARKERS", str(WAKE_MARKERS))


def library(scripts: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The scripts as one Redis Functions library (Redis 7): loaded once, so LIB is
    not run again at every call, which costs a third of a short script's time.
    Named by a hash of its code, so consumers of two taskctl versions on one
    Redis each call their own. Returns the code and each script's function name."""
    body = LIB.replace("local P = KEYS[1]", "local P  -- set by each function from its KEYS[1]")
    tag = hashlib.sha1(body.encode() + "".join(scripts.values()).encode()).hexdigest()[:12]
    names = {name: f"taskctl_{tag}_{name}" for name in scripts}
    functions = "".join(
        f"redis.register_function('{names[name]}', function(KEYS, ARGV)\nP = KEYS[1]\n{code}\nend)\n"
        for name, code in scripts.items()
    )
    return f"#!lua name=taskctl_{tag}\n{body}\n{functions}", names


SCRIPTS = {name: _lua(name) for name in NAMES}
LIBRARY, FUNCTIONS = library(SCRIPTS)
