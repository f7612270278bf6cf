-- void.lua: release a reservation without charging.
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] rid
-- Reply: {'ok', balance, available}
--   or {'account_not_found'} | {'reservation_not_found'}
--   or {'reservation_settled', 'committed'}
-- Voiding a voided or expired reservation changes nothing and succeeds.
local rid = ARGV[2]
local balance, reserved, now = open()
if not balance then return {'account_not_found'} end

local r = load_res(rid)
if not r then return {'reservation_not_found'} end
if r.state == 'c' then return {'reservation_settled', 'committed'} end
if r.state == 'h' then
  if r.exp <= now then
    reserved = expire(rid, r, now, reserved) -- due but beyond the sweep limit
  else
    reserved = reserved - r.amount
    r.state = 'v'
    drop_idem(rid, r)
    finish(rid, r, now)
  end
  redis.call('HSET', KEYS[1], 'reserved', int(reserved))
end
return {'ok', balance, balance - reserved}
