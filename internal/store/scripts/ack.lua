-- ack acknowledges a file for a group, once. With a member name it acks only
-- if that member still owns the entry (a frozen member whose file was taken
-- over must not ack it). The last group to ack releases the file.
-- ARGV: base, id, entry, group, member, failure_reason
-- Returns 'ok' | 'dup' (already acked) | 'lost' (owned by another member)
local id, eid, group, member, reason = ARGV[2], entryid(ARGV[3], 'entry'), word(ARGV[4], 'group'), ARGV[5], ARGV[6] or ''
if id ~= '' then word(id, 'id') end -- empty: an entry whose file was deleted
if member ~= '' then word(member, 'member') end
local o = owner(group, eid)
if not o then return 'dup' end
if member ~= '' and o ~= member then return 'lost' end
redis.call('XACK', base .. 'files', group, eid)
local fk = fkey(id)
local gk = base .. 'g:' .. group
local event = eid
if redis.call('EXISTS', fk) == 1 then
  redis.call('SADD', fk .. ':acks', group)
  if reason ~= '' then
    redis.call('HSET', gk .. ':failed', id, (redis.call('HGET', fk, 'name') or '') .. '\t' .. reason)
  end
  if redis.call('HGET', fk, 'kind') == 'mark' then
    redis.call('HSET', gk, 'mark', eid)
    event = eid .. ' mark'
  end
  release_if_done(id)
end
redis.call('PUBLISH', gk, event)
return 'ok'
