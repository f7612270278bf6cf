-- grant_create.lua: give the account a credit grant (a lot, see LOTS in
-- lib.lua) with a grant entry; its id is 'gr_' and the entry's id.
-- Go twin: ledger.Account.AddLot (meter/ledger)
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] amount, [3] expires ms (0: never), [4] priority,
--       [5] description, [6] idempotency key ('' for none)
-- Reply: {'ok', grant_id, replayed (0|1), lots, balance, reserved}
--   or {'account_not_found'} | {'invalid', message}
-- A key seen before answers the grant it created (kept: grants are rare),
-- (a grant no longer in lots has ended).
local amount, exp, prio, desc, idem = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local a = open()
if not a then return {'account_not_found'} end
local function reply(id, replayed)
  return {'ok', id, replayed, redis.call('HGET', KEYS[1], 'lots') or '', a.balance, a.reserved}
end
if idem ~= '' then
  local prev = redis.call('HGET', KEYS[4], 'G:' .. idem)
  if prev then return reply(prev, 1) end
end
if exp > 0 and exp <= a.now then return {'invalid', 'expires_at must be in the future'} end
if a.balance + amount > MAX_CREDITS then return {'invalid', 'balance would exceed the maximum'} end
a.balance = a.balance + amount
-- The entry's id names the grant (readers derive its 'lots').
local id = 'gr_' .. append('grant', amount, a.balance, {'description', desc})
local l = {id = id, granted = amount, left = amount, held = 0, prio = prio, exp = exp, created = a.now,
  ended = '', desc = desc}
a.lots = a.lots or {}
-- Spending order: higher priority, then the soonest expiry (never last),
-- then the oldest. Go twin: less
local function before(x, y)
  if x.prio ~= y.prio then return x.prio > y.prio end
  if x.exp ~= y.exp then return y.exp == 0 or (x.exp ~= 0 and x.exp < y.exp) end
  if x.created ~= y.created then return x.created < y.created end
  return x.id < y.id
end
local i = #a.lots + 1
for k, m in ipairs(a.lots) do
  if before(l, m) then i = k break end
end
table.insert(a.lots, i, l)
save_lots(a)
save(a, 'balance')
low_balance(a)
if idem ~= '' then redis.call('HSET', KEYS[4], 'G:' .. idem, id) end
return reply(id, 0)
