-- put publishes a whole small file in one step: announce, take budget,
-- store its one chunk, index it and complete it, as begin, reserve, SET,
-- commit and complete would one after the other. The file is complete when
-- it first appears, so readers find it exactly as they would find a file
-- uploaded the long way that had finished.
-- ARGV: base, id, name, sender, now_ms, default_max, batch, sent, ttl_ms,
--       skip_same, size, digest, value, field, value, ...
-- With skip_same '1', a file the batch already sent from the same source
-- with the same size, mtime and mode is not published again: the reply is
-- {'skipped', record}, so that a sender needs no separate round trip to
-- ask.
-- value is the whole content (size bytes, at most one chunk; empty for an
-- empty file), digest its XXH3-128 (the chunk's and the file's).
-- A call retried after its reply was lost finds its own file (same id and
-- sender) and returns it, instead of a collision that would publish the
-- file twice; if every group has already released it, its batch record
-- (same id) says it was published. That is why only files of a batch take
-- this path.
-- Returns {'new', id, entry} | {'nogroups'} | {'collision'} | {'slow'}:
-- the file must take the long way (an unfinished upload of the name to
-- resume, or no budget for it now).
local id, name, sender, now, batch, ttl = word(ARGV[2], 'id'), ARGV[3], word(ARGV[4], 'sender'), int(ARGV[5], 'now_ms', 0), word(ARGV[7], 'batch'),
  int(ARGV[9], 'ttl_ms', 1)
local skip_same, size, digest, value = oneof(ARGV[10], 'skip_same', '0', '1'), int(ARGV[11], 'size', 0), digest(ARGV[12], 'digest'), ARGV[13]
int(ARGV[6], 'default_max', 1)
if name == '' then bad('name', '') end
if (ARGV[8] or '') == '' then bad('sent', '') end
if size ~= #(value or '') then bad('size', ARGV[11] .. ' but ' .. #(value or '') .. ' bytes') end
fields(14)
local fk = fkey(id)
local bk = batch_key(batch)
if redis.call('EXISTS', fk) == 1 then
  local mine = redis.call('HMGET', fk, 'sender', 'entry')
  if mine[1] == sender then return {'new', id, mine[2] or ''} end
  return {'collision'}
end
local done = redis.call('HGET', bk, name)
if done and string.match(done, '^%S+ %S+ %S+ %S+ (%S+)') == id then return {'new', id, ''} end
if done and skip_same == '1' then
  -- size, mtime, mode and source; not the digest or the id.
  local pat = '^(%S+) (%S+) (%S+) %S+ %S+ (.*)$'
  local a1, a2, a3, a4 = string.match(done, pat)
  local b1, b2, b3, b4 = string.match(ARGV[8], pat)
  if a1 and a1 == b1 and a2 == b2 and a3 == b3 and a4 == b4 then return {'skipped', done} end
end
if redis.call('SCARD', base .. 'groups') == 0 then return {'nogroups'} end
local cur = redis.call('HGET', base .. 'up', name)
if cur and redis.call('HGET', fkey(cur), 'state') == 'uploading' then return {'slow'} end
local checks = {{'HSET', fk, 'state', 'x'}, {'SADD', fk .. ':need', 'x'}, {'XADD', base .. 'files', '*', 'f', id},
  {'ZADD', base .. 'live', '0', id}, {'XADD', fk .. ':idx', '0-1', 'n', '1'}}
if size > 0 then
  checks[#checks + 1] = {'SET', fk .. ':c:1', 'x'}
  checks[#checks + 1] = {'INCRBY', base .. 'bytes', '1'}
end
for _, c in ipairs(batch_cmds(bk)) do checks[#checks + 1] = c end
local no = denied('publishing a small file', checks)
if no then return no end
local max = tonumber(redis.call('HGET', base .. 'cfg', 'max') or ARGV[6])
local held = tonumber(redis.call('GET', base .. 'bytes') or '0')
if size > 0 and held > 0 and held + size > max then return {'slow'} end
local n = 0
if size > 0 then n = 1 end
redis.call('HSET', fk, 'state', 'complete', 'created', now, 'hb', now, 'n', n, 'lo', 1, 'r', n, 'held', size,
  unpack(ARGV, 14))
redis.call('HSET', fk, 'size', size, 'digest', digest)
if size > 0 then
  redis.call('SET', fk .. ':c:1', value)
  redis.call('INCRBY', base .. 'bytes', size)
  redis.call('XADD', fk .. ':idx', '0-1', 'n', size, 'h', digest, 'p', digest)
end
redis.call('XADD', fk .. ':idx', '0-' .. (n + 1), 'eof', '1', 'size', size, 'h', digest)
redis.call('SADD', fk .. ':need', unpack(redis.call('SMEMBERS', base .. 'groups')))
local eid = redis.call('XADD', base .. 'files', '*', 'f', id)
redis.call('HSET', fk, 'entry', eid)
redis.call('ZADD', base .. 'live', now, id)
record_sent(bk, name, ARGV[8], ttl)
return {'new', id, eid}
