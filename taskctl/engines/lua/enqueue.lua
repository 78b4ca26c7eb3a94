-- ARGV: the job's meta and message (LIB's job_args; the calling worker is "host\npid\nthread"),
-- then for a periodic run only its slot (minute) and how long to remember it. A slot taken
-- already means another consumer queued this run: nothing is queued (0).

local a = job_args(ARGV[1], ARGV[2])
if ARGV[3] then  -- a periodic run, new unless another consumer queued this slot already
  local key = P .. 'slot:' .. a.task .. ':' .. ARGV[3]
  if not redis.call('SET', key, a.id, 'NX', 'EX', tonumber(ARGV[4])) then return 0 end
end
local j = false
if add_id(a.id) == 0 then  -- a retry, or a job from the schedule: read it whole
  j = fields(a.id)
  -- Huey puts a running job back (a retry) only from the worker running it: a worker
  -- whose claim was recovered meanwhile must not pull it from the worker that has it now.
  local holder = (j.worker_host or '') .. '\n' .. (j.worker_pid or '') .. '\n' .. (j.worker_thread or '')
  if j.state == 'running' and holder ~= a.claimer then return 0 end
end
upsert(a, j)
return 1
