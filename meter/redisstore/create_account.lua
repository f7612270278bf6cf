-- create_account.lua: create an account if it does not exist.
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] initial credits (>= 0), [3] nonce of this call
-- Reply: {'ok', balance, reserved, created_ms, '', total_purchased, total_used,
--   updated_ms}
--   or {'account_exists'}
-- Initial credits are recorded as a purchase. The nonce makes a client-side
-- retry of this very call answer the same instead of "exists". The quota
-- fields are written (as 0) so that no script ever migrates this account.
local initial, nonce = tonumber(ARGV[2]), ARGV[3]
local v = redis.call('HMGET', KEYS[1], 'nonce', 'balance', 'reserved', 'created_ms', 'total_purchased', 'total_used',
  'updated_ms')
if v[2] then
  if v[1] == nonce then
    return {'ok', tonumber(v[2]), tonumber(v[3]), tonumber(v[4]), '', tonumber(v[5]) or 0, tonumber(v[6]) or 0,
      v[7] or ''}
  end
  return {'account_exists'}
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'balance', int(initial), 'reserved', '0',
  'created_ms', int(now), 'updated_ms', int(now), 'nonce', nonce, 'quota_limit', '0', 'overage_cap', '0', 'lb_threshold', '0',
  'total_purchased', int(initial))
if initial > 0 then
  append('purchase', initial, initial, {'description', 'initial credits'})
end
return {'ok', initial, 0, now, '', initial, 0, now}
