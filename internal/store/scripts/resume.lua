-- resume drops what an interrupted sender reserved but never committed, so
-- that the budget counts only committed chunks, and returns the committed count.
-- ARGV: base, id
local fk = fkey(word(ARGV[2], 'id'))
local h = redis.call('HMGET', fk, 'state', 'n', 'lo', 'r', 'held')
if h[1] ~= 'uploading' then return redis.error_reply('GONE upload is ' .. (h[1] or 'released')) end
local n, lo, r, held = tonumber(h[2]), tonumber(h[3]), tonumber(h[4]), tonumber(h[5])
local keep = 0
for _, e in ipairs(redis.call('XRANGE', fk .. ':idx', '0-' .. lo, '0-' .. n)) do
  for i = 1, #e[2], 2 do
    if e[2][i] == 'n' then keep = keep + tonumber(e[2][i + 1]) end
  end
end
local extra = {}
for s = n + 1, r do extra[#extra + 1] = fk .. ':c:' .. s end
unlink_all(extra)
redis.call('DECRBY', base .. 'bytes', held - keep)
redis.call('HSET', fk, 'held', keep, 'r', n)
if held ~= keep then redis.call('XADD', base .. 'ev', 'MAXLEN', '~', '64', '*', 'resumed', ARGV[2]) end
return n
