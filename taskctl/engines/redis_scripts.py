"""The Redis engine's Lua scripts: every state change of a job, each one atomic.

Redis runs a script whole, with nothing in between, so the queue entry, the
job's hash, its indexes and the counts by state change together (BullMQ's
moveToActive and moveToFinished work the same way). Each script begins with
LIB, whose `update` unindexes a job by its old fields, writes the new ones and
indexes it again: a job's index entries are a function of its hash, and no
script keeps an index by hand.

KEYS[1] is the queue's prefix, `taskctl:{queue}:`. Every key is built from it
and shares its hash tag, so a cluster would keep them all in one slot. Record
times (enqueued, started, finished) come from the caller's clock, as on
SQLite; leases come from Redis's own clock (TIME), so no host's clock decides
whether another host's job is lost. Nothing here unpickles: `data` is opaque.
"""

from __future__ import annotations

import hashlib

# Keys under the prefix; redis_store.py's docstring draws the layout.
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


LIB = """
local P = KEYS[1]
local FINAL = {succeeded = true, failed = true, revoked = true, expired = true}
-- What a script reads of a job, in one HMGET: the fields its indexes are built from, then its claim.
local FIELDS = {'state', 'priority', 'eta', 'seq', 'lease_until', 'started_at', 'finished_at', 'task', 'retried_as',
                'attempts', 'worker_host', 'worker_pid', 'worker_thread', 'owner'}
local ATTEMPT = {'started_at', 'finished_at', 'duration', 'worker', 'outcome', 'error_type', 'error_message',
                 'traceback'}

local function job_key(id) return P .. 'job:' .. id end
local function attempts_key(id) return P .. 'attempts:' .. id end
local function opt(v) if v == '' then return false end return v end
local function fmt(x) return string.format('%.6f', x) end

-- Redis's clock, for leases: hosts' clocks disagree, and a lease decides who may run a job.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Queue and schedule members sort by enqueue order within one score (priority, eta).
local function entry(seq, id) return string.format('%016d', tonumber(seq)) .. ':' .. id end
local function entry_id(e) return string.sub(e, string.find(e, ':', 1, true) + 1) end

-- A job's FIELDS (false: absent), and any `extra` ones asked for.
local function fields(id, extra)
  local names = FIELDS
  if extra then
    names = {unpack(FIELDS)}
    for _, f in ipairs(extra) do names[#names + 1] = f end
  end
  local v = redis.call('HMGET', job_key(id), unpack(names))
  local j = {}
  for i, f in ipairs(names) do j[f] = v[i] end
  return j
end

-- Writes `changes` to a hash; a false value deletes the field, unless `j` (the hash as
-- read, or true for a new one) shows it absent already.
local function write(k, changes, j)
  local set, del = {}, {}
  for f, v in pairs(changes) do
    if v ~= false then
      set[#set + 1] = f; set[#set + 1] = v
    elseif j ~= true and (not j or j[f] ~= false) then
      del[#del + 1] = f
    end
  end
  if #set > 0 then redis.call('HSET', k, unpack(set)) end
  if #del > 0 then redis.call('HDEL', k, unpack(del)) end
end

local function unindex(id, j)
  local s = j.state
  if not s then return end
  redis.call('HINCRBY', P .. 'counts', s, -1)
  if s == 'queued' then
    redis.call('ZREM', P .. 'queue', entry(j.seq, id))
  elseif s == 'scheduled' or s == 'retrying' then
    redis.call('ZREM', P .. 'schedule', entry(j.seq, id))
  elseif s == 'due' or s == 'running' then
    redis.call('ZREM', P .. 'leases', id)
  elseif FINAL[s] then
    redis.call('ZREM', P .. 'finished', id)
    redis.call('ZREM', P .. 'finished:' .. s, id)
    if s == 'failed' then redis.call('ZREM', P .. 'retryable', id) end
    if j.task then
      local k = P .. 'task:' .. j.task
      redis.call('ZREM', k, id)
      if redis.call('ZCARD', k) == 0 then redis.call('SREM', P .. 'history', j.task) end
    end
  end
end

local function index(id, j, quiet)
  local s = j.state
  redis.call('HINCRBY', P .. 'counts', s, 1)
  if s == 'queued' then
    redis.call('ZADD', P .. 'queue', -tonumber(j.priority or '0'), entry(j.seq, id))
    -- One marker wakes one blocked worker; a stale one costs an idle worker one claim
    -- (an empty claim drops them all). Trimmed now and then, not at every push.
    if not quiet and redis.call('LPUSH', P .. 'wake', '1') > 2 * ARGV_WAKE_MARKERS then
      redis.call('LTRIM', P .. 'wake', 0, ARGV_WAKE_MARKERS - 1)
    end
  elseif s == 'scheduled' or s == 'retrying' then
    redis.call('ZADD', P .. 'schedule', j.eta or '0', entry(j.seq, id))
  elseif s == 'due' or s == 'running' then
    redis.call('ZADD', P .. 'leases', j.lease_until or '0', id)
  elseif FINAL[s] then
    local t = j.finished_at or '0'
    redis.call('ZADD', P .. 'finished', t, id)
    redis.call('ZADD', P .. 'finished:' .. s, t, id)
    if j.task then
      redis.call('ZADD', P .. 'task:' .. j.task, t, id)
      redis.call('SADD', P .. 'history', j.task)
    end
    -- `retry --failed` skips a job retried before (by id it can be retried again).
    if s == 'failed' and not j.retried_as then
      redis.call('ZADD', P .. 'retryable', t, id)
    end
  end
end

-- The one way a job's state changes: its index entries and the counts move with its fields.
-- `j` is the job as the script read it (fields(id)), if it did; it ends up as the job now is.
local function update(id, changes, quiet, j)
  j = j or fields(id)
  unindex(id, j)
  write(job_key(id), changes, j)
  for f, v in pairs(changes) do j[f] = v end
  index(id, j, quiet)
end

-- A job still running under this thread's claim: an outcome arriving after the job
-- was recovered (and maybe claimed again elsewhere) must not overwrite it.
local function mine(j, host, pid, thread)
  return j.state == 'running' and j.worker_host == host and j.worker_pid == pid and j.worker_thread == thread
end

local function duration(j, now)
  local started = tonumber(j.started_at or '')
  return started and fmt(tonumber(now) - started) or false
end

local function drop_attempt(id, n)
  local names = {}
  for i, f in ipairs(ATTEMPT) do names[i] = n .. ':' .. f end
  redis.call('HDEL', attempts_key(id), unpack(names))
end

-- Ends the open attempt of a running job: its latest, which its claim began (at started_at).
local function end_attempt(id, j, outcome, now, etype, emsg, tb)
  local n = j.attempts
  -- An open attempt holds only what its claim wrote: there is nothing to delete.
  write(attempts_key(id), {
    [n .. ':outcome'] = outcome, [n .. ':finished_at'] = now, [n .. ':duration'] = duration(j, now),
    [n .. ':error_type'] = opt(etype or ''), [n .. ':error_message'] = opt(emsg or ''),
    [n .. ':traceback'] = opt(tb or '')}, true)
end

-- A job as the enqueue scripts take it: `meta`, one JSON array of id, task, args, kwargs,
-- state, priority, eta, retries, now and the calling worker ('' for what is absent), then
-- its message. One argument, not ten: each argument costs the client and Redis a share of
-- an enqueue's time, and cjson parses the ten in C.
local function job_args(meta, data)
  local m = cjson.decode(meta)
  return {id = m[1], task = m[2], args = m[3], kwargs = m[4], state = m[5], priority = m[6], eta = m[7],
          retries = m[8], now = m[9], claimer = m[10], data = data}
end

-- The ids index holds every job in the record: adding an id there tells a new job from one
-- here already (a retry, a job from the schedule) in the same command (1: new).
local function add_id(id) return redis.call('ZADD', P .. 'ids', 'NX', 0, id) end

-- a: the job (job_args); j: the job as read (fields), false for a new one (its id added
-- already: add_id). Huey enqueues a job again to retry it (same id): the record is kept
-- and its queue entry moves.
local function upsert(a, j)
  local id, state = a.id, a.state
  local seq = redis.call('INCR', P .. 'seq')
  if j and j.state then
    -- A running job sent back to the schedule is a retry waiting for its delay.
    if state == 'scheduled' and j.state == 'running' then state = 'retrying' end
    update(id, {state = state, priority = a.priority, eta = opt(a.eta), seq = seq, data = a.data,
                retries = a.retries, lease_until = false, finished_at = false}, false, j)
    return
  end
  -- A new job, written in one HSET of what it has (the common case: no table walk).
  local set = {'id', id, 'state', state, 'priority', a.priority, 'seq', seq, 'data', a.data, 'retries', a.retries,
               'enqueued_at', a.now, 'attempts', 0}
  local task = opt(a.task)
  if task then set[#set + 1] = 'task'; set[#set + 1] = task end
  if a.args ~= '' then set[#set + 1] = 'args'; set[#set + 1] = a.args end
  if a.kwargs ~= '' then set[#set + 1] = 'kwargs'; set[#set + 1] = a.kwargs end
  local eta = opt(a.eta)
  if eta then set[#set + 1] = 'eta'; set[#set + 1] = eta end
  redis.call('HSET', job_key(id), unpack(set))
  if task then redis.call('HINCRBY', P .. 'tasks', task, 1) end
  index(id, {state = state, priority = a.priority, eta = eta, seq = seq, task = task})
end

-- The job succeeded at `now`: its record, and its task's cached result (`head`: the
-- result's JSON up to its value; JSON is never parsed here).
local function succeeded(id, j, now, shown, head)
  local took = duration(j, now)
  update(id, {state = 'succeeded', data = false, lease_until = false, finished_at = now, duration = took,
              result_preview = shown, error_type = false, error_message = false, traceback = false}, false, j)
  if j.task then
    redis.call('HSET', P .. 'results', j.task,
               head .. ', "computed_at": ' .. now .. ', "duration": ' .. (took or 'null') .. '}')
  end
end

-- Huey's own writes as a job ends (HueyWrites): its result, its revoke flag cleared.
-- Made whoever holds the claim now, as Huey would make them.
local function huey_writes(id, result, revoke)
  if revoke ~= '' then redis.call('HDEL', P .. 'huey:kv', revoke) end
  if result ~= '' then redis.call('HSET', P .. 'huey:kv', id, result) end
end

-- Removes a job and everything of it: hash, attempts, index entries, Huey's unread result.
local function delete_job(id, j)
  local k = job_key(id)
  unindex(id, j)
  redis.call('DEL', k, attempts_key(id))
  redis.call('ZREM', P .. 'ids', id)
  redis.call('HDEL', P .. 'huey:kv', id)
  if j.task and redis.call('HINCRBY', P .. 'tasks', j.task, -1) <= 0 then redis.call('HDEL', P .. 'tasks', j.task) end
end
""".replace("ARGV_WAKE_MARKERS", str(WAKE_MARKERS))

