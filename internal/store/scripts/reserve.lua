-- reserve takes n bytes of the channel's budget for chunk seq of a file.
-- ARGV: base, id, seq, n, default_max, now_ms
-- Returns {'ok'} | {'wait', last_event_id} | {'gone', state}
local fk = fkey(ARGV[2])
local seq, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HGET', fk, 'state')
if st ~= 'uploading' then return {'gone', st or 'released'} end
-- A retried call (its reply was lost) must not count the chunk twice.
if seq <= tonumber(redis.call('HGET', fk, 'r')) then return {'ok'} end
local max = tonumber(redis.call('HGET', base .. 'cfg', 'max') or ARGV[5])
local cur = tonumber(redis.call('GET', base .. 'bytes') or '0')
if cur > 0 and cur + n > max then
  redis.call('HSET', fk, 'hb', ARGV[6])
  local last = redis.call('XREVRANGE', base .. 'ev', '+', '-', 'COUNT', 1)
  if #last > 0 then return {'wait', last[1][1]} end
  return {'wait', '0-0'}
end
redis.call('INCRBY', base .. 'bytes', n)
redis.call('HINCRBY', fk, 'held', n)
redis.call('HSET', fk, 'r', seq)
return {'ok'}
