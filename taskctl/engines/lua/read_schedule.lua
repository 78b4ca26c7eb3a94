-- ARGV: epoch, lease seconds, limit. Due jobs move to 'due' rather than vanish: Huey
-- enqueues them right after this call, and the lease brings them back if it never does.

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
