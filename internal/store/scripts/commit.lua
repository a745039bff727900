-- commit publishes stored chunks in the file's index, in order. Chunks
-- stored after their file was aborted or released are deleted instead, so
-- nothing leaks.
-- ARGV: base, id, now_ms, seq1, len1, digest1, prefix1, seq2, len2, ...
-- (prefix: the digest of the file's bytes up to the end of that chunk)
-- Returns 'ok' | 'gone'
local fk = fkey(word(ARGV[2], 'id'))
int(ARGV[3], 'now_ms', 0)
if (#ARGV - 3) % 4 ~= 0 or #ARGV < 7 then bad('chunks', 'want quadruples (seq, len, digest, prefix)') end
local prev = nil
for i = 4, #ARGV, 4 do
  local seq = int(ARGV[i], 'seq', 1)
  int(ARGV[i + 1], 'len', 1)
  digest(ARGV[i + 2], 'digest')
  digest(ARGV[i + 3], 'prefix')
  if prev and seq ~= prev + 1 then bad('seq', seq .. ' after ' .. prev) end
  prev = seq
end
if redis.call('HGET', fk, 'state') ~= 'uploading' then
  for i = 4, #ARGV, 4 do redis.call('UNLINK', fk .. ':c:' .. ARGV[i]) end
  return 'gone'
end
local h = redis.call('HMGET', fk, 'n', 'chunk')
local n, size = tonumber(h[1]), tonumber(h[2])
-- The chunks follow one another; those up to n repeat a call whose reply
-- was lost. The first new one must be n + 1, or nothing is written.
local first, last = tonumber(ARGV[4]), tonumber(ARGV[#ARGV - 3])
if last > n and first > n + 1 then
  return redis.error_reply('ERR commit of chunk ' .. first .. ' after chunk ' .. n)
end
for i = 4, #ARGV, 4 do
  if tonumber(ARGV[i + 1]) > size then bad('len', ARGV[i + 1] .. ' beyond the chunk size ' .. size) end
end
for i = 4, #ARGV, 4 do
  local seq = tonumber(ARGV[i])
  if seq > n then redis.call('XADD', fk .. ':idx', '0-' .. seq, 'n', ARGV[i + 1], 'h', ARGV[i + 2], 'p', ARGV[i + 3]) end
end
last = math.max(n, last)
if last > n then redis.call('HSET', fk, 'n', last, 'hb', ARGV[3]) end
return 'ok'
