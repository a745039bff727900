-- abort ends an upload that will never complete; receivers see the reason.
-- ARGV: base, id, reason
-- Returns 'ok' | 'gone' | the state it was already in
word(ARGV[2], 'id')
if (ARGV[3] or '') == '' then bad('reason', '') end
local st = abort_upload(ARGV[2], ARGV[3])
if st == 'uploading' then return 'ok' end
return st or 'gone'
