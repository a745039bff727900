-- abort ends an upload that will never complete; receivers see the reason.
-- ARGV: base, id, reason
-- Returns 'ok' | 'gone' | the state it was already in
local id = ARGV[2]
local fk = fkey(id)
local h = redis.call('HMGET', fk, 'state', 'n', 'name')
if not h[1] then return 'gone' end
if h[1] ~= 'uploading' then return h[1] end
redis.call('XADD', fk .. ':idx', '0-' .. (tonumber(h[2]) + 1), 'abort', ARGV[3])
redis.call('HSET', fk, 'state', 'aborted', 'reason', ARGV[3])
if redis.call('HGET', base .. 'up', h[3]) == id then redis.call('HDEL', base .. 'up', h[3]) end
release_if_done(id)
return 'ok'
