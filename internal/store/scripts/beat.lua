-- beat records that the sender of an upload is alive (never recreates a released file).
-- ARGV: base, id, now_ms
local fk = fkey(ARGV[2])
if redis.call('HGET', fk, 'state') ~= 'uploading' then return 0 end
redis.call('HSET', fk, 'hb', ARGV[3])
return 1
