-- ARGV: each job's meta and message (LIB's job_args). Jobs whose id is here already are
-- left as they are. Returns how many were new.

local added = 0
for i = 1, #ARGV, 2 do
  local a = job_args(ARGV[i], ARGV[i + 1])
  if add_id(a.id) == 1 then
    upsert(a, false)
    added = added + 1
  end
end
return added