# ARGV: the job's meta and message (LIB's job_args; the calling worker is "host\npid\nthread"),
# then for a periodic run only its slot (minute) and how long to remember it. A slot taken
# already means another consumer queued this run: nothing is queued (0).
ENQUEUE = """
local a = job_args(ARGV[1], ARGV[2])
if ARGV[3] then  -- a periodic run, new unless another consumer queued this slot already
  local key = P .. 'slot:' .. a.task .. ':' .. ARGV[3]
  if not redis.call('SET', key, a.id, 'NX', 'EX', tonumber(ARGV[4])) then return 0 end
end
local j = false
if add_id(a.id) == 0 then  -- a retry, or a job from the schedule: read it whole
  j = fields(a.id)
  -- Huey puts a running job back (a retry) only from the worker running it: a worker
  -- whose claim was recovered meanwhile must not pull it from the worker that has it now.
  local holder = (j.worker_host or '') .. '\\n' .. (j.worker_pid or '') .. '\\n' .. (j.worker_thread or '')
  if j.state == 'running' and holder ~= a.claimer then return 0 end
end
upsert(a, j)
return 1
"""

# ARGV: each job's meta and message (LIB's job_args). Jobs whose id is here already are
# left as they are. Returns how many were new.
ENQUEUE_NEW = """
local added = 0
for i = 1, #ARGV, 2 do
  local a = job_args(ARGV[i], ARGV[i + 1])
  if add_id(a.id) == 1 then
    upsert(a, false)
    added = added + 1
  end
end
return added
"""

