-- drop removes a receiver group: it no longer holds back any file.
-- ARGV: base, group
-- Returns the number of files released because of it
local group = word(ARGV[2], 'group')
pcall(redis.call, 'XGROUP', 'DESTROY', base .. 'files', group)
redis.call('SREM', base .. 'groups', group)
redis.call('DEL', base .. 'g:' .. group, base .. 'g:' .. group .. ':failed')
local released = 0
for _, id in ipairs(redis.call('ZRANGE', base .. 'live', 0, -1)) do
  local fk = fkey(id)
  redis.call('SREM', fk .. ':need', group)
  redis.call('SREM', fk .. ':acks', group)
  redis.call('HDEL', fk .. ':pos', group)
  if release_if_done(id) then released = released + 1 end
end
return released
