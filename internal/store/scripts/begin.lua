-- begin announces a new upload, or finds an unfinished one to resume.
-- A mark may end a batch: its hash of sent files is deleted in the same
-- step, so a sender killed at any point either placed the mark and forgot
-- the batch, or did neither. A file of a batch only has the permissions
-- complete.lua will need to record it checked.
-- ARGV: base, id, name, now_ms, stale_ms, sender, kind, takeover, batch, field, value, ...
-- Returns {'new', id, entry} | {'resume', id} | {'busy', id, sender, age_ms} | {'nogroups'} | {'collision'}
local id, name, now, stale, sender, kind, takeover, batch = word(ARGV[2], 'id'), ARGV[3], int(ARGV[4], 'now_ms', 0),
  int(ARGV[5], 'stale_ms', 0), word(ARGV[6], 'sender'), oneof(ARGV[7], 'kind', 'file', 'mark'), oneof(ARGV[8], 'takeover', '0', '1'), ARGV[9] or ''
if (kind == 'file') == (name == '') then bad('name', name) end -- a file has one, a mark none
if batch ~= '' then word(batch, 'batch') end
fields(10)
if redis.call('SCARD', base .. 'groups') == 0 then return {'nogroups'} end
if kind == 'file' then
  local cur = redis.call('HGET', base .. 'up', name)
  if cur then
    local st = redis.call('HMGET', fkey(cur), 'state', 'hb', 'sender')
    if st[1] == 'uploading' then
      local age = now - (tonumber(st[2]) or 0)
      if st[3] ~= sender and age < stale and takeover ~= '1' then
        return {'busy', cur, st[3] or '', tostring(age)}
      end
      redis.call('HSET', fkey(cur), 'hb', now, 'sender', sender)
      return {'resume', cur}
    end
  end
end
local fk = fkey(id)
if redis.call('EXISTS', fk) == 1 then
  -- A retried mark whose first call succeeded (only its reply was lost)
  -- finds itself: placing a second mark would end the batch twice.
  local m = redis.call('HMGET', fk, 'kind', 'sender', 'entry')
  if kind == 'mark' and m[1] == 'mark' and m[2] == sender then return {'new', id, m[3]} end
  return {'collision'}
end
local bk = batch_key(batch)
local no = denied('announcing a file', {{'HSET', fk, 'state', 'x'}, {'SADD', fk .. ':need', 'x'}, {'XADD', base .. 'files', '*', 'f', id},
  {'HSET', base .. 'up', name, id}, {'ZADD', base .. 'live', '0', id}})
if not no and batch ~= '' then
  if kind == 'mark' then
    no = denied('ending a batch', {{'DEL', bk}})
  else
    -- complete.lua will record the file: refuse now, not after the upload.
    no = denied('recording a file of a batch', batch_cmds(bk))
  end
end
if no then return no end
local state = 'uploading'
if kind == 'mark' then state = 'complete' end
redis.call('HSET', fk, 'state', state, 'created', now, 'hb', now, 'n', 0, 'lo', 1, 'r', 0, 'held', 0,
  unpack(ARGV, 10))
redis.call('SADD', fk .. ':need', unpack(redis.call('SMEMBERS', base .. 'groups')))
local eid = redis.call('XADD', base .. 'files', '*', 'f', id)
redis.call('HSET', fk, 'entry', eid)
if kind == 'file' then redis.call('HSET', base .. 'up', name, id) end
if kind == 'mark' and batch ~= '' then redis.call('DEL', bk) end
redis.call('ZADD', base .. 'live', now, id)
return {'new', id, eid}
