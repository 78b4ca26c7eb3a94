-- ARGV: id, host, pid, thread, now, outcome (succeeded or failed), error type, message,
-- traceback, preview, the cached result's JSON up to "value". An outcome reported after the
-- job was recovered as lost (its lease ran out while it still ran) ends that worker's lost
-- attempt. A job failed as WorkerLost and not run nor retried since did succeed: it says so (1).

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
