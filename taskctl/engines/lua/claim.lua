-- ARGV: host, pid, thread, owner, lease seconds, now ('' for Redis's clock plus the next
-- argument: the caller's clock minus Redis's, for a claim that waited in Redis behind a
-- BLPOP and cannot know when it runs). Claims the first queued job in
-- the same script that takes it off the queue: a crash leaves it queued or running,
-- never gone (a plain pop would lose it). Returns its message, id and task, and Huey's
-- revoke flags of it (`r:<id>`, `rt:<task>`), which Huey reads next: nil if none is queued.

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
