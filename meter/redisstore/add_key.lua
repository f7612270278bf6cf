-- add_key.lua: store an API key record (its own slot, not an account's).
-- KEYS: [1] key record hash <prefix>:key:<sha256hex>
-- ARGV: [1] account id, [2] mode, [3] prefix, [4] last4
-- Reply: {'ok', created_ms} or {'invalid', message}
-- Adding the same key to the same account again is a no-op (retries);
-- a hash that belongs to another account is refused.
local cur = redis.call('HGET', KEYS[1], 'account')
if cur then
  if cur ~= ARGV[1] then return {'invalid', 'key belongs to another account'} end
  return {'ok', tonumber(redis.call('HGET', KEYS[1], 'created_ms'))}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'account', ARGV[1], 'mode', ARGV[2], 'prefix', ARGV[3],
  'last4', ARGV[4], 'created_ms', string.format('%.0f', now))
return {'ok', now}
