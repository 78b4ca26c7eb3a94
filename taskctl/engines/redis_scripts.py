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

# Keys under the prefix; redis_store.py's docstring draws the layout.
QUEUE, SCHEDULE, LEASES, RUNNING = "queue", "schedule", "leases", "running"
FINISHED, RETRYABLE, IDS, COUNTS = "finished", "retryable", "ids", "counts"
TASKS, HISTORY, ENQUEUED, SEQ, WAKE = "tasks", "history", "enqueued", "seq", "wake"
RESULTS, HUEY_KV, HUEY_COUNTERS, CONSUMERS = "results", "huey:kv", "huey:counters", "consumers"
WAKE_MARKERS = 100  # at most this many idle workers are woken by one burst


def prefix(queue: str) -> str:
    return f"taskctl:{{{queue}}}:"


def job_key(queue: str, job_id: str) -> str:
    return f"{prefix(queue)}job:{job_id}"


def attempts_key(queue: str, job_id: str) -> str:
    return f"{prefix(queue)}attempts:{job_id}"


def entry_id(entry: str) -> str:
    "The job id of a queue or schedule member (`<seq>:<id>`)."
    return entry.partition(":")[2]


LIB = """
local P = KEYS[1]
local FINAL = {succeeded = true, failed = true, revoked = true, expired = true}
local FIELDS = {'state', 'priority', 'eta', 'seq', 'lease_until', 'started_at', 'finished_at', 'task', 'retried_as'}
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

local function fields(id)
  local v = redis.call('HMGET', job_key(id), unpack(FIELDS))
  local j = {}
  for i, f in ipairs(FIELDS) do j[f] = v[i] end
  return j
end

-- Writes `changes` to a hash; a false value deletes the field.
local function write(k, changes)
  local set, del = {}, {}
  for f, v in pairs(changes) do
    if v == false then del[#del + 1] = f else set[#set + 1] = f; set[#set + 1] = v end
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
    redis.call('ZREM', P .. 'running', id)
  elseif FINAL[s] then
    redis.call('ZREM', P .. 'finished', id)
    redis.call('ZREM', P .. 'finished:' .. s, id)
    redis.call('ZREM', P .. 'retryable', id)
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
    if not quiet then
      -- One marker wakes one blocked worker; a stale one costs an idle worker one claim.
      redis.call('LPUSH', P .. 'wake', '1')
      redis.call('LTRIM', P .. 'wake', 0, ARGV_WAKE_MARKERS - 1)
    end
  elseif s == 'scheduled' or s == 'retrying' then
    redis.call('ZADD', P .. 'schedule', j.eta or '0', entry(j.seq, id))
  elseif s == 'due' or s == 'running' then
    redis.call('ZADD', P .. 'leases', j.lease_until or '0', id)
    if s == 'running' then redis.call('ZADD', P .. 'running', j.started_at or '0', id) end
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
local function update(id, changes, quiet)
  unindex(id, fields(id))
  write(job_key(id), changes)
  index(id, fields(id), quiet)
end

-- A job still running under this thread's claim: an outcome arriving after the job
-- was recovered (and maybe claimed again elsewhere) must not overwrite it.
local function mine(id, host, pid, thread)
  local v = redis.call('HMGET', job_key(id), 'state', 'worker_host', 'worker_pid', 'worker_thread')
  return v[1] == 'running' and v[2] == host and v[3] == pid and v[4] == thread
end

local function duration(id, now)
  local started = tonumber(redis.call('HGET', job_key(id), 'started_at') or '')
  return started and fmt(tonumber(now) - started) or false
end

-- The latest attempt's number, while that attempt is still running.
local function open_attempt(id)
  local n = redis.call('HGET', job_key(id), 'attempts')
  if n and redis.call('HGET', attempts_key(id), n .. ':outcome') == 'running' then return n end
  return false
end

local function drop_attempt(id, n)
  local names = {}
  for i, f in ipairs(ATTEMPT) do names[i] = n .. ':' .. f end
  redis.call('HDEL', attempts_key(id), unpack(names))
end

local function end_attempt(id, outcome, now, etype, emsg, tb)
  local n = open_attempt(id)
  if not n then return end
  local started = tonumber(redis.call('HGET', attempts_key(id), n .. ':started_at'))
  write(attempts_key(id), {
    [n .. ':outcome'] = outcome, [n .. ':finished_at'] = now,
    [n .. ':duration'] = started and fmt(tonumber(now) - started) or false,
    [n .. ':error_type'] = opt(etype or ''), [n .. ':error_message'] = opt(emsg or ''),
    [n .. ':traceback'] = opt(tb or '')})
end

-- a: id, task, args, kwargs, state, priority, eta, data, retries, now. Huey enqueues a
-- job again to retry it (same id): the record is kept and its queue entry moves.
local function upsert(a)
  local id, state = a[1], a[5]
  local k = job_key(id)
  local seq = redis.call('INCR', P .. 'seq')
  local old = redis.call('HGET', k, 'state')
  if old then
    -- A running job sent back to the schedule is a retry waiting for its delay.
    if state == 'scheduled' and old == 'running' then state = 'retrying' end
    update(id, {state = state, priority = a[6], eta = opt(a[7]), seq = seq, data = a[8], retries = a[9],
                lease_until = false, finished_at = false})
    return
  end
  write(k, {id = id, task = opt(a[2]), args = opt(a[3]), kwargs = opt(a[4]), state = state, priority = a[6],
            eta = opt(a[7]), seq = seq, data = a[8], retries = a[9], enqueued_at = a[10], attempts = 0})
  redis.call('ZADD', P .. 'ids', 0, id)
  local task = opt(a[2])
  if task then
    redis.call('HINCRBY', P .. 'tasks', task, 1)
    -- Cron de-duplication asks "queued since?": the latest enqueue of each task.
    if tonumber(a[10]) > tonumber(redis.call('HGET', P .. 'enqueued', task) or '0') then
      redis.call('HSET', P .. 'enqueued', task, a[10])
    end
  end
  index(id, fields(id))
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

# ARGV: id, task, args, kwargs, state, priority, eta, data, retries, now, for a periodic
# run its slot (minute) and how long to remember it ('' and 0 if not), then the
# calling worker's host, pid and thread. A slot taken already
# means another consumer queued this run: nothing is queued (0).
ENQUEUE = """
-- Huey puts a running job back (a retry) only from the worker running it: a worker
-- whose claim was recovered meanwhile must not pull it from the worker that has it now.
if ARGV[13] and redis.call('HGET', job_key(ARGV[1]), 'state') == 'running'
   and not mine(ARGV[1], ARGV[13], ARGV[14], ARGV[15]) then return 0 end