# ARGV: old id, then the new job's meta and message. Refused (0) unless the old job
# failed and was not retried already by a job that still exists (a concurrent retry).
ENQUEUE_RETRY = """
local old = ARGV[1]
local v = redis.call('HMGET', job_key(old), 'state', 'retried_as')
if v[1] ~= 'failed' or (v[2] and redis.call('EXISTS', job_key(v[2])) == 1) then return 0 end
local a = job_args(ARGV[2], ARGV[3])
upsert(a, add_id(a.id) == 0 and fields(a.id))
redis.call('HSET', job_key(a.id), 'retry_of', old)
update(old, {retried_as = a.id})
return 1
"""

# ARGV: host, pid, thread, owner, lease seconds, now ('' for Redis's clock plus the next
# argument: the caller's clock minus Redis's, for a claim that waited in Redis behind a
# BLPOP and cannot know when it runs). Claims the first queued job in
# the same script that takes it off the queue: a crash leaves it queued or running,
# never gone (a plain pop would lose it). Returns its message, id and task, and Huey's
# revoke flags of it (`r:<id>`, `rt:<task>`), which Huey reads next: nil if none is queued.
CLAIM = """
local e = redis.call('ZRANGE', P .. 'queue', 0, 0)[1]
if not e then
  -- Nothing is queued, so every marker is stale: a worker would only claim nothing again.
  redis.call('DEL', P .. 'wake')
  return false
end
local id = entry_id(e)
local j = fields(id, {'data', 'enqueued_at'})
if not j.attempts then  -- its hash is gone (evicted, or deleted by hand): drop the entry, not claim it
  redis.call('ZREM', P .. 'queue', e)
  return false
end
local n = tonumber(j.attempts) + 1
local now = ARGV[6]
if now == '' then  -- never before its enqueue: the offset may put it a round trip early
  now = fmt(math.max(clock() + tonumber(ARGV[7]), tonumber(j.enqueued_at or '0')))
end
update(id, {state = 'running', started_at = now, finished_at = false, attempts = n, worker_host = ARGV[1],
            worker_pid = ARGV[2], worker_thread = ARGV[3], owner = ARGV[4],
            lease_until = fmt(clock() + tonumber(ARGV[5]))}, false, j)
-- Attempt n is new: a claim given back unrun (unclaim, skip) drops its attempt.
write(attempts_key(id), {[n .. ':started_at'] = now, [n .. ':outcome'] = 'running',
                         [n .. ':worker'] = ARGV[1] .. ':' .. ARGV[2] .. '/' .. ARGV[3]}, true)
local task = j.task or ''
local flags = redis.call('HMGET', P .. 'huey:kv', 'r:' .. id, 'rt:' .. task)
return {j.data, id, task, flags[1], flags[2]}
"""

