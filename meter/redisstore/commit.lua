-- commit.lua: settle a reservation as used.
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] rid, [3] amount (actual cost), [4] description,
--       [5] route, [6] request_id
-- Reply: {'ok', charged, balance, available, entry_id ('' if none), late (0|1)}
--   or {'account_not_found'} | {'reservation_not_found'}
--   or {'reservation_settled', 'voided'}
-- A held reservation is charged min(amount, reserved amount) and released.
-- An expired one is charged min(amount, reserved amount, available) and
-- marked late. A committed one answers its first settlement again.
local rid, amount = ARGV[2], tonumber(ARGV[3])
local balance, reserved, now = open()
if not balance then return {'account_not_found'} end

local r = load_res(rid)
if not r then return {'reservation_not_found'} end
if r.state == 'c' then
  return {'ok', r.charged, r.bal, r.avail, r.entry, r.late and 1 or 0}
end
if r.state == 'v' then return {'reservation_settled', 'voided'} end
if r.state == 'h' and r.exp <= now then
  reserved = expire(rid, r, now, reserved) -- due but beyond the sweep limit
end

local charged
local late = r.state == 'x'
if late then
  charged = math.min(amount, r.amount, math.max(0, balance - reserved))
  -- The request was charged after all: let a retry with its key replay it,
  -- unless a retry already holds the key.
  if r.idem ~= '' and redis.call('HEXISTS', KEYS[4], 'r:' .. r.idem) == 0 then
    redis.call('HSET', KEYS[4], 'r:' .. r.idem, rid)
  end
else
  charged = math.min(amount, r.amount)
  reserved = reserved - r.amount
end
balance = balance - charged

local entry = ''
if charged > 0 then
  entry = append('usage', -charged, balance, ARGV[4], ARGV[5], ARGV[6], rid, late)
end
redis.call('HSET', KEYS[1], 'balance', int(balance), 'reserved', int(reserved))
r.state, r.charged, r.entry, r.late = 'c', charged, entry, late
r.bal, r.avail = balance, balance - reserved
finish(rid, r, now) -- also turns the expiry timer into the purge timer
return {'ok', charged, balance, balance - reserved, entry, late and 1 or 0}
