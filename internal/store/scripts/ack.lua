-- ack acknowledges a file for a group, once. With a member name it acks only
-- if that member still owns the entry (a frozen member whose file was taken
-- over must not ack it). The last group to ack releases the file.
-- ARGV: base, id, entry, group, member, reason, mode, now_ms
-- mode: 'done' (handled, or given up with a reason: the group is done with
-- the file), 'dead' (given up after the handler kept failing: kept for the
-- group as a dead letter for the channel's retention, cfg 'keep' or
-- default_keep below; 'done' with a retention of 0, and for a file still
-- uploading, whose sender may wait for the budget it holds), 'skip' (an
-- entry that delivers a file again to another group: only acknowledged).
-- Returns 'ok' | 'dup' (already acked) | 'lost' (owned by another member)
local default_keep = 86400000
local id, eid, group, member, reason = ARGV[2], entryid(ARGV[3], 'entry'), word(ARGV[4], 'group'), ARGV[5], ARGV[6] or ''
local mode, now = oneof(ARGV[7], 'mode', 'done', 'dead', 'skip'), int(ARGV[8], 'now_ms', 0)
if id ~= '' then word(id, 'id') end -- empty: an entry whose file was deleted
if member ~= '' then word(member, 'member') end
if mode == 'dead' and reason == '' then bad('reason', '') end
if mode == 'dead' then
  local no = denied('keeping a failed file for a retry', {{'ZADD', base .. 'g:' .. group .. ':dead', '0', 'x'},
    {'HSET', base .. 'g:' .. group .. ':failed', 'x', 'x'}})
  if no then return no end
end
local o = owner(group, eid)
if not o then return 'dup' end
if member ~= '' and o ~= member then return 'lost' end
redis.call('XACK', base .. 'files', group, eid)
local gk = base .. 'g:' .. group
if mode == 'skip' then return 'ok' end
local fk = fkey(id)
local event = eid
if redis.call('EXISTS', fk) == 1 then
  local name = redis.call('HGET', fk, 'name')
  local keep = tonumber(redis.call('HGET', base .. 'cfg', 'keep') or default_keep)
  local h = redis.call('HMGET', fk, 'kind', 'state')
  if mode == 'dead' and keep > 0 and h[1] == 'file' and h[2] == 'complete' then
    redis.call('HSET', gk .. ':failed', id, failed_record(name, reason, now, 'kept'))
    redis.call('ZADD', gk .. ':dead', now, id)
  else
    redis.call('SADD', fk .. ':acks', group)
    if reason ~= '' then redis.call('HSET', gk .. ':failed', id, failed_record(name, reason, now, '')) end
    if redis.call('HGET', fk, 'kind') == 'mark' then
      redis.call('HSET', gk, 'mark', eid)
      event = eid .. ' mark'
    end
    release_if_done(id)
  end
end
redis.call('PUBLISH', gk, event)
return 'ok'
