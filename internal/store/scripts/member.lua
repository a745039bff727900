-- member claims a member name in a group for one process (a lease).
-- A claim or renewal also records, in the group's hash, when a member was
-- last seen (for status and group expiry).
-- ARGV: base, group, member, token, ttl_ms, force ('1', or 'release' to give it up), now_ms
-- Returns 'ok' | the token of the live holder
local k = base .. 'g:' .. word(ARGV[2], 'group') .. ':m:' .. word(ARGV[3], 'member')
word(ARGV[4], 'token')
oneof(ARGV[6], 'force', '0', '1', 'release')
if ARGV[6] ~= 'release' then int(ARGV[5], 'ttl_ms', 1) end
local now = int(ARGV[7], 'now_ms', 0)
local cur = redis.call('GET', k)
if ARGV[6] == 'release' then
  if cur == ARGV[4] then
    redis.call('DEL', k)
    redis.call('HSET', base .. 'g:' .. ARGV[2], 'seen', now, 'seenttl', 0) -- gone from now
  end
  return 'ok'
end
if cur and cur ~= ARGV[4] and ARGV[6] ~= '1' then return cur end
redis.call('SET', k, ARGV[4], 'PX', ARGV[5])
-- A member renews its claim well within its ttl: gone, once seen is older.
redis.call('HSET', base .. 'g:' .. ARGV[2], 'seen', now, 'seenttl', ARGV[5])
return 'ok'
