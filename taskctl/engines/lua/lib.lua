-- What every script begins with (a Functions library loads it once): the key prefix,
-- a job's fields and index entries, and `update`, the one way a job's state changes.
-- How many wake-up markers a trim keeps is filled in from redis_scripts.py's WAKE_MARKERS.

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
