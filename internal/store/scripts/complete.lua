-- complete ends an upload: the EOF entry follows the last chunk.
-- ARGV: base, id, size, digest, now_ms
-- Returns 'ok' | 'released' | 'gone'
local id = ARGV[2]
local fk = fkey(id)
local h = redis.call('HMGET', fk, 'state', 'n', 'name')
if h[1] == 'complete' then return 'ok' end
if h[1] ~= 'uploading' then return 'gone' end
redis.call('XADD', fk .. ':idx', '0-' .. (tonumber(h[2]) + 1), 'eof', '1', 'size', ARGV[3], 'h', ARGV[4])
redis.call('HSET', fk, 'state', 'complete', 'size', ARGV[3], 'digest', ARGV[4], 'hb', ARGV[5])
if redis.call('HGET', base .. 'up', h[3]) == id then redis.call('HDEL', base .. 'up', h[3]) end
if release_if_done(id) then return 'released' end
return 'ok'
