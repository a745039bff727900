-- retry delivers a group's dead letters to it again: each file a new entry
-- in the files stream addressed to the group (field g), which the other
-- groups only acknowledge. A file whose record is gone (dropped, or the
-- data lost) cannot be retried.
-- ARGV: base, group, now_ms, id, ...   (no id: every dead letter of the group)
-- Returns the ids delivered again.
local group, now = word(ARGV[2], 'group'), int(ARGV[3], 'now_ms', 0)
for i = 4, #ARGV do word(ARGV[i], 'id') end
local gk = base .. 'g:' .. group
local ids = {}
if #ARGV >= 4 then
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', gk .. ':dead', 0, -1)
end
local out = {}
for _, id in ipairs(ids) do
  local fk = fkey(id)
  if redis.call('ZSCORE', gk .. ':dead', id) and redis.call('EXISTS', fk) == 1 then
    redis.call('ZREM', gk .. ':dead', id)
    redis.call('HDEL', gk .. ':failed', id)
    local e = redis.call('XADD', base .. 'files', '*', 'f', id, 'g', group)
    redis.call('SADD', fk .. ':re', e)
    out[#out + 1] = id
  end
end
return out
