-- commit publishes stored chunks in the file's index, in order. Chunks
-- stored after their file was aborted or released are deleted instead
-- (journaled, for a protocol 2 file), so nothing leaks; so are those of a
-- sender whose upload epoch is over (another sender resumed the upload).
-- ARGV: base, id, now_ms, epoch, seq1, len1, digest1, prefix1, seq2, len2, ...
-- (epoch: the sender's upload epoch for a protocol 2 file, '' for
-- protocol 1; prefix: the digest of the file's bytes up to the end of
-- that chunk)
-- Returns 'ok' | 'gone' | 'stale'
local id = word(ARGV[2], 'id')
local fk = fkey(id)
int(ARGV[3], 'now_ms', 0)
local epoch = ARGV[4]
if epoch ~= '' then int(epoch, 'epoch', 0) end
if (#ARGV - 4) % 4 ~= 0 or #ARGV < 8 then bad('chunks', 'want quadruples (seq, len, digest, prefix)') end
local prev = nil
for i = 5, #ARGV, 4 do
  local seq = int(ARGV[i], 'seq', 1)
  int(ARGV[i + 1], 'len', 1)
  digest(ARGV[i + 2], 'digest')
  digest(ARGV[i + 3], 'prefix')
  if prev and seq ~= prev + 1 then bad('seq', seq .. ' after ' .. prev) end
  prev = seq
end
local first, last = tonumber(ARGV[5]), tonumber(ARGV[#ARGV - 3])
-- drop deletes the chunks of this call: the upload has no use for them.
local function drop(reply)
  if epoch ~= '' then
    journal(id, epoch .. ':' .. first .. '-' .. last, 0)
  else
    for i = 5, #ARGV, 4 do redis.call('UNLINK', fk .. ':c:' .. ARGV[i]) end
  end
  return reply
end
local h = redis.call('HMGET', fk, 'state', 'n', 'chunk', 'v', 'ep')
if h[1] ~= 'uploading' then return drop('gone') end
if (h[4] == '2') ~= (epoch ~= '') then bad('epoch', "'" .. epoch .. "' for a file of protocol " .. (h[4] or '?')) end
if epoch ~= '' and tonumber(epoch) ~= (tonumber(h[5]) or 0) then return drop('stale') end
local n, size = tonumber(h[2]), tonumber(h[3])
-- The chunks follow one another; those up to n repeat a call whose reply
-- was lost. The first new one must be n + 1, or nothing is written.
if last > n and first > n + 1 then
  return redis.error_reply('ERR commit of chunk ' .. first .. ' after chunk ' .. n)
end
for i = 5, #ARGV, 4 do
  if tonumber(ARGV[i + 1]) > size then bad('len', ARGV[i + 1] .. ' beyond the chunk size ' .. size) end
end
for i = 5, #ARGV, 4 do
  local seq = tonumber(ARGV[i])
  if seq > n then
    if epoch ~= '' then
      redis.call('XADD', fk .. ':idx', '0-' .. seq, 'n', ARGV[i + 1], 'h', ARGV[i + 2], 'p', ARGV[i + 3], 'e', epoch)
    else
      redis.call('XADD', fk .. ':idx', '0-' .. seq, 'n', ARGV[i + 1], 'h', ARGV[i + 2], 'p', ARGV[i + 3])
    end
  end
end
last = math.max(n, last)
if last > n then redis.call('HSET', fk, 'n', last, 'hb', ARGV[3]) end
return 'ok'
