-- payment_purchase.lua: add a payment's credits once per payment key.
-- KEYS: the account keys, see lib.lua, and KEYS[9] the account's payments
--   hash: 'p:'..key -> record JSON (immutable, from the caller),
--   'e:'..key -> purchase entry id, 'c:'..key -> created ms,
--   'r:'..key -> credits reversed, 'x:'..key -> amount refunded,
--   'i:'..payment intent -> key.
-- ARGV: [1] retain_ms, [2] key, [3] credits, [4] description,
--       [5] payment intent id, [6] external (event) id, [7] record JSON
-- Reply: {'ok', entry_id, balance_after, replayed (0|1), events, created_ms}
--   or {'account_not_found'} | {'invalid', message}
local key, amount = ARGV[2], tonumber(ARGV[3])
local a = open()
if not a then return {'account_not_found'} end

local prev = redis.call('HMGET', KEYS[9], 'e:' .. key, 'c:' .. key)
if prev[1] then
  local found = redis.call('XRANGE', KEYS[5], prev[1], prev[1])
  local ba = '0'
  if #found == 1 then
    local kv = found[1][2]
    for i = 1, #kv, 2 do if kv[i] == 'balance_after' then ba = kv[i + 1] end end
  end
  return {'ok', prev[1], ba, 1, 0, prev[2]}
end

if a.balance + amount > MAX_CREDITS then
  return {'invalid', 'balance would exceed the maximum'}
end
a.balance = a.balance + amount
a.total_purchased = a.total_purchased + amount
local entry = append('purchase', amount, a.balance,
  {'description', ARGV[4], 'payment_intent_id', ARGV[5], 'external_id', ARGV[6]})
save(a, 'balance', 'total_purchased')
low_balance(a)
redis.call('HSET', KEYS[9], 'p:' .. key, ARGV[7], 'e:' .. key, entry, 'c:' .. key, int(a.now),
  'r:' .. key, '0', 'x:' .. key, '0', 'i:' .. ARGV[5], key)
return {'ok', entry, int(a.balance), 0, a.events or 0, int(a.now)}
