-- account.lua: read an account's balances, first releasing expired holds
-- so that reserved counts only active reservations.
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms
-- Reply: {'ok', balance, reserved, created_ms, settings_json, total_purchased,
--   total_used, updated_ms, state..., lots} (state: see with_state in lib.lua;
--   updated_ms: when the settings last changed, '' for accounts older than
--   the field; lots: the credit grants, LOTS in lib.lua)
--   or {'account_not_found'}
local a = open()
if not a then return {'account_not_found'} end
local v = redis.call('HMGET', KEYS[1], 'created_ms', 'settings', 'updated_ms')
local rep = with_state({'ok', a.balance, a.reserved, tonumber(v[1]), v[2] or '',
  a.total_purchased, a.total_used, v[3] or ''}, a)
rep[#rep + 1] = redis.call('HGET', KEYS[1], 'lots') or '' -- the credit grants, saved by open
return rep
