-- commit publishes a stored chunk in the file's index. A chunk stored after
-- its file was aborted or released is deleted instead, so nothing leaks.
-- ARGV: base, id, seq, len, digest, now_ms
-- Returns 'ok' | 'gone'
local fk = fkey(ARGV[2])
local seq = tonumber(ARGV[3])
if redis.call('HGET', fk, 'state') ~= 'uploading' then
  redis.call('UNLINK', fk .. ':c:' .. seq)
  return 'gone'
end
local n = tonumber(redis.call('HGET', fk, 'n'))
if seq <= n then return 'ok' end
if seq ~= n + 1 then return redis.error_reply('ERR commit of chunk ' .. seq .. ' after chunk ' .. n) end
redis.call('XADD', fk .. ':idx', '0-' .. seq, 'n', ARGV[4], 'h', ARGV[5])
redis.call('HSET', fk, 'n', seq, 'hb', ARGV[6])
return 'ok'
