-- lease_settle.lua: settle a group of requests carved from one lease (a
-- reservation a gateway holds for many requests of one account, see
-- meter/lease) in one call. Each request is charged as commit.lua charges
-- a reservation of its own holding its carve: min(amount, carve, what is
-- left of the lease) from what is left of the lease's parts (quota, then
-- grants, then balance, then overage), and, uncapped, the excess beyond
-- that from what the pools have now, as commit.lua charges an excess
-- beyond a hold (the other carves' shares of the lease are never
-- touched); with a ledger entry of its own (the same fields,
-- reservation_id the request's id) and the same events; the account, the
-- lease's record, the usage by route and the series are written once. The
-- lease stays held with what is left; void.lua or its expiry releases
-- that.
-- Go twin: ledger.Account.Settle (meter/ledger), once per request.
-- KEYS: the account keys, see lib.lua, and
--   KEYS[9] usage hash of the period the charges count in (see ARGV[3])
--   KEYS[10] the usage series hash (see count_series in lib.lua)
-- ARGV: [1] retain_ms, [2] lease id, [3] id of KEYS[9]'s period, [4] a
--   nonce of this call (see below), then per request seven values: rid, amount, description, route,
--   request_id, pages, and opt: '' for the common request (capped, not
--   late, its carve its amount), else one digit, uncapped + 2 * late,
--   then its carve. uncapped: charge the amount in full, see commit.lua;
--   late: the request's own hold expired in the gateway: it is charged as
--   commit.lua charges an expired reservation, from what the pools have
--   now, and its entry is marked late; carve: the request's hold in the
--   lease, what it may take of the lease (a capped request is charged at
--   most that). (Nine values a request, the flags and the carve apart,
--   cost ~1.4k instructions a request more to pass.)
-- Reply: {'ok', balance, available, events, state..., settled}
--   (balance and available after the group, events the number it
--   recorded, state the period's after it: with_state's nine values in
--   lib.lua; then settled, one string of every request's values in its
--   order, packed with struct as the kept copy has them (see the end):
--   charged, balance, available, shortfall as doubles, late as a byte,
--   the entry id zero-terminated. Six values a request in the reply cost
--   ~0.3 us each to make and send; named, as they were first, twice that.)
--   or {'period', id}: call again with that period's usage hash
--   or {'account_not_found'} | {'reservation_not_found'}
--   or {'reservation_settled', status ('committed' | 'voided')}
-- A lease that expired first (the gateway was too slow) makes every
-- request late.
-- go-redis resends a call whose reply was lost: the reply is kept with
-- the nonce under 'L:'..lease id, and a call with that nonce gets it
-- again instead of charging the group twice. A call that leaves the
-- lease held (the common one) keeps it next to the lease's record, in
-- KEYS[3]: read with the record (one HMGET), written with it (one HSET),
-- with no timer while the lease is held; a void of the lease (void.lua)
-- sets its purge REPLAY_MS later (or retain_ms, if shorter), and the
-- sweep purges it with the record if nothing did before (a lease that
-- expired: retain_ms after its expiry, after this call). Other
-- calls (the lease is not held after them: settled, expired or gone; or
-- a group of late requests, which has no lease: 'L:'..nonce) keep it in
-- KEYS[4] for REPLAY_MS (or retain_ms, if shorter), with a timer. One
-- field per lease is enough: a gateway settles one group of an account
-- at a time (meter/lease flush).
local lid, nonce = ARGV[2], ARGV[4]
local rkey = 'L:' .. (lid ~= '' and lid or nonce)
local a = open(16, true)
if not a then return {'account_not_found'} end
-- After open: its sweep may have expired or purged the lease.
local raw, kept
if lid ~= '' then
  local v = rcall('HMGET', KEYS[3], lid, rkey)
  raw, kept = v[1], v[2]
end
-- inline: the common call's paths below (the lease's record read in part,
-- the common request's charge), rather than the general ones (off in
-- TestSettleLeaseInlineIsSettle, which compares the two).
local inline = true
local tag = nonce .. '\n'
local resent = kept and ssub(kept, 1, #tag) == tag
if not resent and not (raw and ssub(raw, 1, 1) == 'h') then
  -- A lease held now was held after the first call, which kept its reply
  -- in KEYS[3].
  kept = rcall('HGET', KEYS[4], rkey)
  resent = kept and ssub(kept, 1, #tag) == tag
end
if resent then
  -- The kept copy is the reply's twelve values, packed, then its
  -- requests' string (see the end).
  local rep = {'ok', struct.unpack('<dddddddddddd', kept, #tag + 1)}
  rep[14] = ssub(kept, rep[14]) -- after the twelve values, where the requests' start
  return rep
end
local all_late = true
for i = 5, #ARGV, 7 do
  local opt = ARGV[i + 6]
  if opt == '' or sbyte(opt) < 50 then all_late = false end -- '' or '0'/'1': not late
end
-- Requests whose own holds expired need no lease: it may be gone. A
-- lease held and not due (the common call) is read in part (HELD in
-- lib.lua): its parts, period and expiry; the end writes the rest of its
-- record back as it was.
local r, q, b, o, rest, per, exp
if inline and raw then q, b, o, rest, per, exp = smatch(raw, HELD) end
if q then exp = exp + 0 end
if q and exp > a.now then
  -- A balance lease's q and o are '0': no conversion (~500 instructions).
  r = {state = 'h', q = q == '0' and 0 or q + 0, b = b + 0, o = o == '0' and 0 or o + 0, per = per + 0, exp = exp,
    rest = rest}
  r.amount = r.q + r.b + r.o
  if a.lots then hold_parts(lid, r) end -- as decode_res
else
  r = decode_res(lid, raw, a)
end
if not r and not all_late then return {'reservation_not_found'} end
r = r or {state = 'v', q = 0, b = 0, o = 0, per = a.period, amount = 0}
if r.state == 'c' and not all_late then return {'reservation_settled', 'committed'} end
if r.state == 'v' and not all_late then return {'reservation_settled', 'voided'} end
if r.state == 'h' and r.exp <= a.now then
  expire(lid, r, a) -- due but beyond the sweep limit
  save(a, 'reserved', 'q_res', 'o_res')
end
local late = r.state ~= 'h'
local parts_changed = false
local bucket = late and a.period or r.per
if tonumber(ARGV[3]) ~= bucket then return {'period', bucket} end

-- The reply, its values set at the end.
local rep = {'ok', false, false, false, false, false, false, false, false, false, false, false, false, false}
local vals, usage, routes, h = {}, {}, {}, nil
-- A lease of the balance alone stays one (settle takes a share from its
-- parts in order: with no quota, overage or grant parts, the balance's).
local balance_lease = inline and not late and r.q == 0 and r.o == 0 and not r.g
local all_inline = true -- every request charged inline (see the end)
for i = 5, #ARGV, 7 do
  -- The numbers are Go's decimal integers (see lib.lua on reading them).
  local rid, amt, desc, route, request_id, pg = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local amount, pages = amt + 0, pg + 0
  local opt, uncapped, rlate, carve = ARGV[i + 6], false, late, amt
  if opt ~= '' then
    local f = sbyte(opt) - 48 -- uncapped + 2 * late
    uncapped, rlate, carve = f % 2 == 1, late or f >= 2, ssub(opt, 2)
  end
  local charged, entry, short
  local held = 0
  if not rlate then
    -- Its hold: its share of the lease, at most its carve (the first of
    -- what is left of the lease's parts, in spending order), cut off the
    -- lease: min(amount, carve, lease) without math.min (a C call).
    held = amount
    if carve ~= amt then
      carve = carve + 0
      if carve < held then held = carve end
    end
    if r.amount < held then held = r.amount end
  end
  if balance_lease and not rlate and held > 0 and (held == amount or not uncapped) and desc ~= '' and
    route ~= '' and request_id ~= '' and rid ~= '' then
    -- The common request: a capped share of a balance lease, charged in
    -- full from it (no quota, overage or grant parts, no excess). settle's
    -- path for it (ledger.Account.Settle), inline: settle's calls, tables
    -- and formats were half of a request's cost. Its balance part is the
    -- whole share: released from reserved and taken from the balance; the
    -- entry's fields are settle's (amount the share negated: Go's decimal
    -- with a '-' when it is the amount; pages Go's decimal), and of the
    -- events only a low balance can follow.
    r.b, r.amount = r.b - held, r.amount - held
    a.reserved, a.balance, a.total_used = a.reserved - held, a.balance - held, a.total_used + held
    local neg = held == amount and '-' .. amt or int(-held)
    if pages ~= 0 then
      entry = rcall('XADD', KEYS[5], '*', 'type', 'usage', 'amount', neg, 'balance_after', int(a.balance),
        'description', desc, 'route', route, 'request_id', request_id, 'reservation_id', rid, 'pages', pg)
    else
      entry = rcall('XADD', KEYS[5], '*', 'type', 'usage', 'amount', neg, 'balance_after', int(a.balance),
        'description', desc, 'route', route, 'request_id', request_id, 'reservation_id', rid)
    end
    if a.lb_threshold > 0 then low_balance(a) end
    charged, short = held, 0
  else
    -- settle takes an uncapped excess beyond its hold from the pools, as
    -- commit.lua's beyond a reservation. A late request's own hold, which
    -- expired, held its amount. One table for every request (settle only
    -- reads it).
    all_inline = false
    h = h or {}
    if rlate then
      h.q, h.b, h.o, h.g, h.gs, h.per, h.amount = 0, amount, 0, nil, nil, a.period, amount
    else
      local q = mmin(held, r.q)
      local g = r.g and cut_parts(r.g, held - q)
      local gs = g and parts_sum(g) or 0
      local b = mmin(held - q - gs, r.b)
      h.q, h.b, h.o, h.g, h.gs, h.per, h.amount = q, b, held - q - gs - b, g, gs, r.per, held
      if g then
        local rest = {} -- r.g less the prefix g
        for k, p in ipairs(r.g) do
          local n = p.n - (g[k] and g[k].n or 0)
          if n > 0 then rest[#rest + 1] = {id = p.id, n = n} end
        end
        r.g, r.gs = rest, r.gs - gs
        parts_changed = true
      end
      r.q, r.b, r.o = r.q - h.q, r.b - h.b, r.o - h.o
      r.amount = r.amount - held
    end
    charged, entry, short = settle(a, h, rlate, amount, uncapped, desc, route, request_id, rid, pages)
  end
  local u = usage[route]
  if not u then
    u = {0, 0, 0}
    usage[route] = u
    routes[#routes + 1] = route
  end
  u[1], u[2], u[3] = u[1] + 1, u[2] + pages, u[3] + charged
  vals[#vals + 1] = spack('<ddddBs', charged, a.balance, a.balance - a.reserved, short, rlate and 1 or 0, entry)
end

-- One HSET of what changed (save skips the rest), with the marker of
-- open's sweep (due_dirty) and the events' sequence when they may have.
if a.due_dirty or a.events then
  save(a, 'balance', 'reserved', 'q_res', 'o_res', 'q_used', 'o_used', 'total_used', 'due', 'evt_seq')
elseif all_inline and #ARGV > 4 then
  -- Every request charged inline took a share > 0 from the balance alone:
  -- these three changed, nothing else. save's table and loop cost ~8k
  -- instructions, 2.6% of a call of one.
  rcall('HSET', KEYS[1], 'balance', int(a.balance), 'reserved', int(a.reserved), 'total_used', int(a.total_used))
  a[POS.balance], a[POS.reserved], a[POS.total_used] = a.balance, a.reserved, a.total_used -- as save
else
  save(a, 'balance', 'reserved', 'q_res', 'o_res', 'q_used', 'o_used', 'total_used')
end
if parts_changed then
  if #r.g > 0 then
    rcall('HSET', KEYS[4], 'h:' .. lid, parts_str(r.g))
  else
    rcall('HDEL', KEYS[4], 'h:' .. lid)
  end
end
lots_after(a)
for k = 1, #routes do
  local route = routes[k]
  local u = usage[route]
  if rcall('HINCRBY', KEYS[9], route .. '\0requests', int(u[1])) == u[1] and bucket > 0 then
    -- A new route in the period: its counters live two months past its end.
    local ends = bucket == a.period and a.period_end or 0
    rcall('PEXPIREAT', KEYS[9], int(mmax(ends, a.now) + 62 * 86400000))
  end
  if u[2] > 0 then rcall('HINCRBY', KEYS[9], route .. '\0pages', int(u[2])) end
  if u[3] > 0 then rcall('HINCRBY', KEYS[9], route .. '\0credits', int(u[3])) end
  count_series(KEYS[10], a.now, route, u[2], u[3], u[1])
end
rep[2], rep[3], rep[4] = a.balance, a.balance - a.reserved, a.events or 0
with_state(rep, a, 4) -- the period's state after the group
rep[14] = #vals == 1 and vals[1] or tconcat(vals)
-- The kept copy: the reply's twelve values, then every request's six,
-- packed with struct (doubles: the numbers are integers below 2^53; the
-- entry id last, zero-terminated): the reply's string. Packing the reply
-- whole with cmsgpack cost about a tenth of the call.
-- The nine state values are all 0 on a balance account: packed once
-- (Z72), not on every call (~4k instructions).
local state = Z72
if rep[5] ~= 0 or rep[6] ~= 0 or rep[7] ~= 0 or rep[8] ~= 0 or rep[9] ~= 0 or rep[10] ~= 0 or rep[11] ~= 0 or
  rep[12] ~= 0 or rep[13] ~= 0 then
  state = spack('<ddddddddd', unpack(rep, 5, 13))
end
local copy = nonce .. '\n' .. spack('<ddd', rep[2], rep[3], rep[4]) .. state .. rep[14]
if r.state == 'h' then
  -- save_res and the copy; a record read in part (r.rest) is record()'s
  local rec = r.rest and 'h|' .. int(r.q) .. '|' .. int(r.b) .. '|' .. int(r.o) .. r.rest or record(r)
  rcall('HSET', KEYS[3], lid, rec, rkey, copy)
else
  rcall('HSET', KEYS[4], rkey, copy)
  timer(a, a.now + mmin(REPLAY_MS, tonumber(ARGV[1])), rkey)
end
return rep
