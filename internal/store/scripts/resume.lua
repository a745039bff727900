-- resume drops what an interrupted sender reserved but never committed, so
-- that the budget counts only committed chunks, and returns the committed
-- count. A protocol 2 upload moves to a new epoch: the chunks of the old
-- one are journaled for deletion, and whoever resumes writes new keys, so
-- a late delete or a late write of the interrupted sender (whose commits
-- are now refused as stale) never touches them.
-- ARGV: base, id
-- Returns {committed chunks, epoch, 1 for protocol 2 else 0} (epoch 0 for protocol 1)
local id = word(ARGV[2], 'id')
local fk = fkey(id)
local h = redis.call('HMGET', fk, 'state', 'n', 'lo', 'r', 'held', 'v', 'eps', 'ep')
if h[1] ~= 'uploading' then return redis.error_reply('GONE upload is ' .. (h[1] or 'released')) end
local n, lo, r, held = tonumber(h[2]), tonumber(h[3]), tonumber(h[4]), tonumber(h[5])
local keep = 0
for _, e in ipairs(redis.call('XRANGE', fk .. ':idx', '0-' .. lo, '0-' .. n)) do
  for i = 1, #e[2], 2 do
    if e[2][i] == 'n' then keep = keep + tonumber(e[2][i + 1]) end
  end
end
local ep, v2 = 0, 0
if h[6] == '2' then
  v2 = 1
  journal(id, ranges(h[7], n + 1, r), held - keep)
  ep = (tonumber(h[8]) or 0) + 1
  -- The new epoch starts at chunk n + 1: drop starts it makes void.
  local eps = {}
  for st, e in string.gmatch(h[7] or '', '(%d+):(%d+)') do
    if tonumber(st) < n + 1 then eps[#eps + 1] = st .. ':' .. e end
  end
  eps[#eps + 1] = (n + 1) .. ':' .. ep
  redis.call('HSET', fk, 'ep', ep, 'eps', table.concat(eps, ','))
else
  local extra = {}
  for s = n + 1, r do extra[#extra + 1] = fk .. ':c:' .. s end
  unlink_all(extra)
  redis.call('DECRBY', base .. 'bytes', held - keep)
end
redis.call('HSET', fk, 'held', keep, 'r', n)
if held ~= keep then redis.call('XADD', base .. 'ev', 'MAXLEN', '~', '64', '*', 'resumed', ARGV[2]) end
return {n, ep, v2}
