-- ARGV: id, now, message, host, pid, thread, error type. A claimed entry this consumer cannot
-- run: its task is unknown here (UnknownTask), or it is no Huey message (UndeliverableMessage,
-- or BadSignature where messages are signed).

local id, now, etype = ARGV[1], ARGV[2], ARGV[7] or 'UnknownTask'
local j = fields(id)
if not mine(j, ARGV[4], ARGV[5], ARGV[6]) then return 0 end
end_attempt(id, j, 'failed', now, etype, ARGV[3])
update(id, {state = 'failed', lease_until = false, finished_at = now, error_type = etype,
            error_message = ARGV[3]}, false, j)
return 1
