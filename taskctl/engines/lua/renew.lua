-- ARGV: owner, host, lease seconds, pids... Heartbeat: this consumer's running jobs in
-- these live processes are still being worked on. A worker thread runs one job at a time:
-- only its latest claim is renewed (an older one's outcome was never written; its lease
-- runs out). Returns how many leases it renewed.

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
