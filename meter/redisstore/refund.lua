-- refund.lua: give back (part of) what a usage entry took from the balance.
-- Go twin: ledger.Account.Refund (meter/ledger)
-- KEYS: the account keys, see lib.lua (KEYS[6]: the refunds hash).
-- ARGV: [1] retain_ms, [2] usage entry id, [3] amount (0: all it took),
--       [4] description, [5] nonce of this call
-- Reply: {'ok', entry_id, amount, balance_after, description, grant_parts}
--   (grant_parts: 'id:n,...', what went back to each grant)
--   or {'account_not_found'} | {'not_found', message}
--   or {'refund_not_allowed', message, amount, took} (message 'refund_exceeds':
--   amount is more than the entry took; else only a message)
--   or {'invalid', message}
-- An entry took -amount (its balance and overage parts); its quota part is
-- not refunded (it was free). Each entry is refunded at most once, whole
-- or in part: the refunds hash makes that atomic. The nonce makes a
-- client-side retry of this very call answer the same refund.
local eid, amount, desc, nonce = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local a = open()
if not a then return {'account_not_found'} end

local function fields(id)
  local found = redis.call('XRANGE', KEYS[5], id, id)
  if #found ~= 1 then return nil end
  local f, kv = {}, found[1][2]
  for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
  return f
end

local prev = redis.call('HGET', KEYS[6], eid)
if prev then
  local rent, n = string.match(prev, '^([^|]*)|(.*)$')
  local f = n == nonce and fields(rent)
  if f then return {'ok', rent, tonumber(f.amount), tonumber(f.balance_after), f.description or '', f.lots or ''} end
  return {'refund_not_allowed', 'entry ' .. eid .. ' is already refunded'}
end

local u = fields(eid)
if not u then return {'not_found', 'no ledger entry ' .. eid} end
if u.type ~= 'usage' then return {'not_found', 'ledger entry ' .. eid .. ' is not a usage entry'} end
-- The paid balance and overage part (took) comes back first, then the
-- grant parts, each to its grant while that is still spendable.
local g = parts(u.lots)
local all = -tonumber(u.amount)
local took = all - parts_sum(g)
if all <= 0 then
  return {'refund_not_allowed', 'entry ' .. eid .. ' took nothing from the balance (quota only)'}
end
if amount == 0 then amount = all end
if amount > all then
  return {'refund_not_allowed', 'refund_exceeds', int(amount), int(all)}
end
local back = {}
for _, p in ipairs(cut_parts(g, amount - math.min(amount, took))) do
  local l = lot(a, p.id)
  if l and l.ended == '' then back[#back + 1] = p end
end
amount = math.min(amount, took) + parts_sum(back)
if amount == 0 then
  return {'refund_not_allowed', 'entry ' .. eid .. ' was paid from credit grants that have ended'}
end
if a.balance + amount > MAX_CREDITS then
  return {'invalid', 'balance would exceed the maximum'}
end
for _, p in ipairs(back) do lot(a, p.id).left = lot(a, p.id).left + p.n end
if #back > 0 then save_lots(a) end
a.balance = a.balance + amount
a.total_used = a.total_used - amount
local entry = append('refund', amount, a.balance, {'description', desc, 'refund_of', eid,
  'lots', parts_str(back)})
save(a, 'balance', 'total_used')
low_balance(a) -- only ever re-arms: a refund raises the balance
redis.call('HSET', KEYS[6], eid, entry .. '|' .. nonce)
return {'ok', entry, amount, a.balance, desc, parts_str(back)}
