-- ARGV: id, now. Revokes a waiting job in the script that takes it off the queue, so no
-- worker can claim it afterwards. Returns {revoked (1/0), the state it was in ('' if none)}.

local id = ARGV[1]
local j = fields(id)
local s = j.state
if not s then return {0, ''} end
if s ~= 'queued' and s ~= 'scheduled' and s ~= 'retrying' then return {0, s} end
update(id, {state = 'revoked', data = false, lease_until = false, finished_at = ARGV[2],
            error_type = 'Cancelled', error_message = 'by taskctl cancel'}, false, j)
return {1, s}