if ARGV[11] and ARGV[11] ~= '' then
  local key = P .. 'slot:' .. ARGV[2] .. ':' .. ARGV[11]
  if not redis.call('SET', key, ARGV[1], 'NX', 'EX', tonumber(ARGV[12])) then return 0 end
end
upsert(ARGV)
return 1
"""

# ARGV: old id, then the new job as ENQUEUE takes it. Refused (0) unless the old job
# failed and was not retried already by a job that still exists (a concurrent retry).
ENQUEUE_RETRY = """
local old = ARGV[1]
local v = redis.call('HMGET', job_key(old), 'state', 'retried_as')
if v[1] ~= 'failed' or (v[2] and redis.call('EXISTS', job_key(v[2])) == 1) then return 0 end
local a = {}
for i = 2, #ARGV do a[i - 1] = ARGV[i] end
upsert(a)
redis.call('HSET', job_key(a[1]), 'retry_of', old)
update(old, {retried_as = a[1]})
return 1
"""

# ARGV: host, pid, thread, owner, lease seconds, now. Claims the first queued job in
# the same script that takes it off the queue: a crash leaves it queued or running,
# never gone (a plain pop would lose it). Returns its message, or nil.
CLAIM = """
local e = redis.call('ZRANGE', P .. 'queue', 0, 0)[1]
if not e then return false end
local id = entry_id(e)
local k = job_key(id)
local n = redis.call('HGET', k, 'attempts')
if not n then  -- its hash is gone (evicted, or deleted by hand): drop the entry, not claim it
  redis.call('ZREM', P .. 'queue', e)
  return false
end
n = tonumber(n) + 1
update(id, {state = 'running', started_at = ARGV[6], finished_at = false, attempts = n, worker_host = ARGV[1],
            worker_pid = ARGV[2], worker_thread = ARGV[3], owner = ARGV[4],
            lease_until = fmt(clock() + tonumber(ARGV[5]))})
