-- complete ends an upload: the EOF entry follows the last chunk. With a
-- batch, the file is then recorded in the batch's hash in the same step.
-- The record is written last: Redis does not undo a script's writes when a
-- later command fails, and a file recorded but not completed would be
-- skipped by a rerun and never delivered, while one completed but not
-- recorded is merely sent again.
-- ARGV: base, id, size, digest, now_ms, batch, sent, ttl_ms
-- Returns 'ok' (also for a file complete already: a retry) | 'released' (no
-- group needed it any more) | 'aborted' | 'gone' (no record)
local id, batch, ttl = word(ARGV[2], 'id'), ARGV[6] or '', nil
int(ARGV[3], 'size', 0)
digest(ARGV[4], 'digest')
int(ARGV[5], 'now_ms', 0)
if batch ~= '' then
  word(batch, 'batch')
  ttl = int(ARGV[8], 'ttl_ms', 1)
  if (ARGV[7] or '') == '' then bad('sent', '') end
end
local fk = fkey(id)
local h = redis.call('HMGET', fk, 'state', 'n', 'name')
if h[1] == 'complete' then return 'ok' end
if h[1] == 'aborted' then return 'aborted' end
if h[1] ~= 'uploading' then return 'gone' end
local n = tonumber(h[2])
if not n then return redis.error_reply('ERR file record ' .. id .. ' has no chunk count') end
local bk = batch_key(batch)
if batch ~= '' then
  local no = denied('recording a file of a batch', batch_cmds(bk))
  if no then return no end
end
redis.call('XADD', fk .. ':idx', '0-' .. (n + 1), 'eof', '1', 'size', ARGV[3], 'h', ARGV[4])
redis.call('HSET', fk, 'state', 'complete', 'size', ARGV[3], 'digest', ARGV[4], 'hb', ARGV[5])
if redis.call('HGET', base .. 'up', h[3]) == id then redis.call('HDEL', base .. 'up', h[3]) end
local released = release_if_done(id)
if batch ~= '' then record_sent(bk, h[3], ARGV[7], ttl) end
if released then return 'released' end
return 'ok'
