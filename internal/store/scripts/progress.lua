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
local id, group, n = word(ARGV[2], 'id'), word(ARGV[3], 'group'), int(ARGV[4], 'n', 0)
local default_max = int(ARGV[5], 'default_max', 1)
local fk = fkey(id)
if redis.call('EXISTS', fk) == 0 then return {0, 0} end
local pos = fk .. ':pos'
if n > (tonumber(redis.call('HGET', pos, group)) or 0) then redis.call('HSET', pos, group, n) end
return trim(id, default_max)