drop_attempt(id, n)
write(attempts_key(id), {[n .. ':started_at'] = ARGV[6], [n .. ':outcome'] = 'running',
                         [n .. ':worker'] = ARGV[1] .. ':' .. ARGV[2] .. '/' .. ARGV[3]})
return redis.call('HGET', k, 'data')
"""

# ARGV: epoch, lease seconds, limit. Due jobs move to 'due' rather than vanish: Huey
# enqueues them right after this call, and the lease brings them back if it never does.
READ_SCHEDULE = """
local due = redis.call('ZRANGEBYSCORE', P .. 'schedule', '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local lease = fmt(clock() + tonumber(ARGV[2]))
local out = {}
for _, e in ipairs(due) do
  local id = entry_id(e)
  local data = redis.call('HGET', job_key(id), 'data')
  if data then
    out[#out + 1] = data
    update(id, {state = 'due', lease_until = lease})
  else  -- its hash is gone (evicted, or deleted by hand)
    redis.call('ZREM', P .. 'schedule', e)
  end
end
return out
"""

# ARGV: id, host, pid, thread, now, preview, the cached result's JSON up to "value".
SUCCEED = """
local id, now = ARGV[1], ARGV[5]
if not mine(id, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
local took = duration(id, now)
update(id, {state = 'succeeded', data = false, lease_until = false, finished_at = now, duration = took,
            result_preview = ARGV[6], error_type = false, error_message = false, traceback = false})
local task = redis.call('HGET', job_key(id), 'task')
if task then
  redis.call('HSET', P .. 'results', task,
             ARGV[7] .. ', "computed_at": ' .. now .. ', "duration": ' .. (took or 'null') .. '}')
end
end_attempt(id, 'succeeded', now)
return 1
"""

# ARGV: id, host, pid, thread, now, final (1/0), error type, message, traceback. A final
# failure keeps the message, for `taskctl retry`; a retry stays running until Huey puts it back.
FAIL = """
local id, now = ARGV[1], ARGV[5]
if not mine(id, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
local changes = {duration = duration(id, now), error_type = ARGV[7], error_message = opt(ARGV[8]),
                 traceback = opt(ARGV[9])}
if ARGV[6] == '1' then
  changes.state, changes.lease_until, changes.finished_at = 'failed', false, now
  update(id, changes)
else
  write(job_key(id), changes)
end
end_attempt(id, 'failed', now, ARGV[7], ARGV[8], ARGV[9])
return 1
"""

# ARGV: id, state (revoked or expired), now. Taken from the queue but never run: not an attempt.
SKIP = """
local id = ARGV[1]
if not mine(id, ARGV[4], ARGV[5], ARGV[6]) then return 0 end  -- recovered and reclaimed meanwhile
local n = redis.call('HGET', job_key(id), 'attempts')
local open = open_attempt(id)
if open then drop_attempt(id, open) end
update(id, {state = ARGV[2], data = false, lease_until = false, finished_at = ARGV[3],
            attempts = math.max(tonumber(n) - 1, 0)})
return 1
"""

# ARGV: id, host, pid, thread. Huey found the job not due yet and schedules it: the claim
# is given back, not an attempt. Quiet: waking workers would only have them claim it too.
UNCLAIM = """
local id = ARGV[1]
if not mine(id, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
local n = tonumber(redis.call('HGET', job_key(id), 'attempts'))
local open = open_attempt(id)
if open then drop_attempt(id, open) end
-- Straight to the schedule, where Huey puts it next: back in the queue, another
-- worker could claim it before Huey does.
update(id, {state = 'scheduled', attempts = math.max(n - 1, 0), started_at = false, worker_host = false,
            worker_pid = false, worker_thread = false, owner = false, lease_until = false}, true)
return 1
"""

# ARGV: id, now, message. A claimed message this consumer cannot run (its task is unknown here).
UNDELIVERABLE = """
local id, now = ARGV[1], ARGV[2]
if not mine(id, ARGV[4], ARGV[5], ARGV[6]) then return 0 end
update(id, {state = 'failed', lease_until = false, finished_at = now, error_type = 'UnknownTask',
            error_message = ARGV[3]})
end_attempt(id, 'failed', now, 'UnknownTask', ARGV[3])
return 1
"""

# ARGV: id, owner, now. The consumer stopped mid-run: the job goes back to the queue.
INTERRUPT = """
local id = ARGV[1]
local v = redis.call('HMGET', job_key(id), 'state', 'owner')
if v[1] ~= 'running' or v[2] ~= ARGV[2] or redis.call('HEXISTS', job_key(id), 'data') == 0 then return 0 end
local why = 'the consumer stopped during this attempt'
update(id, {state = 'queued', lease_until = false, error_type = 'Interrupted', error_message = why})
end_attempt(id, 'interrupted', ARGV[3], 'Interrupted', why)
return 1
"""

# ARGV: owner, host, lease seconds, pids... Heartbeat: this consumer's running jobs in
# these live processes are still being worked on. Returns how many leases it renewed.
RENEW = """
local pids = {}
for i = 4, #ARGV do pids[ARGV[i]] = true end
local lease = fmt(clock() + tonumber(ARGV[3]))
local renewed = 0
for _, id in ipairs(redis.call('ZRANGE', P .. 'running', 0, -1)) do
  local v = redis.call('HMGET', job_key(id), 'owner', 'worker_host', 'worker_pid')
  if v[1] == ARGV[1] and v[2] == ARGV[2] and pids[v[3]] then
    redis.call('HSET', job_key(id), 'lease_until', lease)
    redis.call('ZADD', P .. 'leases', lease, id)
    renewed = renewed + 1
  end
end
return renewed
"""

# ARGV: id, state seen (due or running), attempt, host, pid, dead (1/0), now, message with
# the retry used up ('' if none left), retries. Compare-and-set: only if the job is still in
# the state and attempt the caller saw, and its lease ran out (by Redis's clock) or its
# worker process is dead. Returns 1 if it put the job right.
RECOVER = """
local id, now = ARGV[1], ARGV[7]
local v = redis.call('HMGET', job_key(id), 'state', 'lease_until', 'attempts', 'worker_host', 'worker_pid')
local expired = tonumber(v[2] or '0') < clock()
if v[1] ~= ARGV[2] then return 0 end
if v[1] == 'due' then
  if not expired then return 0 end
  update(id, {state = 'queued', lease_until = false})
  return 1
end
if v[1] ~= 'running' or v[3] ~= ARGV[3] or v[4] ~= ARGV[4] or v[5] ~= ARGV[5] then return 0 end
if ARGV[6] ~= '1' and not expired then return 0 end
local etype, emsg = 'WorkerLost', 'the worker running this job stopped without finishing it'
end_attempt(id, 'lost', now, etype, emsg)
if ARGV[8] ~= '' then
  update(id, {state = 'queued', lease_until = false, data = ARGV[8], retries = ARGV[9],
              seq = redis.call('INCR', P .. 'seq'), error_type = etype, error_message = emsg})
else
  update(id, {state = 'failed', lease_until = false, finished_at = now, duration = duration(id, now),
              error_type = etype, error_message = emsg})
end
return 1
"""

# ARGV: id, now. Revokes a waiting job in the script that takes it off the queue, so no
# worker can claim it afterwards. Returns {revoked (1/0), the state it was in ('' if none)}.
CANCEL = """
local id = ARGV[1]
local s = redis.call('HGET', job_key(id), 'state')
if not s then return {0, ''} end
if s ~= 'queued' and s ~= 'scheduled' and s ~= 'retrying' then return {0, s} end
update(id, {state = 'revoked', data = false, lease_until = false, finished_at = ARGV[2],
            error_type = 'Cancelled', error_message = 'by taskctl cancel'})
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
if job.task then
  redis.call('HINCRBY', P .. 'tasks', job.task, 1)
  if tonumber(job.enqueued_at) > tonumber(redis.call('HGET', P .. 'enqueued', job.task) or '0') then
    redis.call('HSET', P .. 'enqueued', job.task, job.enqueued_at)
  end
end
index(id, fields(id))
return 1
"""

SCRIPTS = {
    "enqueue": ENQUEUE,
    "enqueue_retry": ENQUEUE_RETRY,
    "claim": CLAIM,
    "read_schedule": READ_SCHEDULE,
    "succeed": SUCCEED,
    "fail": FAIL,
    "skip": SKIP,
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