# ARGV: epoch, lease seconds, limit. Due jobs move to 'due' rather than vanish: Huey
# enqueues them right after this call, and the lease brings them back if it never does.
READ_SCHEDULE = """
local due = redis.call('ZRANGEBYSCORE', P .. 'schedule', '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local lease = fmt(clock() + tonumber(ARGV[2]))
local out = {}
for _, e in ipairs(due) do
  local id = entry_id(e)
  local j = fields(id, {'data'})
  if j.data then
    out[#out + 1] = j.data
    update(id, {state = 'due', lease_until = lease}, false, j)
  else  -- its hash is gone (evicted, or deleted by hand)
    redis.call('ZREM', P .. 'schedule', e)
  end
end
return out
"""

# ARGV: id, host, pid, thread, now, preview, the cached result's JSON up to "value", then
# Huey's writes: its result ('' none) and the revoke key it clears ('' none).
SUCCEED = """
local id, now = ARGV[1], ARGV[5]
huey_writes(id, ARGV[8], ARGV[9])
local j = fields(id)
if not mine(j, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
end_attempt(id, j, 'succeeded', now)
succeeded(id, j, now, ARGV[6], ARGV[7])
return 1
"""

# ARGV: id, host, pid, thread, now, final (1/0), error type, message, traceback, then Huey's
# writes as SUCCEED takes them. A final failure keeps the message, for `taskctl retry`; a
# retry stays running until Huey puts it back.
FAIL = """
local id, now = ARGV[1], ARGV[5]
huey_writes(id, ARGV[10], ARGV[11])
local j = fields(id)
if not mine(j, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
end_attempt(id, j, 'failed', now, ARGV[7], ARGV[8], ARGV[9])
local changes = {duration = duration(j, now), error_type = ARGV[7], error_message = opt(ARGV[8]),
                 traceback = opt(ARGV[9])}
if ARGV[6] == '1' then
  changes.state, changes.lease_until, changes.finished_at = 'failed', false, now
  update(id, changes, false, j)
else
  write(job_key(id), changes)
end
return 1
"""

