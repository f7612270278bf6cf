-- payment_reverse.lua: take back a refunded payment's credits up to a
-- cumulative target.
-- KEYS: as payment_purchase.lua (KEYS[9] the payments hash).
-- ARGV: [1] retain_ms, [2] payment intent id, [3] target (credits reversed
--       in all), [4] amount refunded (cumulative), [5] description,
--       [6] external (event) id
-- Reply: {'ok', entry_id ('' when nothing more to take), taken,
--   balance_after, key, reversed, amount_refunded, events, shortfall}
--   or {'account_not_found'} | {'not_found', message}
-- Only target minus what was reversed before is taken, so a redelivered
-- or older refund takes nothing. The balance may go below zero: the
-- account owes what it spent (see owes in lib.lua).
local pi, target = ARGV[2], tonumber(ARGV[3])
local a = open()
if not a then return {'account_not_found'} end
local key = redis.call('HGET', KEYS[9], 'i:' .. pi)
if not key then return {'not_found', 'the account has no payment ' .. pi} end
local v = redis.call('HMGET', KEYS[9], 'r:' .. key, 'x:' .. key)
local reversed, refunded = tonumber(v[1]) or 0, tonumber(v[2]) or 0
local taken = target - reversed
if taken <= 0 then
  return {'ok', '', 0, int(a.balance), key, int(reversed), int(refunded), 0}
end
-- What the balance cannot give is owed, as an uncapped commit's shortfall.
local left = a.lots and lots_left(a) or 0 -- grant credits never pay for a reversal
local shortfall = math.max(0, taken - math.max(0, a.balance - left))
a.balance = a.balance - taken
a.total_purchased = a.total_purchased - taken
local entry = append('reversal', -taken, a.balance,
  {'description', ARGV[5], 'payment_intent_id', pi, 'external_id', ARGV[6], 'shortfall', shortfall})
save(a, 'balance', 'total_purchased')
low_balance(a)
refunded = math.max(refunded, tonumber(ARGV[4]))
redis.call('HSET', KEYS[9], 'r:' .. key, int(target), 'x:' .. key, int(refunded))
return {'ok', entry, int(taken), int(a.balance), key, int(target), int(refunded), a.events or 0, int(shortfall)}
