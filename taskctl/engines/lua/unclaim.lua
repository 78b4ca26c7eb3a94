-- ARGV: id, host, pid, thread, state. The claim is given back unrun, not an attempt: to the
-- schedule (Huey found the job not due yet: quiet, waking workers would only have them claim
-- it too), or to the queue (the consumer is stopping).

local id = ARGV[1]
local j = fields(id)
if not mine(j, ARGV[2], ARGV[3], ARGV[4]) then return 0 end
drop_attempt(id, j.attempts)  -- mine: running, so its latest attempt is the open one
-- Not due yet: straight to the schedule, where Huey puts it next (back in the queue,
-- another worker could claim it before Huey does).
local state = ARGV[5] or 'scheduled'
update(id, {state = state, attempts = math.max(tonumber(j.attempts) - 1, 0), started_at = false,
            worker_host = false, worker_pid = false, worker_thread = false, owner = false, lease_until = false},
       state == 'scheduled', j)
return 1