# ARGV: id, host, pid, thread, now, outcome (succeeded or failed), error type, message,
# traceback, preview, the cached result's JSON up to "value". An outcome reported after the
# job was recovered as lost (its lease ran out while it still ran) ends that worker's lost
# attempt. A job failed as WorkerLost and not run nor retried since did succeed: it says so (1).
LATE = """
local id, now = ARGV[1], ARGV[5]
local j = fields(id, {'error_type'})
local worker = ARGV[2] .. ':' .. ARGV[3] .. '/' .. ARGV[4]
local n = tonumber(j.attempts or '0')
while n > 0 do
  local v = redis.call('HMGET', attempts_key(id), n .. ':worker', n .. ':outcome')
  if v[1] == worker and v[2] == 'lost' then break end
  n = n - 1
end
if n == 0 then return 0 end
local promote = ARGV[6] == 'succeeded' and j.state == 'failed' and j.error_type == 'WorkerLost'
  and tonumber(j.attempts) == n and not j.retried_as
local started = tonumber(redis.call('HGET', attempts_key(id), n .. ':started_at') or '')
write(attempts_key(id), {[n .. ':outcome'] = ARGV[6], [n .. ':finished_at'] = now,
  [n .. ':duration'] = started and fmt(tonumber(now) - started) or false,
  [n .. ':error_type'] = not promote and opt(ARGV[7]), [n .. ':error_message'] = not promote and opt(ARGV[8]),
  [n .. ':traceback'] = opt(ARGV[9])})
if not promote then return 0 end
succeeded(id, j, now, ARGV[10], ARGV[11])
return 1
"""

# ARGV: id, state (revoked or expired), now. Taken from the queue but never run: not an attempt.
SKIP = """
local id = ARGV[1]
local j = fields(id)
if not mine(j, ARGV[4], ARGV[5], ARGV[6]) then return 0 end  -- recovered and reclaimed meanwhile
drop_attempt(id, j.attempts)  -- mine: running, so its latest attempt is the open one
update(id, {state = ARGV[2], data = false, lease_until = false, finished_at = ARGV[3],
            attempts = math.max(tonumber(j.attempts) - 1, 0)}, false, j)
return 1
"""

# ARGV: id, host, pid, thread, state. The claim is given back unrun, not an attempt: to the
# schedule (Huey found the job not due yet: quiet, waking workers would only have them claim
# it too), or to the queue (the consumer is stopping).
UNCLAIM = """
local id = ARGV[1]
local j = fields(id)
if not mine(j, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
drop_attempt(id, j.attempts)  -- mine: running, so its latest attempt is the open one
-- Not due yet: straight to the schedule, where Huey puts it next (back in the queue,
-- another worker could claim it before Huey does).
local state = ARGV[5] or 'scheduled'
update(id, {state = state, attempts = math.max(tonumber(j.attempts) - 1, 0), started_at = false,
            worker_host = false, worker_pid = false, worker_thread = false, owner = false, lease_until = false},
       state == 'scheduled', j)
return 1
"""

