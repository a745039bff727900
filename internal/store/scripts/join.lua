-- join creates a receiver group; it receives files announced from now on.
-- ARGV: base, group, now_ms
word(ARGV[2], 'group')
int(ARGV[3], 'now_ms', 0)
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', base .. 'files', ARGV[2], '$', 'MKSTREAM')
if not ok and not string.find(tostring(err and err.err or err), 'BUSYGROUP') then return redis.error_reply(tostring(err and err.err or err)) end
redis.call('SADD', base .. 'groups', ARGV[2])
redis.call('HDEL', base .. 'dropped', ARGV[2])
redis.call('HSETNX', base .. 'g:' .. ARGV[2], 'created', ARGV[3])
return 'ok'
