-- grant.lua: add or remove credits outside of a request.
-- Go twin: ledger.Account.Grant (meter/ledger)
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] type, [3] amount (signed), [4] description,
--       [5] idempotency key
-- Reply: {'ok', entry_id, type, amount, balance_after, description, replayed (0|1),
--   events (webhook events recorded: a low-balance one, see lib.lua)}
--   or {'account_not_found'} | {'invalid', message}
--   or {'insufficient_credits', required, available}
-- A removal may not take more than is available (balance - reserved), so
-- that settling the held reservations can never make the balance more
-- negative than the overage allows. A positive grant counts in
-- total_purchased. A key seen before answers the entry it recorded first.
local typ, amount, desc, idem = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local a = open()
if not a then return {'account_not_found'} end

if idem ~= '' then
  local prev = redis.call('HGET', KEYS[4], 'g:' .. idem)
  local found = prev and redis.call('XRANGE', KEYS[5], prev, prev)
  if found and #found == 1 then
    local f, kv = {}, found[1][2]
    for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
    return {'ok', prev, f.type, tonumber(f.amount), tonumber(f.balance_after), f.description or '', 1, 0}
  end
end

local _, room = pools(a) -- a removal takes paid credits only: grants are voided
if amount < 0 and room < -amount then
  return {'insufficient_credits', -amount, math.max(0, room)}
end
if a.balance + amount > MAX_CREDITS then
  return {'invalid', 'balance would exceed the maximum'}
end
a.balance = a.balance + amount
if amount > 0 then a.total_purchased = a.total_purchased + amount end
local entry = append(typ, amount, a.balance, {'description', desc})
save(a, 'balance', 'total_purchased')
low_balance(a)
if idem ~= '' then
  redis.call('HSET', KEYS[4], 'g:' .. idem, entry)
  timer(a, a.now + tonumber(ARGV[1]), 'g:' .. idem)
end
return {'ok', entry, typ, amount, a.balance, desc, 0, a.events or 0}
