-- grant_void.lua: end an active credit grant now: what it has left and
-- nobody holds leaves with a grant_void entry (the held part when its
-- holds release it, see end_lots in lib.lua).
-- Go twin: ledger.Account.VoidLot (meter/ledger)
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] grant id
-- Reply: {'ok', lots_before, lots} (the lots before and after the void)
--   or {'account_not_found'} | {'grant_not_found'}
local a = open()
if not a then return {'account_not_found'} end
local before = redis.call('HGET', KEYS[1], 'lots') or ''
local l = lot(a, ARGV[2])
if not l or l.ended ~= '' then return {'grant_not_found'} end
l.ended, a.lots_dirty = 'voided', true
end_lots(a)
low_balance(a) -- even when nothing left the balance now, as VoidLot does
return {'ok', before, redis.call('HGET', KEYS[1], 'lots') or ''}
