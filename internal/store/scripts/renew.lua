-- renew resets the idle time of an entry the member still owns (its lease).
-- ARGV: base, group, member, entry
-- Returns 1 if renewed, 0 if the entry is no longer the member's
word(ARGV[2], 'group')
word(ARGV[3], 'member')
entryid(ARGV[4], 'entry')
if owner(ARGV[2], ARGV[4]) ~= ARGV[3] then return 0 end
redis.call('XCLAIM', base .. 'files', ARGV[2], ARGV[3], 0, ARGV[4], 'JUSTID')
return 1
