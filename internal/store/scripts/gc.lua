-- gc finishes journal entries (see lib.lua, journal) whose chunk keys the
-- caller has deleted: each entry goes, and its bytes return to the budget.
-- An entry finished already (by another client) changes nothing.
-- ARGV: base, entry_id, ...
-- Returns the bytes returned to the budget.
for i = 2, #ARGV do entryid(ARGV[i], 'entry') end
local gk, freed = base .. 'gc', 0
for i = 2, #ARGV do
  local e = redis.call('XRANGE', gk, ARGV[i], ARGV[i])
  if #e > 0 then
    local b = 0
    for j = 1, #e[1][2], 2 do
      if e[1][2][j] == 'b' then b = tonumber(e[1][2][j + 1]) or 0 end
    end
    redis.call('XDEL', gk, ARGV[i])
    if b > 0 then
      redis.call('DECRBY', base .. 'bytes', b)
      freed = freed + b
    end
  end
end
if #redis.call('XRANGE', gk, '-', '+', 'COUNT', 1) == 0 then redis.call('DEL', gk) end
if freed > 0 then redis.call('XADD', base .. 'ev', 'MAXLEN', '~', '64', '*', 'freed', freed) end
return freed
