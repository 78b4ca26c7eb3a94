-- ARGV: id, owner, now. The consumer stopped mid-run: the job goes back to the queue.

local id = ARGV[1]
local j = fields(id)
if j.state ~= 'running' or j.owner ~= ARGV[2] or redis.call('HEXISTS', job_key(id), 'data') == 0 then return 0 end
local why = 'the consumer stopped during this attempt'
end_attempt(id, j, 'interrupted', ARGV[3], 'Interrupted', why)
update(id, {state = 'queued', lease_until = false, error_type = 'Interrupted', error_message = why}, false, j)
return 1