# ARGV: id, now, message, host, pid, thread, error type. A claimed entry this consumer cannot
# run: its task is unknown here (UnknownTask), or it is no Huey message (UndeliverableMessage,
# or BadSignature where messages are signed).
UNDELIVERABLE = """
local id, now, etype = ARGV[1], ARGV[2], ARGV[7] or 'UnknownTask'
local j = fields(id)
if not mine(j, ARGV[4], ARGV[5], ARGV[6]) then return 0 end
end_attempt(id, j, 'failed', now, etype, ARGV[3])
update(id, {state = 'failed', lease_until = false, finished_at = now, error_type = etype,
            error_message = ARGV[3]}, false, j)
return 1
"""

# ARGV: id, owner, now. The consumer stopped mid-run: the job goes back to the queue.
INTERRUPT = """
local id = ARGV[1]
local j = fields(id)
if j.state ~= 'running' or j.owner ~= ARGV[2] or redis.call('HEXISTS', job_key(id), 'data') == 0 then return 0 end
local why = 'the consumer stopped during this attempt'
end_attempt(id, j, 'interrupted', ARGV[3], 'Interrupted', why)
update(id, {state = 'queued', lease_until = false, error_type = 'Interrupted', error_message = why}, false, j)
return 1
"""

# ARGV: owner, host, lease seconds, pids... Heartbeat: this consumer's running jobs in
# these live processes are still being worked on. A worker thread runs one job at a time:
# only its latest claim is renewed (an older one's outcome was never written; its lease
# runs out). Returns how many leases it renewed.
RENEW = """
local pids = {}
for i = 4, #ARGV do pids[ARGV[i]] = true end
local lease = fmt(clock() + tonumber(ARGV[3]))
local latest, started = {}, {}
-- Each worker thread's latest claim only: an earlier one whose outcome never reached
-- the record is not being worked on, and its lease must run out.
for _, id in ipairs(redis.call('ZRANGE', P .. 'leases', 0, -1)) do
  local v = redis.call('HMGET', job_key(id), 'owner', 'worker_host', 'worker_pid', 'worker_thread', 'state',
                       'started_at')
  if v[1] == ARGV[1] and v[2] == ARGV[2] and pids[v[3]] and v[5] == 'running' then
    local who, at = v[3] .. '/' .. (v[4] or ''), tonumber(v[6] or '0')
    if not started[who] or at > started[who] then latest[who], started[who] = id, at end
  end
end
local renewed = 0
for _, id in pairs(latest) do
  redis.call('HSET', job_key(id), 'lease_until', lease)
  redis.call('ZADD', P .. 'leases', lease, id)
  renewed = renewed + 1
end
return renewed
"""

# ARGV: id, state seen (due or running), attempt, host, pid, dead (1/0), now, message with
# the retry used up ('' if none left), retries. Compare-and-set: only if the job is still in
# the state and attempt the caller saw, and its lease ran out (by Redis's clock) or its
# worker process is dead. Returns 1 if it put the job right.
RECOVER = """
local id, now = ARGV[1], ARGV[7]
local j = fields(id)
local expired = tonumber(j.lease_until or '0') < clock()
if j.state ~= ARGV[2] then return 0 end
if j.state == 'due' then
  if not expired then return 0 end
  update(id, {state = 'queued', lease_until = false}, false, j)
  return 1
end
if j.state ~= 'running' or j.attempts ~= ARGV[3] or j.worker_host ~= ARGV[4] or j.worker_pid ~= ARGV[5] then
  return 0
end
if ARGV[6] ~= '1' and not expired then return 0 end
local etype, emsg = 'WorkerLost', 'the worker running this job stopped without finishing it'
end_attempt(id, j, 'lost', now, etype, emsg)
if ARGV[8] ~= '' then
  update(id, {state = 'queued', lease_until = false, data = ARGV[8], retries = ARGV[9],
              seq = redis.call('INCR', P .. 'seq'), error_type = etype, error_message = emsg}, false, j)
else
  update(id, {state = 'failed', lease_until = false, finished_at = now, duration = duration(j, now),
              error_type = etype, error_message = emsg}, false, j)
end
return 1
"""

