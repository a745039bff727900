-- progress records that a group durably consumed chunks 1..n of a file.
-- It trims the chunks every group has consumed when the channel is over
-- budget (so a file larger than the budget streams through it) and, for a
-- live upload (a pipe, a followed log), whenever it holds more than
-- live_keep chunks (so a stream that never ends leaves a bounded number of
-- keys behind). Trimmed chunks take their index entries with them when
-- the last of them carries a prefix digest (and the user may run XTRIM):
-- the record keeps the length of the trimmed prefix (off) and its digest
-- (pre) instead.
-- ARGV: base, id, group, n, default_max
-- Returns {bytes released, 1 if the budget is full (another chunk would
-- not fit) else 0}
local live_keep = 64
local id, group, n = word(ARGV[2], 'id'), word(ARGV[3], 'group'), int(ARGV[4], 'n', 0)
int(ARGV[5], 'default_max', 1)
local fk = fkey(id)
local h = redis.call('HMGET', fk, 'chunk', 'lo', 'n', 'live', 'off')
if not h[1] then return {0, 0} end
local pos = fk .. ':pos'
if n > (tonumber(redis.call('HGET', pos, group)) or 0) then redis.call('HSET', pos, group, n) end
local max = tonumber(redis.call('HGET', base .. 'cfg', 'max') or ARGV[5])
local bytes = tonumber(redis.call('GET', base .. 'bytes') or '0')
local full = bytes + tonumber(h[1]) > max
local lo, committed = tonumber(h[2]), tonumber(h[3])
if not full and not (h[4] == '1' and committed - lo + 1 > live_keep) then return {0, 0} end
local min = committed
for _, g in ipairs(redis.call('SMEMBERS', fk .. ':need')) do
  if redis.call('SISMEMBER', fk .. ':acks', g) == 0 then
    min = math.min(min, tonumber(redis.call('HGET', pos, g)) or 0)
  end
end
if min < lo then return {0, full and 1 or 0} end
local freed, below, keys, pre = 0, 0, {}, nil
for _, e in ipairs(redis.call('XRANGE', fk .. ':idx', '-', '0-' .. min)) do
  local seq, len = tonumber(string.sub(e[1], 3)), 0
  pre = nil
  for i = 1, #e[2], 2 do
    if e[2][i] == 'n' then len = tonumber(e[2][i + 1]) end
    if e[2][i] == 'p' then pre = e[2][i + 1] end
  end
  below = below + len
  if seq >= lo then
    freed = freed + len
    keys[#keys + 1] = fk .. ':c:' .. seq
  end
end
-- An ACL user set up before index trimming (without XTRIM) keeps the
-- index whole, as older clients did.
if pre and redis.acl_check_cmd and not redis.acl_check_cmd('XTRIM', fk .. ':idx', 'MINID', '0-1') then pre = nil end
unlink_all(keys)
redis.call('HSET', fk, 'lo', min + 1)
if pre then
  redis.call('XTRIM', fk .. ':idx', 'MINID', '0-' .. (min + 1))
  redis.call('HSET', fk, 'off', (tonumber(h[5]) or 0) + below, 'pre', pre)
end
redis.call('HINCRBY', fk, 'held', -freed)
redis.call('DECRBY', base .. 'bytes', freed)
redis.call('XADD', base .. 'ev', 'MAXLEN', '~', '64', '*', 'trimmed', id)
return {freed, (bytes - freed + tonumber(h[1]) > max) and 1 or 0}
