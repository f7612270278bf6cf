-- reserve.lua: hold credits for one request, from the quota, then the
-- credit grants, then the balance, then the overage (see lib.lua).
-- Go twin: ledger.Account.Reserve (meter/ledger)
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] rid, [3] amount, [4] ttl_ms,
--       [5] idempotency key ('' for none), [6] nonce of this call,
--       [7] period id (start ms; 0 or absent: the stored period),
--       [8] period end ms, [9] fingerprint of the request ('' for none),
--       [10] minimum (0: none): when the pools cannot give amount but give
--       at least this, hold all they give (the reply's amount)
-- Reply: {'ok', amount, balance, available, replayed_rid, period_id, state...}
--   replayed_rid is '' for a new hold of rid; a replay names the committed
--   reservation and what it charged. state: see with_state in lib.lua.
--   or {'account_not_found'} | {'invalid', message} | {'idempotency_conflict'}
--   or {'idempotency_key_reused'}: the key is held or committed for a
--   request of another fingerprint
--   or {'insufficient_credits', required, available}
--   or {'overage_limit_reached', required, available, cap}
--   or {'quota_exceeded', limit, used (held included), resets_at_ms, unit}
--   or {'credits_owed', required, available, owed} (see refusal in lib.lua)
-- A newer period id starts the period's quota and overage afresh; an older
-- one (a gateway whose clock lags) is read as the stored period.
-- The nonce makes a client-side retry of this very call (connection lost
-- after the script ran) answer the same instead of "id already used".
local rid, amount, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local idem, nonce = ARGV[5], ARGV[6]
local pid, pend = tonumber(ARGV[7]) or 0, tonumber(ARGV[8]) or 0
local fp = ARGV[9] or ''
local minimum = tonumber(ARGV[10]) or 0
local a = open(13, true) -- up to lots; the marker saved below
if not a then return {'account_not_found'} end
local now = a.now

roll(a, pid, pend)

local function ok(amt, replayed)
  return with_state({'ok', amt, a.balance, a.balance - a.reserved, replayed, a.period}, a)
end

-- A rid seen before: a retry of this very call answers the same.
local function seen(r)
  if r.nonce == nonce then return ok(r.amount, '') end
  return {'invalid', 'reservation id already used'}
end

-- With a key, the rid is looked up first (a retry of this call must not
-- find its own hold in the way). Without one, the record is written with
-- HSETNX below, which tells the same for one call less; a refusal looks
-- it up (a retry must not be refused for what its first run holds).
if idem ~= '' then
  local r = load_res(rid, a)
  if r then return seen(r) end
  local prev = redis.call('HGET', KEYS[4], 'r:' .. idem)
  local p = prev and load_res(prev, a)
  if p and p.state == 'h' and p.exp <= now then
    expire(prev, p, a) -- due but beyond this call's sweep limit
    save(a, 'reserved', 'q_res', 'o_res')
    lots_after(a)
  elseif p and (p.state == 'h' or p.state == 'c') and fingerprint(prev) ~= fp then
    return {'idempotency_key_reused'}
  elseif p and p.state == 'h' then
    return {'idempotency_conflict'}
  elseif p and p.state == 'c' then
    return ok(p.charged, prev)
  end
end

local q, b, o, g, gs = split(a, amount)
if q + gs + b + o < amount then
  if minimum > 0 and q + gs + b + o >= minimum then
    amount = q + gs + b + o -- all the pools give: the estimate's partial hold
  else
    local r = idem == '' and load_res(rid, a)
    if r then return seen(r) end
    return refusal(a, minimum > 0 and minimum or amount)
  end
end
if redis.call('HSETNX', KEYS[3], rid, record({state = 'h', q = q, b = b, o = o, per = a.period,
    exp = now + ttl, nonce = nonce, idem = idem})) == 0 then
  return seen(load_res(rid, a)) -- nothing was written yet
end
a.reserved, a.q_res, a.o_res = a.reserved + gs + b + o, a.q_res + q, a.o_res + o
if g then
  hold_lots(a, g, 1)
  redis.call('HSET', KEYS[4], 'h:' .. rid, parts_str(g))
  save_lots(a)
end
if a.due_dirty then
  save(a, 'reserved', 'q_res', 'o_res', 'due')
else
  save(a, 'reserved', 'q_res', 'o_res')
end
timer(a, now + ttl, 'r:' .. rid)
if idem ~= '' then redis.call('HSET', KEYS[4], 'r:' .. idem, rid, 'f:' .. rid, fp) end
return ok(amount, '')
