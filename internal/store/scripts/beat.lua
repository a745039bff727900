-- beat records that the sender of an upload is alive (never recreates a released file).
-- ARGV: base, id, now_ms
local fk = fkey(word(ARGV[2], 'id'))
int(ARGV[3], 'now_ms', 0)
if redis.call('HGET', fk, 'state') ~= 'uploading' then return 0 end
redis.call('HSET', fk, 'hb', ARGV[3])
return 1
