-- ARGV: id, host, pid, thread, now, final (1/0), error type, message, traceback, then Huey's
-- writes as SUCCEED takes them. A final failure keeps the message, for `taskctl retry`; a
-- retry stays running until Huey puts it back.

local id, now = ARGV[1], ARGV[5]
huey_writes(id, ARGV[10], ARGV[11])
local j = fields(id)
if not mine(j, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
end_attempt(id, j, 'failed', now, ARGV[7], ARGV[8], ARGV[9])
local changes = {duration = duration(j, now), error_type = ARGV[7], error_message = opt(ARGV[8]),
                 traceback = opt(ARGV[9])}
if ARGV[6] == '1' then
  changes.state, changes.lease_until, changes.finished_at = 'failed', false, now
  update(id, changes, false, j)
else
  write(job_key(id), changes)
end
return 1
