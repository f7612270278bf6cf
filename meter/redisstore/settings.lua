-- settings.lua: replace an account's settings.
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] settings as JSON
-- Reply: {'ok', balance, reserved, created_ms, settings_json} or {'account_not_found'}
local balance, reserved = open()
if not balance then return {'account_not_found'} end
redis.call('HSET', KEYS[1], 'settings', ARGV[2])
return {'ok', balance, reserved, tonumber(redis.call('HGET', KEYS[1], 'created_ms')), ARGV[2]}
