-- Shared functions, prepended to every script. ARGV[1] is always the
-- channel's key base "<prefix>:{<channel>}:"; every key a script touches
-- starts with it, so all of them live in one Redis Cluster slot. KEYS are
-- base .. 'files' and base .. 'fence', a key that never exists: declared,
-- it makes Redis refuse the script with TRYAGAIN, before it runs, while
-- the slot migrates between cluster nodes (keys.go, Fence).
local base = ARGV[1]

-- Input checks. A script checks every argument before its first write:
-- Redis does not undo the writes a script made before it failed. A bad
-- argument is an error reply that names it; nothing was changed.
local function bad(what, v)
  error({err = 'ERR bad argument ' .. what .. ': ' .. string.sub(tostring(v), 1, 80)})
end
local function int(v, what, lo, hi)
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or (lo and n < lo) or (hi and n > hi) then bad(what, v) end
  return n
end
local function digest(v, what)
  if type(v) ~= 'string' or #v ~= 32 or not string.match(v, '^[0-9a-f]+$') then bad(what, v) end
  return v
end
local function word(v, what) -- an id, a group or member name, a token: no space, not empty
  if type(v) ~= 'string' or v == '' or string.find(v, '[%s%c]') then bad(what, v) end
  return v
end
local function oneof(v, what, ...)
  for _, x in ipairs({...}) do if v == x then return v end end
  bad(what, v)
end
local function entryid(v, what)
  if type(v) ~= 'string' or not string.match(v, '^%d+%-%d+$') then bad(what, v) end
  return v
end
if KEYS[1] ~= base .. 'files' or KEYS[2] ~= base .. 'fence' or not string.match(base, '^.+:{.+}:$') then bad('key base', base) end

-- fields checks the record fields a sender gives (ARGV from first on, as
-- field, value pairs): an even count, and none of the fields the scripts
-- keep themselves.
local kept = {state = true, created = true, hb = true, n = true, lo = true, r = true, held = true, entry = true,
  off = true, pre = true, digest = true, reason = true}
