-- commit.lua: settle a reservation as used.
-- Go twin: ledger.Account.Settle (meter/ledger)
-- KEYS: the account keys, see lib.lua, and
--   KEYS[9] usage hash of the period the charge counts in (see ARGV[8]):
--           '<route>\0requests', '<route>\0pages', '<route>\0credits'
--   KEYS[10] the response key of rid: the replayable response, kept as
--           long as the settled record (PXAT its purge)
--   KEYS[11] the usage series hash (see count_series in lib.lua)
-- ARGV: [1] retain_ms, [2] rid, [3] amount (actual cost), [4] description,
--       [5] route, [6] request_id, [7] pages, [8] id of KEYS[9]'s period,
--       [9] the response to store ('' for none): stored only when the
--       reservation's idempotency key names it once charged,
--       [10] '1': uncapped, charge the amount in full even above the hold
-- Reply: {'ok', charged, balance, available, entry_id ('' if none), late (0|1), state...,
--   events, shortfall} (state: see with_state in lib.lua; events: how many webhook
--   events were recorded, see below)
--   or {'period', id}: KEYS[9] is not the usage hash of period id; nothing
--   was charged, call again with that one
--   or {'account_not_found'} | {'reservation_not_found'}
--   or {'reservation_settled', status ('voided')}
-- A held reservation is charged min(amount, reserved amount) from its own
-- parts, quota first, then grants, then balance, then overage, and released; its usage
-- counts in the period it was made in. Parts held in a period that has
-- since rolled over are charged all the same, but not counted in the new
-- period's quota or overage used. An expired reservation is charged
-- min(amount, reserved amount) from what the pools have now, in the same
-- order, and marked late; it counts in the stored period. A committed one
-- answers its first settlement again (with the current period state).
-- Uncapped, the excess over the hold is taken from what the pools have
-- now, in the same order, after the hold's parts; what they cannot give
-- (the shortfall) leaves the balance all the same, is the entry's
-- 'shortfall' field and records a credits.shortfall event. While the
-- balance is below -overage_cap the account owes (see owes in lib.lua).
-- charged is the total from every pool; the ledger entry's amount is the
-- balance and overage parts (what leaves the balance), its quota and
-- overage fields the parts; an entry is written unless all are 0.
-- Webhook events, in the outbox: quota.exhausted when the commit uses the
-- last of the period's quota, overage.limit_reached the last of its
-- overage cap, credits.low_balance when it takes the balance below the
-- threshold (see low_balance in lib.lua).
local rid, amount, route, pages = ARGV[2], tonumber(ARGV[3]), ARGV[5], tonumber(ARGV[7]) or 0
local a = open(16, true) -- all but total_purchased; the marker saved below
if not a then return {'account_not_found'} end
-- A job's hold is settled by the job's calls only (as ledger and boltstore).
if string.sub(rid, 1, 4) == 'job:' then return {'reservation_not_found'} end

local r = load_res(rid, a)
if not r then return {'reservation_not_found'} end
if r.state == 'c' then
  local rep = with_state({'ok', r.charged, r.bal, r.avail, r.entry, r.late and 1 or 0}, a)
  rep[#rep + 1] = 0
  rep[#rep + 1] = 0
  return rep
end
if r.state == 'v' then return {'reservation_settled', 'voided'} end
if r.state == 'h' and r.exp <= a.now then
  expire(rid, r, a) -- due but beyond the sweep limit
  save(a, 'reserved', 'q_res', 'o_res')
end

local late = r.state == 'x'
local bucket = late and a.period or r.per
if tonumber(ARGV[8]) ~= bucket then return {'period', bucket} end

-- The request was charged after all: let a retry with its key replay it,
-- unless a retry already holds the key.
if late and r.idem ~= '' and redis.call('HEXISTS', KEYS[4], 'r:' .. r.idem) == 0 then
  redis.call('HSET', KEYS[4], 'r:' .. r.idem, rid)
end
local charged, entry, short, q, b, o = settle(a, r, late, amount, ARGV[10] == '1', ARGV[4], route, ARGV[6], rid,
  pages)
if a.due_dirty then
  save(a, 'balance', 'reserved', 'q_res', 'o_res', 'q_used', 'o_used', 'total_used', 'due')
else
  save(a, 'balance', 'reserved', 'q_res', 'o_res', 'q_used', 'o_used', 'total_used')
end
if a.events then save(a, 'evt_seq') end
lots_after(a) -- what the hold released of an ended grant leaves now
if redis.call('HINCRBY', KEYS[9], route .. '\0requests', '1') == 1 and bucket > 0 then
  -- A new route in the period: its counters live two months past its end.
  local ends = bucket == a.period and a.period_end or 0
  redis.call('PEXPIREAT', KEYS[9], int(math.max(ends, a.now) + 62 * 86400000))
end
if pages > 0 then redis.call('HINCRBY', KEYS[9], route .. '\0pages', int(pages)) end
if charged > 0 then redis.call('HINCRBY', KEYS[9], route .. '\0credits', int(charged)) end
count_series(KEYS[11], a.now, route, pages, charged)
local resp = ARGV[9] or ''
if resp ~= '' and r.idem ~= '' and redis.call('HGET', KEYS[4], 'r:' .. r.idem) == rid then
  -- With the charge, so a replay never finds a charge without it unless
  -- it was too large to keep; it lives as long as the record (finish).
  redis.call('SET', KEYS[10], resp, 'PXAT', int(a.now + tonumber(ARGV[1])))
end
r.state, r.charged, r.entry, r.late = 'c', charged, entry, late
r.q, r.b, r.o = q, b, o
r.bal, r.avail = a.balance, a.balance - a.reserved
finish(rid, r, a) -- also turns the expiry timer into the purge timer
local rep = with_state({'ok', charged, a.balance, a.balance - a.reserved, entry, late and 1 or 0}, a)
rep[#rep + 1] = a.events or 0
rep[#rep + 1] = short
return rep
