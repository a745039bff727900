-- commit publishes stored chunks in the file's index, in order. Chunks
-- stored after their file was aborted or released are deleted instead, so
-- nothing leaks.
-- ARGV: base, id, now_ms, seq1, len1, digest1, prefix1, seq2, len2, ...
-- (prefix: the digest of the file's bytes up to the end of that chunk)
-- Returns 'ok' | 'gone'
local fk = fkey(ARGV[2])
if redis.call('HGET', fk, 'state') ~= 'uploading' then
  for i = 4, #ARGV, 4 do redis.call('UNLINK', fk .. ':c:' .. ARGV[i]) end
  return 'gone'
end
local n = tonumber(redis.call('HGET', fk, 'n'))
local last = n
for i = 4, #ARGV, 4 do
  local seq = tonumber(ARGV[i])
  -- seq <= n: a repeat of a call whose reply was lost.
  if seq > last then
    if seq ~= last + 1 then return redis.error_reply('ERR commit of chunk ' .. seq .. ' after chunk ' .. last) end
    redis.call('XADD', fk .. ':idx', '0-' .. seq, 'n', ARGV[i + 1], 'h', ARGV[i + 2], 'p', ARGV[i + 3])
    last = seq
  end
end
if last > n then redis.call('HSET', fk, 'n', last, 'hb', ARGV[3]) end
return 'ok'
