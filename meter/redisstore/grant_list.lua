-- grant_list.lua: the account's credit grants, after expiring those due
-- (open), for CreditGrants and the ledger reads (whose expiration entries
-- this writes first).
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms
-- Reply: {'ok', lots} (the LOTS field of lib.lua) or {'account_not_found'}
-- An account without lots costs one HMGET here.
local v = redis.call('HMGET', KEYS[1], 'balance', 'lots')
if not v[1] then return {'account_not_found'} end
if not v[2] then return {'ok', ''} end
local a = open()
return {'ok', redis.call('HGET', KEYS[1], 'lots') or ''}
