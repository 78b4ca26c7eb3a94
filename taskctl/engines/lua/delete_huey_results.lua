-- ARGV: task ('' any), keys... Huey's unread return values of jobs in the record (of the task).

local n = 0
for i = 2, #ARGV do
  local v = redis.call('HMGET', job_key(ARGV[i]), 'state', 'task')
  if v[1] and (ARGV[1] == '' or v[2] == ARGV[1]) then n = n + redis.call('HDEL', P .. 'huey:kv', ARGV[i]) end
end
return n
