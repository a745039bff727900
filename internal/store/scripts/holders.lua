-- holders says who holds the channel's budget: for each group, the bytes of
-- the files it has not acknowledged (a file waiting for several groups
-- counts for each), when a member was last seen, and which members are
-- blocked (member -> the record of Keys.Blocked). Read only.
-- ARGV: base
-- Returns {{group, bytes, seen_ms, seen_ttl_ms, {member, record, ...}}, ...}
local by = {}
for _, id in ipairs(redis.call('ZRANGE', base .. 'live', 0, -1)) do
  local fk = fkey(id)
  local held = tonumber(redis.call('HGET', fk, 'held') or '0') or 0
  if held > 0 then
    for _, g in ipairs(redis.call('SDIFF', fk .. ':need', fk .. ':acks')) do by[g] = (by[g] or 0) + held end
  end
end
local out = {}
for _, g in ipairs(redis.call('SMEMBERS', base .. 'groups')) do
  local gk = base .. 'g:' .. g
  local h = redis.call('HMGET', gk, 'seen', 'created', 'seenttl')
  out[#out + 1] = {g, by[g] or 0, h[1] or h[2] or '0', h[3] or '0', redis.call('HGETALL', gk .. ':blocked')}
end
return out
