-- drop removes a receiver group: it no longer holds back any file.
-- ARGV: base, group, now_ms, reason
-- Returns the number of files released because of it, or -1 if the
-- channel has no such group (nothing is recorded then)
local group = word(ARGV[2], 'group')
local now = int(ARGV[3], 'now_ms', 0)
if redis.call('SISMEMBER', base .. 'groups', group) == 0 then return -1 end
local reason = ARGV[4] or ''
if reason == '' then reason = 'dropped by filecast clean' end
local n = drop_group(group)
redis.call('HSET', base .. 'dropped', group, now .. '\t' .. reason)
return n