local function fields(first)
  if (#ARGV - first + 1) % 2 ~= 0 then bad('fields', 'an odd count') end
  for i = first, #ARGV, 2 do
    if kept[ARGV[i]] then bad('field', ARGV[i] .. ' is kept by the scripts') end
  end
end

local function fkey(id) return base .. 'f:' .. id end

-- The budget of a channel that never set one (1 GiB): every client passes
-- the same where a script takes default_max.
local default_budget = 1073741824

-- alldone reports whether every group that must consume the file acked it.
local function alldone(fk)
  return #redis.call('SDIFF', fk .. ':need', fk .. ':acks') == 0
end

local function unlink_all(keys)
  for i = 1, #keys, 500 do
    redis.call('UNLINK', unpack(keys, i, math.min(i + 499, #keys)))
  end
end

-- Protocol 2 files (record v = '2', written on a Redis Cluster) keep their
-- chunks outside the channel's slot, spread over every primary
-- (docs/PROTOCOL.md §3.6): a script cannot delete them. It journals them
-- instead, in the channel's gc stream, as ranges of sequence numbers per
-- upload epoch, with the bytes they hold; the client that ran the script
-- (or any other, later) deletes the keys and then finishes the entry with
-- gc.lua, which returns the bytes to the budget. Keys are never reused
-- (a resumed upload writes under a new epoch), so deleting late is safe.

-- ranges returns the chunks lo..hi of a protocol 2 file as 'epoch:lo-hi'
-- words, split where the epochs listed in eps ('start:epoch,...', epoch 0
-- starting at chunk 1) begin.
local function ranges(eps, lo, hi)
  local starts = {{1, 0}}
  for st, ep in string.gmatch(eps or '', '(%d+):(%d+)') do starts[#starts + 1] = {tonumber(st), tonumber(ep)} end
  local out = {}
  for i, st in ipairs(starts) do
    local a, b = math.max(lo, st[1]), hi
    if starts[i + 1] then b = math.min(hi, starts[i + 1][1] - 1) end
    if a <= b then out[#out + 1] = st[2] .. ':' .. a .. '-' .. b end
  end
  return table.concat(out, ' ')
end

-- journal records chunk keys of file id to delete (k: ranges) and the
-- bytes to return to the budget once they are.
local function journal(id, k, bytes)
  if k == '' and bytes == 0 then return end
  redis.call('XADD', base .. 'gc', '*', 'f', id, 'k', k, 'b', bytes)
end

-- release deletes every key of a file (journals the chunks of a protocol 2
-- file) and returns its bytes to the budget. It is idempotent: releasing a
-- released file does nothing.
local function release(id)
  local fk = fkey(id)
  local h = redis.call('HMGET', fk, 'lo', 'r', 'held', 'entry', 'name', 'v', 'eps')
  if not h[4] then return end
  local lo, r, held = tonumber(h[1]) or 1, tonumber(h[2]) or 0, tonumber(h[3]) or 0
  if h[6] == '2' then
    journal(id, ranges(h[7], lo, r), held)
  else
    local chunks = {}
    for s = lo, r do chunks[#chunks + 1] = fk .. ':c:' .. s end
    unlink_all(chunks)
    if held ~= 0 then redis.call('DECRBY', base .. 'bytes', held) end
  end
  redis.call('XDEL', base .. 'files', h[4])
  -- The entries that delivered it again to a group (retry.lua).
  for _, e in ipairs(redis.call('SMEMBERS', fk .. ':re')) do redis.call('XDEL', base .. 'files', e) end
  if h[5] and redis.call('HGET', base .. 'up', h[5]) == id then redis.call('HDEL', base .. 'up', h[5]) end
  redis.call('ZREM', base .. 'live', id)
  redis.call('DEL', fk, fk .. ':idx', fk .. ':need', fk .. ':acks', fk .. ':pos', fk .. ':re')
  redis.call('XADD', base .. 'ev', 'MAXLEN', '~', '64', '*', 'released', id)
end

-- release_if_done releases a finished file once every group acked it.
local function release_if_done(id)
  local fk = fkey(id)
  local st = redis.call('HGET', fk, 'state')
  if (st == 'complete' or st == 'aborted') and alldone(fk) then
    release(id)
    return true
  end
  return false
end

-- owner returns the member a files-stream entry is pending at, or nil.
local function owner(group, eid)
  local p = redis.call('XPENDING', base .. 'files', group, eid, eid, 1)
  if #p == 0 then return nil end
  return p[1][2]
end

-- abort_upload ends an upload that will never complete: the abort entry
-- follows the last chunk, and the file is released if no group still needs
-- it. Returns the state the file had ('uploading' if it was aborted now).
local function abort_upload(id, reason)
  local fk = fkey(id)
  local h = redis.call('HMGET', fk, 'state', 'n', 'name')
  if h[1] ~= 'uploading' then return h[1] end
  redis.call('XADD', fk .. ':idx', '0-' .. (tonumber(h[2]) + 1), 'abort', reason)
  redis.call('HSET', fk, 'state', 'aborted', 'reason', reason)
  if redis.call('HGET', base .. 'up', h[3]) == id then redis.call('HDEL', base .. 'up', h[3]) end
  release_if_done(id)
  return 'uploading'
end

-- denied returns an error reply naming the first of cmds (each a list:
-- command, key, args...) that the calling ACL user may not run for the
-- given purpose, or nil.
-- Redis does not undo a script's writes when a later command fails, so a
-- script that must not be left half done checks first. (Redis 7.0+; older
-- servers have no ACL check for scripts to run and skip it.)
local function denied(purpose, cmds)
  if not redis.acl_check_cmd then return nil end
  for _, c in ipairs(cmds) do
    if not redis.acl_check_cmd(unpack(c)) then
      return redis.error_reply('NOPERM this user may not run ' .. c[1] .. ' on ' .. c[2] ..
        ', which ' .. purpose .. ' needs (see docs/OPERATIONS.md)')
    end
  end
  return nil
end

-- Batches (docs/PROTOCOL.md §6.10). batch_key names a batch's hash of sent
-- files; batch_cmds lists the commands that recording a file in it runs,
-- for denied(); record_sent records one, last, as its callers must.
local function batch_key(batch) return base .. 'batch:' .. batch end

local function batch_cmds(bk) return {{'HSET', bk, 'x', 'x'}, {'PEXPIRE', bk, '1'}} end

local function record_sent(bk, name, sent, ttl)
  redis.call('HSET', bk, name, sent)
  redis.call('PEXPIRE', bk, ttl)
end

-- trim releases the chunks of a file that every group still needing it
-- has durably consumed (its pos), when the channel is over budget (a file
-- larger than the budget streams through it) or the file is live and
-- holds more than live_keep chunks (a stream that never ends keeps a
-- bounded number of keys). Trimmed chunks take their index entries with
-- them when the last of them carries a prefix digest (and the user may
-- run XTRIM): the record keeps the length of the trimmed prefix (off) and
-- its digest (pre) instead. Returns {bytes released, 1 if the budget is
-- full (another chunk would not fit) else 0}.
local live_keep = 64
local function trim(id, default_max)
  local fk = fkey(id)
  local h = redis.call('HMGET', fk, 'chunk', 'lo', 'n', 'live', 'off', 'v', 'eps')
  if not h[1] then return {0, 0} end
  local max = tonumber(redis.call('HGET', base .. 'cfg', 'max') or default_max)
  local bytes = tonumber(redis.call('GET', base .. 'bytes') or '0')
  local full = bytes + tonumber(h[1]) > max
  local lo, committed = tonumber(h[2]), tonumber(h[3])
  if not full and not (h[4] == '1' and committed - lo + 1 > live_keep) then return {0, 0} end
  local pos = fk .. ':pos'
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
  if h[6] == '2' then
    journal(id, ranges(h[7], lo, min), freed)
  else
    unlink_all(keys)
    redis.call('DECRBY', base .. 'bytes', freed)
  end
  redis.call('HSET', fk, 'lo', min + 1)
  if pre then
    redis.call('XTRIM', fk .. ':idx', 'MINID', '0-' .. (min + 1))
    redis.call('HSET', fk, 'off', (tonumber(h[5]) or 0) + below, 'pre', pre)
  end
  redis.call('HINCRBY', fk, 'held', -freed)
  redis.call('XADD', base .. 'ev', 'MAXLEN', '~', '64', '*', 'trimmed', id)
  return {freed, (bytes - freed + tonumber(h[1]) > max) and 1 or 0}
end

-- Dead letters (docs/PROTOCOL.md §6.13). A group that gave up on a file
-- keeps it, unacknowledged, in g:<G>:dead (score: when) for the channel's
-- retention; g:<G>:failed holds, per file, name TAB reason TAB when_ms TAB
-- state ('kept', 'dropped <ms>', 'retried <ms>', or '' once given up
-- without keeping it).
local function failed_record(name, reason, now, state)
  return (name or '') .. '\t' .. reason .. '\t' .. now .. '\t' .. state
end

-- let_go gives up group's dead letter id for good: the group is done with
-- it, and the file is released if no other group still needs it.
local function let_go(group, id, now)
  local gk = base .. 'g:' .. group
  redis.call('ZREM', gk .. ':dead', id)
  local rec = redis.call('HGET', gk .. ':failed', id)
  if rec then
    local name, reason, at = string.match(rec, '^([^\t]*)\t([^\t]*)\t?([^\t]*)')
    redis.call('HSET', gk .. ':failed', id, failed_record(name, reason, at or now, 'dropped ' .. now))
  end
  local fk = fkey(id)
  if redis.call('EXISTS', fk) == 1 then
    redis.call('SADD', fk .. ':acks', group)
    if not release_if_done(id) then trim(id, default_budget) end
  end
end

-- drop_group removes a receiver group: it no longer holds back any file.
-- Returns how many files were released because of it.
local function drop_group(group)
  pcall(redis.call, 'XGROUP', 'DESTROY', base .. 'files', group)
  redis.call('SREM', base .. 'groups', group)
  local gk = base .. 'g:' .. group
  redis.call('DEL', gk, gk .. ':failed', gk .. ':dead', gk .. ':blocked')
  local released = 0
  for _, id in ipairs(redis.call('ZRANGE', base .. 'live', 0, -1)) do
    local fk = fkey(id)
    redis.call('SREM', fk .. ':need', group)
    redis.call('SREM', fk .. ':acks', group)
    redis.call('HDEL', fk .. ':pos', group)
    if release_if_done(id) then
      released = released + 1
    else
      trim(id, default_budget) -- what the group held back, the others may have consumed
    end
  end
  return released
end
