-- ARGV: id, state (revoked or expired), now. Taken from the queue but never run: not an attempt.

local id = ARGV[1]
local j = fields(id)
if not mine(j, ARGV[4], ARGV[5], ARGV[6]) then return 0 end  -- recovered and reclaimed meanwhile
drop_attempt(id, j.attempts)  -- mine: running, so its latest attempt is the open one
update(id, {state = ARGV[2], data = false, lease_until = false, finished_at = ARGV[3],
            attempts = math.max(tonumber(j.attempts) - 1, 0)}, false, j)
return 1
