-- ARGV: id, host, pid, thread, now, preview, the cached result's JSON up to "value", then
-- Huey's writes: its result ('' none) and the revoke key it clears ('' none).

local id, now = ARGV[1], ARGV[5]
huey_writes(id, ARGV[8], ARGV[9])
local j = fields(id)
if not mine(j, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
end_attempt(id, j, 'succeeded', now)
succeeded(id, j, now, ARGV[6], ARGV[7])
return 1
