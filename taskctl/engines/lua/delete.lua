-- ARGV: index, min, max, offset, batch, most to visit, states (comma-separated, '' any),
-- task ('' any), finished before, from, until ('' none). Deletes up to `batch` matching jobs
-- of one index, walking it from `offset` (the entries kept so far); each is checked again
-- here, so a job that changed meanwhile is left alone. Returns {deleted, kept, exhausted}.

local src, offset, batch, most = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local states = false
if ARGV[7] ~= '' then
  states = {}
  for s in string.gmatch(ARGV[7], '[^,]+') do states[s] = true end
end
local task, before, from, till = opt(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local entries = src == 'queue' or src == 'schedule'
local function matches(j)
  if not j.state or (states and not states[j.state]) or (task and j.task ~= task) then return false end
  local f = tonumber(j.finished_at or '')
  if (before or from or till) and not f then return false end
  return not ((before and f >= before) or (from and f < from) or (till and f > till))
end
local deleted, kept, visited = 0, 0, 0
while deleted < batch and visited < most do
  local page = redis.call('ZRANGEBYSCORE', P .. src, ARGV[2], ARGV[3], 'LIMIT', offset + kept, 100)
  if #page == 0 then return {deleted, kept, 1} end
  for _, e in ipairs(page) do
    local id = entries and entry_id(e) or e
    local j = fields(id)
    visited = visited + 1
    if matches(j) then
      delete_job(id, j)
      deleted = deleted + 1
      if deleted == batch then break end
    else
      kept = kept + 1
    end
  end
end
return {deleted, kept, 0}
