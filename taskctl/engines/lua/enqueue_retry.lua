-- ARGV: old id, then the new job's meta and message. Refused (0) unless the old job
-- failed and was not retried already by a job that still exists (a concurrent retry).

local old = ARGV[1]
local v = redis.call('HMGET', job_key(old), 'state', 'retried_as')
if v[1] ~= 'failed' or (v[2] and redis.call('EXISTS', job_key(v[2])) == 1) then return 0 end
local a = job_args(ARGV[2], ARGV[3])
upsert(a, add_id(a.id) == 0 and fields(a.id))
redis.call('HSET', job_key(a.id), 'retry_of', old)
update(old, {retried_as = a.id})
return 1
