-- ARGV: id, then the job's fields and values, then '--', then its attempts' fields and
-- values (`<n>:<field>`). A job already here is left alone: a second `move` doubles nothing.

local id = ARGV[1]
local k = job_key(id)
if redis.call('EXISTS', k) == 1 then return 0 end
local job, attempts, i = {}, {}, 2
while ARGV[i] ~= '--' do job[ARGV[i]] = ARGV[i + 1]; i = i + 2 end
for n = i + 1, #ARGV, 2 do attempts[ARGV[n]] = ARGV[n + 1] end
job.seq = tostring(redis.call('INCR', P .. 'seq'))  -- imported oldest first: their order is kept
write(k, job)
if next(attempts) then write(attempts_key(id), attempts) end
redis.call('ZADD', P .. 'ids', 0, id)
if job.task then redis.call('HINCRBY', P .. 'tasks', job.task, 1) end
index(id, fields(id))
return 1
