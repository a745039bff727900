-- sweep gives up the dead letters kept longer than the channel's retention
-- (cfg 'keep', else default_keep), and drops the groups whose members have
-- all been gone longer than the channel's group expiry (cfg 'gexp'; off
-- when unset): their last claim (g:<G> seen, ms) lapsed (after seenttl, ms)
-- that long ago. It releases what only they held. Any client may run it at
-- any time; filecast's receivers do every minute, and senders while they
-- wait for budget.
-- ARGV: base, now_ms, default_keep_ms, group, force
-- With a group, only its dead letters; with force '1', all of them
-- whatever their age (filecast clean --failed).
-- Returns {dead letters given up, groups dropped}
local now, default_keep = int(ARGV[2], 'now_ms', 0), int(ARGV[3], 'default_keep_ms', 0)
local only, force = ARGV[4] or '', oneof(ARGV[5], 'force', '0', '1')
if only ~= '' then word(only, 'group') end
local cfg = redis.call('HMGET', base .. 'cfg', 'keep', 'gexp')
local cmds = {{'ZRANGEBYSCORE', base .. 'g:x:dead', '0', '1'}, {'ZREM', base .. 'g:x:dead', 'x'},
  {'HSET', base .. 'g:x:failed', 'x', 'x'}, {'SADD', base .. 'f:x:acks', 'x'}, {'UNLINK', base .. 'f:x:c:1'},
  {'DECRBY', base .. 'bytes', '1'}, {'XDEL', base .. 'files', '0-1'}, {'DEL', base .. 'f:x'},
  {'XADD', base .. 'ev', '*', 'x', 'x'}, {'HDEL', base .. 'up', 'x'}, {'HINCRBY', base .. 'f:x', 'held', '1'},
  {'XADD', base .. 'gc', '*', 'x', 'x'}}
if tonumber(cfg[2]) and only == '' then
  for _, c in ipairs({{'XGROUP', 'DESTROY', base .. 'files', 'x'}, {'SREM', base .. 'groups', 'x'},
      {'ZRANGE', base .. 'live', '0', '-1'}, {'HSET', base .. 'dropped', 'x', 'x'}}) do
    cmds[#cmds + 1] = c
  end
end
local no = denied('giving up dead letters and dropping expired groups', cmds)
if no then return no end
local keep, gexp = tonumber(cfg[1]) or default_keep, tonumber(cfg[2])
local groups = redis.call('SMEMBERS', base .. 'groups')
if only ~= '' then groups = {only} end
local gone, dropped = 0, 0
for _, g in ipairs(groups) do
  local gk = base .. 'g:' .. g
  local cutoff = now - keep
  if force == '1' then cutoff = '+inf' end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', gk .. ':dead', '-inf', cutoff)) do
    let_go(g, id, now)
    gone = gone + 1
  end
  if gexp and gexp > 0 and only == '' then
    -- Members are gone once their claim lapsed (seen + their lease).
    local h = redis.call('HMGET', gk, 'seen', 'created', 'seenttl')
    local seen = tonumber(h[1]) or tonumber(h[2])
    if seen and now - seen - (tonumber(h[3]) or 0) > gexp then
      drop_group(g)
      redis.call('HSET', base .. 'dropped', g, now .. '\tits members were gone for ' .. math.floor((now - seen) / 1000) .. ' s (group expiry)')
      dropped = dropped + 1
    end
  end
end
return {gone, dropped}
