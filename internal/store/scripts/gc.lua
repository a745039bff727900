-- gc finishes journal entries (see lib.lua, journal) whose chunk keys the
-- caller has deleted: each entry goes, and its bytes return to the budget.
-- An entry finished already (by another client) changes nothing.
--
-- The caller names each entry by its ID and its k field (the chunk ranges
-- it deleted), and an entry goes only if both match. Once the journal is
-- empty its key is deleted, and a new stream may then give a new entry an
-- ID an old one had (in the same millisecond): a client finishing the old
-- entry late must not finish the new one, whose keys it never deleted.
-- ARGV: base, entry_id1, k1, entry_id2, k2, ...
-- Returns the bytes returned to the budget.
if #ARGV % 2 ~= 1 then bad('entries', 'want pairs (entry id, k)') end
for i = 2, #ARGV, 2 do entryid(ARGV[i], 'entry') end
local gk, freed = base .. 'gc', 0
for i = 2, #ARGV, 2 do
  local e = redis.call('XRANGE', gk, ARGV[i], ARGV[i])
  if #e > 0 then
    local b, k = 0, nil
    for j = 1, #e[1][2], 2 do
      if e[1][2][j] == 'b' then b = tonumber(e[1][2][j + 1]) or 0 end
      if e[1][2][j] == 'k' then k = e[1][2][j + 1] end
    end
    if k == ARGV[i + 1] then
      redis.call('XDEL', gk, ARGV[i])
      if b > 0 then
        redis.call('DECRBY', base .. 'bytes', b)
        freed = freed + b
      end
    end
  end
end
if #redis.call('XRANGE', gk, '-', '+', 'COUNT', 1) == 0 then redis.call('DEL', gk) end
if freed > 0 then redis.call('XADD', base .. 'ev', 'MAXLEN', '~', '64', '*', 'freed', freed) end
return freed