# ARGV: id, now. Revokes a waiting job in the script that takes it off the queue, so no
# worker can claim it afterwards. Returns {revoked (1/0), the state it was in ('' if none)}.
CANCEL = """
local id = ARGV[1]
local j = fields(id)
local s = j.state
if not s then return {0, ''} end
if s ~= 'queued' and s ~= 'scheduled' and s ~= 'retrying' then return {0, s} end
update(id, {state = 'revoked', data = false, lease_until = false, finished_at = ARGV[2],
            error_type = 'Cancelled', error_message = 'by taskctl cancel'}, false, j)
return {1, s}
"""

# ARGV: index, min, max, offset, batch, most to visit, states (comma-separated, '' any),
# task ('' any), finished before, from, until ('' none). Deletes up to `batch` matching jobs
# of one index, walking it from `offset` (the entries kept so far); each is checked again
# here, so a job that changed meanwhile is left alone. Returns {deleted, kept, exhausted}.
DELETE = """
local src, offset, batch, most = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local states = false
if ARGV[7] ~= '' then
  states = {}
  for s in string.gmatch(ARGV[7], '[^,]+') do states[s] = true end
end
local task, before, from, till = opt(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local entries = src == 'queue' or src == 'schedule'
local function matches(j)
  if not j.state or (states and not states[j.state]) or (task and j.task ~= task) then return false end
  local f = tonumber(j.finished_at or '')
  if (before or from or till) and not f then return false end
  return not ((before and f >= before) or (from and f < from) or (till and f > till))
end
local deleted, kept, visited = 0, 0, 0
while deleted < batch and visited < most do
  local page = redis.call('ZRANGEBYSCORE', P .. src, ARGV[2], ARGV[3], 'LIMIT', offset + kept, 100)
  if #page == 0 then return {deleted, kept, 1} end
  for _, e in ipairs(page) do
    local id = entries and entry_id(e) or e
    local j = fields(id)
    visited = visited + 1
    if matches(j) then
      delete_job(id, j)
      deleted = deleted + 1
      if deleted == batch then break end
    else
      kept = kept + 1
    end
  end
end
return {deleted, kept, 0}
"""

# ARGV: task ('' any), keys... Huey's unread return values of jobs in the record (of the task).
DELETE_HUEY_RESULTS = """
local n = 0
for i = 2, #ARGV do
  local v = redis.call('HMGET', job_key(ARGV[i]), 'state', 'task')
  if v[1] and (ARGV[1] == '' or v[2] == ARGV[1]) then n = n + redis.call('HDEL', P .. 'huey:kv', ARGV[i]) end
end
return n
"""

# ARGV: id, then the job's fields and values, then '--', then its attempts' fields and
# values (`<n>:<field>`). A job already here is left alone: a second `move` doubles nothing.
IMPORT = """
local id = ARGV[1]
local k = job_key(id)
if redis.call('EXISTS', k) == 1 then return 0 end
local job, attempts, i = {}, {}, 2
while ARGV[i] ~= '--' do job[ARGV[i]] = ARGV[i + 1]; i = i + 2 end
for n = i + 1, #ARGV, 2 do attempts[ARGV[n]] = ARGV[n + 1] end
job.seq = tostring(redis.call('INCR', P .. 'seq'))  -- imported oldest first: their order is kept
write(k, job)
if next(attempts) then write(attempts_key(id), attempts) end
redis.call('ZADD', P .. 'ids', 0, id)
if job.task then redis.call('HINCRBY', P .. 'tasks', job.task, 1) end
index(id, fields(id))
return 1
"""


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


SCRIPTS = {
    "enqueue": ENQUEUE,
    "enqueue_new": ENQUEUE_NEW,
    "enqueue_retry": ENQUEUE_RETRY,
    "claim": CLAIM,
    "read_schedule": READ_SCHEDULE,
    "succeed": SUCCEED,
    "fail": FAIL,
    "skip": SKIP,
    "late": LATE,
    "unclaim": UNCLAIM,
    "undeliverable": UNDELIVERABLE,
    "interrupt": INTERRUPT,
    "renew": RENEW,
    "recover": RECOVER,
    "cancel": CANCEL,
    "delete": DELETE,
    "delete_huey_results": DELETE_HUEY_RESULTS,
    "import": IMPORT,
}
LIBRARY, FUNCTIONS = library(SCRIPTS)
