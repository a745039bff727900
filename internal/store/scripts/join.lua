-- join creates a receiver group; it receives files announced from now on.
-- ARGV: base, group, now_ms, call_id (random, the same when a call is retried)
-- Returns {1, the channel's other groups...} if this call (or, retried
-- after a lost reply, the same call: same call_id) created the group, else {0}.
word(ARGV[2], 'group')
int(ARGV[3], 'now_ms', 0)
word(ARGV[4], 'call_id')
local gk = base .. 'g:' .. ARGV[2]
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', base .. 'files', ARGV[2], '$', 'MKSTREAM')
if not ok and not string.find(tostring(err and err.err or err), 'BUSYGROUP') then return redis.error_reply(tostring(err and err.err or err)) end
if ok then
  redis.call('HSET', gk, 'created', ARGV[3], 'creator', ARGV[4])
else
  redis.call('HSETNX', gk, 'created', ARGV[3])
end
redis.call('SADD', base .. 'groups', ARGV[2])
redis.call('HDEL', base .. 'dropped', ARGV[2])
if not ok and redis.call('HGET', gk, 'creator') ~= ARGV[4] then return {0} end
local reply = {1}
for _, g in ipairs(redis.call('SMEMBERS', base .. 'groups')) do
  if g ~= ARGV[2] then reply[#reply + 1] = g end
end
return reply
