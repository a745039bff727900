-- member claims a member name in a group for one process (a lease).
-- ARGV: base, group, member, token, ttl_ms, force ('1', or 'release' to give it up)
-- Returns 'ok' | the token of the live holder
local k = base .. 'g:' .. word(ARGV[2], 'group') .. ':m:' .. word(ARGV[3], 'member')
word(ARGV[4], 'token')
oneof(ARGV[6], 'force', '0', '1', 'release')
if ARGV[6] ~= 'release' then int(ARGV[5], 'ttl_ms', 1) end
local cur = redis.call('GET', k)
if ARGV[6] == 'release' then
  if cur == ARGV[4] then redis.call('DEL', k) end
  return 'ok'
end
if cur and cur ~= ARGV[4] and ARGV[6] ~= '1' then return cur end
redis.call('SET', k, ARGV[4], 'PX', ARGV[5])
return 'ok'
