-- progress records that a group durably consumed chunks 1..n of a file.
-- When the channel is over budget it releases the chunks every group has
-- consumed, so a file larger than the budget streams through it.
-- ARGV: base, id, group, n, default_max
-- Returns {bytes released, 1 if the budget is full (another chunk would
-- not fit) else 0}
local id, group, n = ARGV[2], ARGV[3], tonumber(ARGV[4])
local fk = fkey(id)
local h = redis.call('HMGET', fk, 'chunk', 'lo', 'n')
if not h[1] then return {0, 0} end
local pos = fk .. ':pos'
if n > (tonumber(redis.call('HGET', pos, group)) or 0) then redis.call('HSET', pos, group, n) end
local max = tonumber(redis.call('HGET', base .. 'cfg', 'max') or ARGV[5])
local bytes = tonumber(redis.call('GET', base .. 'bytes') or '0')
if bytes + tonumber(h[1]) <= max then return {0, 0} end
local min = tonumber(h[3])
for _, g in ipairs(redis.call('SMEMBERS', fk .. ':need')) do
  if redis.call('SISMEMBER', fk .. ':acks', g) == 0 then
    min = math.min(min, tonumber(redis.call('HGET', pos, g)) or 0)
  end
end
local lo = tonumber(h[2])
if min < lo then return {0, 1} end
local freed, keys = 0, {}
for _, e in ipairs(redis.call('XRANGE', fk .. ':idx', '0-' .. lo, '0-' .. min)) do
  for i = 1, #e[2], 2 do
    if e[2][i] == 'n' then freed = freed + tonumber(e[2][i + 1]) end
  end
  keys[#keys + 1] = fk .. ':c:' .. string.sub(e[1], 3)
end
unlink_all(keys)
redis.call('HSET', fk, 'lo', min + 1)
redis.call('HINCRBY', fk, 'held', -freed)
redis.call('DECRBY', base .. 'bytes', freed)
redis.call('XADD', base .. 'ev', 'MAXLEN', '~', '64', '*', 'trimmed', id)
return {freed, (bytes - freed + tonumber(h[1]) > max) and 1 or 0}
