-- ARGV: id, state seen (due or running), attempt, host, pid, dead (1/0), now, message with
-- the retry used up ('' if none left), retries. Compare-and-set: only if the job is still in
-- the state and attempt the caller saw, and its lease ran out (by Redis's clock) or its
-- worker process is dead. Returns 1 if it put the job right.

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
