-- reserve takes budget for chunks of a file: for each (seq, n) pair in
-- order, n bytes of the channel's budget, stopping at the first that does
-- not fit. A chunk is always admitted when the channel holds nothing, so a
-- budget smaller than one chunk cannot deadlock.
-- ARGV: base, id, default_max, now_ms, seq1, n1, seq2, n2, ...
-- Returns {granted, last_event_id}: granted = how many pairs (a prefix) now
-- hold budget; if fewer than all, wait for an event after last_event_id
-- ('0-0' if none) and call again with the rest. {-1, state} if the upload
-- is not in progress ('complete', 'aborted', or 'gone' if no record); {-1, 'unwanted'} if every group that had to read
-- the file gave up on it (or was dropped) meanwhile: the upload is then
-- aborted, since no one would ever free the budget it waits for.
local fk = fkey(word(ARGV[2], 'id'))
int(ARGV[3], 'default_max', 1)
int(ARGV[4], 'now_ms', 0)
if (#ARGV - 4) % 2 ~= 0 or #ARGV < 6 then bad('chunks', 'want pairs (seq, len)') end
for i = 5, #ARGV, 2 do
  int(ARGV[i], 'seq', 1)
  int(ARGV[i + 1], 'len', 1)
  if i > 5 and tonumber(ARGV[i]) ~= tonumber(ARGV[i - 2]) + 1 then bad('seq', ARGV[i] .. ' after ' .. ARGV[i - 2]) end
end
local st = redis.call('HGET', fk, 'state')
if st ~= 'uploading' then return {-1, st or 'gone'} end
if alldone(fk) then
  abort_upload(ARGV[2], 'every receiver group gave up on the file while it was uploading')
  return {-1, 'unwanted'}
end
local r = tonumber(redis.call('HGET', fk, 'r'))
local max = tonumber(redis.call('HGET', base .. 'cfg', 'max') or ARGV[3])
local cur = tonumber(redis.call('GET', base .. 'bytes') or '0')
local granted, add = 0, 0
for i = 5, #ARGV, 2 do
  local seq, n = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  -- A retried call (its reply was lost) must not count a chunk twice.
  if seq > r then
    if cur + add > 0 and cur + add + n > max then break end
    add = add + n
    r = seq
  end
  granted = granted + 1
end
if add > 0 then
  redis.call('INCRBY', base .. 'bytes', add)
  redis.call('HINCRBY', fk, 'held', add)
  redis.call('HSET', fk, 'r', r)
end
if granted * 2 < #ARGV - 4 then
  redis.call('HSET', fk, 'hb', ARGV[4])
  local last = redis.call('XREVRANGE', base .. 'ev', '+', '-', 'COUNT', 1)
  if #last > 0 then return {granted, last[1][1]} end
  return {granted, '0-0'}
end
return {granted, ''}
