-- complete ends an upload: the EOF entry follows the last chunk. With a
-- batch, the file is recorded in the batch's hash in the same step, so a
-- sender killed at any point either completed it and recorded it, or did
-- neither.
-- ARGV: base, id, size, digest, now_ms, batch, sent, ttl_ms
-- Returns 'ok' | 'released' | 'gone'
local id, batch = ARGV[2], ARGV[6]
local fk = fkey(id)
local h = redis.call('HMGET', fk, 'state', 'n', 'name')
if h[1] == 'complete' then return 'ok' end
if h[1] ~= 'uploading' then return 'gone' end
if batch ~= '' then
  local bk = base .. 'batch:' .. batch
  local no = denied('recording a file of a batch', {{'HSET', bk, 'x', 'x'}, {'PEXPIRE', bk, '1'}})
  if no then return no end
  redis.call('HSET', bk, h[3], ARGV[7])
  redis.call('PEXPIRE', bk, ARGV[8])
end
redis.call('XADD', fk .. ':idx', '0-' .. (tonumber(h[2]) + 1), 'eof', '1', 'size', ARGV[3], 'h', ARGV[4])
redis.call('HSET', fk, 'state', 'complete', 'size', ARGV[3], 'digest', ARGV[4], 'hb', ARGV[5])
if redis.call('HGET', base .. 'up', h[3]) == id then redis.call('HDEL', base .. 'up', h[3]) end
if release_if_done(id) then return 'released' end
return 'ok'
