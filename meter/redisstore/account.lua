-- account.lua: read an account's balances, first releasing expired holds
-- so that reserved counts only active reservations.
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms
-- Reply: {'ok', balance, reserved, created_ms, settings_json} or {'account_not_found'}
local balance, reserved = open()
if not balance then return {'account_not_found'} end
local v = redis.call('HMGET', KEYS[1], 'created_ms', 'settings')
return {'ok', balance, reserved, tonumber(v[1]), v[2] or ''}
