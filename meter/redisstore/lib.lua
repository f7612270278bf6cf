-- lib.lua: helpers shared by the scripts. It opens the function library
-- that every .lua file of this directory is a function of (see scripts.go):
-- everything here is a local of the library, loaded once per server; KEYS
-- and ARGV are too, set by each function on entry.
--
-- Every account script gets the same KEYS, all under one {hash tag}:
--   KEYS[1] account hash, see FIELDS below, and created_ms, nonce,
--           settings (JSON), quota_unit
--   KEYS[2] timers zset, what is due when:
--           'r:'..rid -> expires_ms while the reservation is held,
--                        purge-at ms once it is settled;
--           'g:'..key -> purge-at ms of a Grant idempotency mapping,
--           'L:'..id -> purge-at ms of a lease_settle reply kept in
--                        KEYS[4], or in KEYS[3] once its lease is voided
--   KEYS[3] reservations hash: rid -> record, see load_res;
--           'L:'..rid -> nonce and reply of lease_settle.lua's last call
--           on the lease rid that left it held: purged REPLAY_MS after
--           a void of the lease (void.lua), else with its record
--   KEYS[4] idempotency hash: 'r:'..key -> rid (Reserve),
--           'f:'..rid -> fingerprint of the request that holds a key
--           (as long as rid's record), 'g:'..key -> ledger entry id (Grant),
--           'h:'..rid -> a hold's credit grant parts (see LOTS),
--           'G:'..key -> credit grant id (grant_create.lua),
--           'L:'..id -> nonce and reply of lease_settle.lua's last call
--           on a lease it left not held, or of a group of late requests
--   KEYS[5] ledger stream: one entry per balance change
--   KEYS[6] refunds hash: usage entry id -> 'refund_entry_id|nonce'
--   KEYS[7] outbox hash: webhook event id -> record, see emit
--   KEYS[8] outbox zset: event id -> ms when it may be claimed (its
--           creation, the end of its lease, the time of its retry)
-- (commit.lua also gets KEYS[9], the usage-by-route hash of a period, and
-- the usage series hash, see count_series)
-- and ARGV[1] = retain_ms, how long settled records and mappings are kept.
--
-- Money model (issue 5). A charge is taken from three pools, in order:
--   quota   quota_limit free credits per period: limit - q_used - q_res;
--   balance the prepaid balance: balance - reserved, when positive;
--   overage postpaid, overage_cap per period: cap - o_used - o_res, and
--           never so much that the balance, once every hold is settled,
--           would be below -cap (a debt left from an unpaid period
--           shrinks the next period's overage instead of adding to it).
-- 'reserved' holds the balance and overage parts of all holds (what will
-- leave the balance); q_res and o_res only the parts of holds made in the
-- current period. The pools that count per period need a known period:
-- with none stored yet, quota and overage are not usable.
--
-- Every redis.call costs a few microseconds, most of a script's time: the
-- hot scripts make as few as they can (one timers zset instead of holds +
-- gc, no EXISTS, records as plain strings rather than cjson, the sweep
-- only when the next-due marker says, HSETNX for a new hold).
--
-- Amounts are integer milli-credits held in Lua doubles (exact below 2^53);
-- they always leave Lua through int(), because Lua's own number formatting
-- (%.14g) would turn large values into "1e+15". int() formats with %d (Lua
-- 5.1 casts to a C long): the same digits as %.0f for integers, at a third
-- of the cost (glibc's %.0f takes a multi-precision path, ~1 us per call
-- on large values; a commit formats about 25 numbers). They enter Lua as
-- decimal strings, read with arithmetic ('s + 0': one conversion) where
-- they are known to be numbers, rather than tonumber (a C call that
-- converts twice: ~1 us a number).

-- The globals the library calls, as its locals: a global is looked up
-- through the globals table's metatable (~300 instructions; about forty a
-- call of lease_settle.lua), a local is an upvalue. FUNCTION LOAD runs the
-- library without them (its globals are redis.register_function's): BIND
-- sets them, on the library's first call (see scripts.go). unpack and
-- tonumber keep their names (every file's calls become the locals'):
-- base() is the globals of those names, read before the locals hide them.
local function base() return unpack, tonumber end
local rcall, sformat, ssub, smatch, sbyte, spack, tconcat, mmin, mmax, floor, unpack, tonumber
-- Z72 is nine zeros packed as doubles: struct.pack('<ddddddddd', 0, ...).
local Z72
BIND = function()
  rcall, sformat, ssub, smatch, sbyte, spack = redis.call, string.format, string.sub, string.match, string.byte,
    struct.pack
  tconcat, mmin, mmax, floor = table.concat, math.min, math.max, math.floor
  unpack, tonumber = base()
  Z72 = string.rep('\0', 72)
end

local SWEEP_LIMIT = 200
-- SWEEP_BATCHES bounds a call's sweep: SWEEP_LIMIT * SWEEP_BATCHES timers (see sweep).
local SWEEP_BATCHES = 5
-- SWEEP_AHEAD bounds how long an account goes without a sweep (see open).
local SWEEP_AHEAD = 1000
local MAX_CREDITS = 9007199254740992
-- REPLAY_MS is how long lease_settle.lua keeps its last reply for a resent
-- call: well past meter/lease's SettleTimeout (10 s), within which
-- go-redis resends.
local REPLAY_MS = 60000

local function int(n)
  if n == 0 then return '0' end -- many parts are 0; a format costs ~0.5 us
  return sformat('%d', n)
end

local function now_ms()
  if NOW then return NOW end -- one time for every operation of a batch (batch.lua)
  local t = rcall('TIME')
  return t[1] * 1000 + floor(t[2] / 1000)
end

-- Credit grants (issue 19). LOTS: the account's lots, in spending order,
-- are the hash field 'lots', absent for an account without grants (then
-- a.lots is nil and none of this runs): one lot a line,
-- 'id|granted|left|held|prio|exp|created|ended|desc' (desc last, with '%'
-- and '\n' escaped as %25 and %0A; exp 0: never; ended '', 'expired' or
-- 'voided'). A lot's left is part of balance, its held part of reserved.
-- Not cjson: it formats large numbers with 14 digits. A hold's grant
-- parts are 'id:n,id:n' under 'h:'..rid in the idempotency hash, while
-- it is held; a usage, refund or grant entry's, its 'lots' field.
-- Go twins: meter/ledger/grants.go.
local LOT = '^([^|]*)|(%d+)|(%d+)|(%d+)|(%-?%d+)|(%d+)|(%d+)|([^|]*)|(.*)$'

local function unescape(s)
  return (string.gsub(s, '%%(%x%x)', function(x) return string.char(tonumber(x, 16)) end))
end

local function decode_lots(raw)
  local ls = {}
  for line in string.gmatch(raw, '[^\n]+') do
    local id, g, l, h, p, e, c, en, d = smatch(line, LOT)
    if not id then error('redisstore: bad lot ' .. line) end
    ls[#ls + 1] = {id = id, granted = g + 0, left = l + 0, held = h + 0, prio = p + 0, exp = e + 0,
      created = c + 0, ended = en, desc = unescape(d)}
  end
  return ls
end

local function save_lots(a)
  a.lots_dirty = nil
  if #a.lots == 0 then
    a.lots = nil
    rcall('HDEL', KEYS[1], 'lots')
    return
  end
  local out = {}
  for i, l in ipairs(a.lots) do
    out[i] = tconcat({l.id, int(l.granted), int(l.left), int(l.held), int(l.prio), int(l.exp),
      int(l.created), l.ended, (string.gsub(l.desc, '[%%\n]', {['%'] = '%25', ['\n'] = '%0A'}))}, '|')
  end
  rcall('HSET', KEYS[1], 'lots', tconcat(out, '\n'))
end

-- parts and parts_str read and write a list of grant parts {id, n}.
local function parts(s)
  local ps = {}
  for id, n in string.gmatch(s or '', '([^:,]+):(%d+)') do ps[#ps + 1] = {id = id, n = n + 0} end
  return ps
end

local function parts_str(ps)
  local out = {}
  for i, p in ipairs(ps or {}) do out[i] = p.id .. ':' .. int(p.n) end
  return tconcat(out, ',')
end

local function parts_sum(ps)
  local n = 0
  for _, p in ipairs(ps or {}) do n = n + p.n end
  return n
end

-- cut_parts is the first x of ps, in their order. Go twin: cutParts
local function cut_parts(ps, x)
  local out = {}
  for _, p in ipairs(ps or {}) do
    if x <= 0 then break end
    local n = mmin(x, p.n)
    out[#out + 1] = {id = p.id, n = n}
    x = x - n
  end
  return out
end

local function lot(a, id)
  for _, l in ipairs(a.lots or {}) do
    if l.id == id then return l end
  end
  return nil
end

-- Go twins: Account.lotsLeft, Account.lotsFree
local function lots_left(a)
  local left, held = 0, 0
  for _, l in ipairs(a.lots) do left, held = left + l.left, held + l.held end
  return left, held
end

local function lots_free(a)
  local n = 0
  for _, l in ipairs(a.lots) do
    if l.ended == '' then n = n + l.left - l.held end
  end
  return n
end

-- take_lots takes up to x from the spendable lots in spending order,
-- without holding it. Go twin: Account.takeLots
local function take_lots(a, x)
  local ps = {}
  for _, l in ipairs(a.lots) do
    if x <= 0 then break end
    local n = mmin(x, l.left - l.held)
    if l.ended == '' and n > 0 then
      ps[#ps + 1] = {id = l.id, n = n}
      x = x - n
    end
  end
  return ps
end

-- hold_lots adds d (1 hold, -1 release) times the parts to their lots'
-- held; spend_lots takes them out of their lots and the balance.
-- Go twins: Account.holdLots, Account.spendLots
local function hold_lots(a, ps, d)
  for _, p in ipairs(ps or {}) do
    local l = lot(a, p.id)
    if l then l.held = l.held + d * p.n end
    a.lots_dirty = true
  end
end

local function spend_lots(a, ps)
  for _, p in ipairs(ps or {}) do
    local l = lot(a, p.id)
    if l then l.left = l.left - p.n end
    a.balance = a.balance - p.n
    a.lots_dirty = true
  end
end

-- end_lots (set below, after append) expires due lots and lets go what
-- holds released of ended ones. Go twin: Account.EndLots
local end_lots

-- A record is 'state|q|b|o|period|exp|charged|bal|avail|late|entry|nonce|idem':
-- state h (held), c (committed), v (voided) or x (expired); q, b, o the
-- quota, balance and overage parts held (once committed: charged), period
-- the id of the period the hold was made in; exp and nonce only matter
-- while held. The idempotency key is last, as it may hold '|'.
local REC = '^([hcvx])|(%d+)|(%d+)|(%d+)|(%d+)|(%d+)|(%-?%d+)|(%-?%d+)|(%-?%d+)|([01])|([^|]*)|([^|]*)|(.*)$'
-- Records written before quotas ('state|amount|exp|charged|bal|avail|late|
-- entry|nonce|idem') never match REC (their 8th field is never a number)
-- and are read as a balance hold of no period, so an upgrade needs no
-- migration.
local REC0 = '^([hcvx])|(%d+)|(%d+)|(%-?%d+)|(%-?%d+)|(%-?%d+)|([01])|([^|]*)|([^|]*)|(.*)$'

-- hold_parts reads the grant parts of the hold r of rid, if it has any.
local function hold_parts(rid, r)
  local raw_g = rcall('HGET', KEYS[4], 'h:' .. rid)
  if raw_g then
    r.g = parts(raw_g)
    r.gs = parts_sum(r.g)
    r.amount = r.amount + r.gs
  end
end

-- HELD is REC of a held record, capturing its parts q, b, o, then the
-- rest as stored (from the '|' before the period on), and in it the
-- period and the expiry: lease_settle.lua reads a held lease with it, and
-- writes the rest back as it read it (a record is written by record(): the
-- rest is what record() would make of it again, without its formats).
local HELD = '^h|(%d+)|(%d+)|(%d+)(|(%d+)|(%d+)|%-?%d+|%-?%d+|%-?%d+|[01]|[^|]*|[^|]*|.*)$'

-- decode_res reads the record raw of rid (nil: none), as load_res
-- (lease_settle.lua reads it with the lease's kept reply, one HMGET).
local function decode_res(rid, raw, a)
  if not raw then return nil end
  local st, q, b, o, per, exp, charged, bal, avail, late, entry, nonce, idem = smatch(raw, REC)
  if not st then
    st, b, exp, charged, bal, avail, late, entry, nonce, idem = smatch(raw, REC0)
    q, o, per = 0, 0, 0
  end
  if not st then error('redisstore: bad reservation record ' .. rid) end
  local r = {state = st, q = q + 0, b = b + 0, o = o + 0, per = per + 0, exp = exp + 0, charged = charged + 0,
    bal = bal + 0, avail = avail + 0,
    late = late == '1', entry = entry, nonce = nonce, idem = idem}
  r.amount = r.q + r.b + r.o
  -- Its grant parts: a held one's only on an account with lots (it has
  -- none otherwise); an expired one's for its late settle's amount.
  if a and ((a.lots and st == 'h') or st == 'x') then hold_parts(rid, r) end
  return r
end

local function load_res(rid, a)
  return decode_res(rid, rcall('HGET', KEYS[3], rid), a)
end

local function record(r)
  return r.state .. '|' .. int(r.q) .. '|' .. int(r.b) .. '|' .. int(r.o) ..
    '|' .. int(r.per) .. '|' .. int(r.exp or 0) .. '|' .. int(r.charged or 0) .. '|' .. int(r.bal or 0) ..
    '|' .. int(r.avail or 0) .. '|' .. (r.late and '1' or '0') .. '|' .. (r.entry or '') .. '|' ..
    (r.nonce or '') .. '|' .. r.idem
end

local function save_res(rid, r)
  rcall('HSET', KEYS[3], rid, record(r))
end

-- The account hash's numeric fields, read by open into a table of the
-- same names (missing ones, in accounts older than the field, read 0).
-- lb_threshold is Settings.LowBalanceThreshold, lb_sent 1 once a low-balance
-- event was recorded and until the balance is back at or above it;
-- evt_seq numbers the account's events; due is the "next due" marker of
-- the timers zset (see open).
-- open(n) reads only the first n (each field read costs ~0.5 us: the hash
-- is a listpack, searched from its start): reserve stops after lots,
-- commit before total_purchased; every caller reads lots (13th, a string,
-- absent without grants: the account's credit grants, see LOTS).
local FIELDS = {'balance', 'reserved', 'q_res', 'o_res', 'q_used', 'o_used', 'period', 'period_end',
  'quota_limit', 'overage_cap', 'lb_threshold', 'due', 'lots', 'total_used', 'lb_sent', 'evt_seq',
  'total_purchased'}

-- POS is each field's place in FIELDS: open keeps what the hash holds
-- of field k at a[POS[k]] (the table's array part: no second table).
local POS = {}
for i = 1, #FIELDS do POS[FIELDS[i]] = i end -- (no ipairs while the library loads)

-- save writes the named fields of a back to the account hash, those that
-- changed only: a[POS[k]] holds what the hash has (read by open, or
-- written since), and a hot script's fields mostly stay as they were (a
-- balance account's quota and overage parts): each field written costs
-- a format and a listpack search. Nothing changed, no HSET. The HSET's
-- arguments go in one table of the library's, reused (calls never
-- overlap): a table made and grown on every call cost more than the HSET.
local SAVE = {'HSET'}
local function save(a, ...)
  local ks, n = {...}, 2 -- one table: select(i, ...) copies the arguments on every call
  for i = 1, #ks do
    local k = ks[i]
    local v, p = a[k], POS[k]
    if v ~= a[p] then
      SAVE[n + 1], SAVE[n + 2], n = k, int(v), n + 2 -- a field open did not read is false: fails here
      a[p] = v
    end
  end
  if n > 2 then
    SAVE[2] = KEYS[1]
    rcall(unpack(SAVE, 1, n))
  end
end

-- release takes a hold's parts off the pools. Parts held in an earlier
-- period were already dropped from q_res and o_res when the period rolled.
-- Go twin: ledger.Account.Release (meter/ledger)
local function release(a, r)
  a.reserved = a.reserved - r.b - r.o - (r.gs or 0)
  if r.g then hold_lots(a, r.g, -1) end
  if r.per == a.period then
    a.q_res = a.q_res - r.q
    a.o_res = a.o_res - r.o
  end
end

-- owes is what the account owes beyond its overage cap: the shortfall of
-- output-priced commits (commit.lua, uncapped) or an adjustment not yet
-- bought back. While it owes, no pool gives anything.
-- Go twin: ledger.Account.Owes (meter/ledger)
local function owes(a)
  local left = a.lots and lots_left(a) or 0 -- grant credits never pay a debt
  local d = -(a.balance - left + a.overage_cap)
  return d > 0 and d or 0 -- math.max(0, d), without a C call (every script's state)
end

-- pools returns what the quota, the paid balance, the overage and the
-- credit grants can give now; room (paid balance - its holds) may be
-- negative. While the account owes, grants give nothing either.
-- Go twin: ledger.Account.Pools (meter/ledger)
local function pools(a)
  local room, ga = a.balance - a.reserved, 0
  if a.lots then
    local left, held = lots_left(a)
    room, ga = room - (left - held), lots_free(a)
  end
  if owes(a) > 0 then return 0, room, 0, 0 end
  if a.period == 0 then return 0, room, 0, ga end
  local qa = mmax(0, a.quota_limit - a.q_used - a.q_res)
  local oa = mmax(0, mmin(a.overage_cap - a.o_used - a.o_res, a.overage_cap + mmin(0, room)))
  return qa, room, oa, ga
end

-- split takes x from the pools in order: quota, grants (the parts g, gs
-- in all), paid balance, overage. The parts may fall short of x. A
-- caller that ignores g must refuse accounts with lots.
-- Go twin: ledger.Account.Split (meter/ledger)
local function split(a, x)
  local qa, room, oa, ga = pools(a)
  local q = mmin(x, qa)
  local g, gs = nil, 0
  if ga > 0 and x > q then
    g = take_lots(a, x - q)
    gs = parts_sum(g)
  end
  local b = mmin(x - q - gs, mmax(0, room))
  local o = mmin(x - q - gs - b, oa)
  return q, b, o, g, gs
end

-- roll moves the account to period pid (ending pend) when it is newer than
-- the stored one: its quota and overage start afresh, and holds of the old
-- period keep their parts but no longer count here. An older or absent
-- (0) id is read as the stored period (a gateway whose clock lags).
-- Go twin: ledger.Account.Roll (meter/ledger)
local function roll(a, pid, pend)
  if pid > a.period then
    a.period, a.period_end = pid, pend
    a.q_used, a.q_res, a.o_used, a.o_res = 0, 0, 0, 0
    save(a, 'period', 'period_end', 'q_used', 'q_res', 'o_used', 'o_res')
  end
end

-- refusal is the reply to a hold of amount that the pools cannot cover:
-- the overage cap is reached, a quota-only account used its quota, or
-- the balance is short (reserve.lua, job_create.lua).
-- Go twin: ledger.Account.Refusal (meter/ledger)
local function refusal(a, amount)
  local room = a.balance - a.reserved
  if owes(a) > 0 then
    return {'credits_owed', amount, room, owes(a)}
  elseif a.period > 0 and a.overage_cap > 0 then
    return {'overage_limit_reached', amount, room, a.overage_cap}
  elseif a.period > 0 and a.quota_limit > 0 and room <= 0 then
    return {'quota_exceeded', a.quota_limit, a.q_used + a.q_res, a.period_end,
      rcall('HGET', KEYS[1], 'quota_unit') or ''}
  end
  return {'insufficient_credits', amount, room}
end

-- with_state appends the period's state to a reply: quota limit, used,
-- reserved, remaining, resets_at ms; overage cap, used, reserved,
-- remaining. With n, it writes them after rep[n] instead (lease_settle.lua's
-- reply is made at its size: a table that grows is copied).
-- Go twin: ledger.Account.State (meter/ledger)
local function with_state(rep, a, n)
  local qa, _, oa = pools(a)
  n = n or #rep
  rep[n + 1], rep[n + 2], rep[n + 3], rep[n + 4], rep[n + 5] = a.quota_limit, a.q_used, a.q_res, qa, a.period_end
  rep[n + 6], rep[n + 7], rep[n + 8], rep[n + 9] = a.overage_cap, a.o_used, a.o_res, oa
  return rep
end

-- fingerprint is the fingerprint of the request of rid, which holds an
-- idempotency key: '' for one made before fingerprints. It is kept apart
-- from the record, whose format gateways of older versions read too.
local function fingerprint(rid)
  return rcall('HGET', KEYS[4], 'f:' .. rid) or ''
end

-- drop_idem removes the Reserve idempotency mapping of r if it names rid,
-- so that a retry with the same key may be charged again.
local function drop_idem(rid, r)
  if r.idem ~= '' and rcall('HGET', KEYS[4], 'r:' .. r.idem) == rid then
    rcall('HDEL', KEYS[4], 'r:' .. r.idem)
  end
end

-- timer sets when member of the timers zset is due, keeping a.due (the
-- account's next-due marker, see open) at or below every timer: a timer
-- earlier than the marker lowers it, and the account hash, at once.
local function timer(a, ms, member)
  rcall('ZADD', KEYS[2], int(ms), member)
  if ms < a.due then
    a.due, a[POS.due] = ms, ms
    rcall('HSET', KEYS[1], 'due', int(ms))
  end
end

-- finish stores a settled record, without what only a held one needs
-- (records are many: one per request for retain_ms), and moves its timer
-- from the expiry to the purge (one ZADD: the member stays).
local function finish(rid, r, a)
  r.nonce, r.exp = nil, nil
  save_res(rid, r)
  if r.g and r.state ~= 'x' then rcall('HDEL', KEYS[4], 'h:' .. rid) end -- kept for a late settle
  if type(a) == 'table' then
    timer(a, a.now + tonumber(ARGV[1]), 'r:' .. rid)
  else -- finish(rid, r, now), as written before the marker: the purge may wait up to SWEEP_AHEAD
    rcall('ZADD', KEYS[2], int(a + tonumber(ARGV[1])), 'r:' .. rid)
  end
end

-- expire marks a held reservation whose TTL has passed as expired and
-- releases its parts. The caller writes the pools back.
-- Go twin: ledger.Account.Release (meter/ledger)
local function expire(rid, r, a)
  r.state = 'x'
  drop_idem(rid, r)
  finish(rid, r, a)
  release(a, r)
end

-- migrate fills quota_limit and overage_cap of an account whose settings
-- were written before they were kept as plain fields (see settings.lua).
-- (and lb_threshold, when the settings were written before webhooks).
local function migrate(a, quota)
  local raw = rcall('HGET', KEYS[1], 'settings')
  local ok, s = pcall(cjson.decode, raw or '{}')
  if not ok or type(s) ~= 'table' then s = {} end
  local function credits(v) return type(v) == 'number' and floor(v * 1000 + 0.5) or 0 end
  a.lb_threshold = credits(s.low_balance_threshold)
  a[POS.lb_threshold] = a.lb_threshold
  rcall('HSET', KEYS[1], 'lb_threshold', int(a.lb_threshold))
  if not quota then return end
  a.quota_limit, a.overage_cap = credits(s.monthly_quota), credits(s.overage_cap)
  a[POS.quota_limit], a[POS.overage_cap] = a.quota_limit, a.overage_cap
  rcall('HSET', KEYS[1], 'quota_limit', int(a.quota_limit), 'overage_cap', int(a.overage_cap),
    'quota_unit', type(s.quota_unit) == 'string' and s.quota_unit or '')
end

-- sweep expires due holds and purges due settled records and mappings,
-- SWEEP_LIMIT timers a batch and at most SWEEP_BATCHES batches a call, and
-- sets the next-due marker a.due: the first timer after now, if it is
-- within SWEEP_AHEAD ms, else now + SWEEP_AHEAD (or now, when more may be
-- due than this call took). It saves what it changed. Batches, rather
-- than one bounded range, so that holds that expired together give their
-- credits back before the caller reads the pools (up to SWEEP_LIMIT *
-- SWEEP_BATCHES = 1000 timers: about 7 ms of script on a shared 2-core
-- machine, BenchmarkSweepWorstCase), while a call after a long idle
-- period (every purge due at once) stays bounded. Beyond 1000 holds
-- expired together, the rest are released by the next calls, 1000 each.
local function sweep(a)
  local now = a.now
  local nxt, more = now + SWEEP_AHEAD, false
  a.due = nxt -- timers set below (expiries' purges) may lower it
  local expired = false
  for _ = 1, SWEEP_BATCHES do
    local due = rcall('ZRANGEBYSCORE', KEYS[2], '-inf', int(now + SWEEP_AHEAD), 'WITHSCORES',
      'LIMIT', '0', SWEEP_LIMIT)
    more = #due == 2 * SWEEP_LIMIT
    local gone = {}
    for i = 1, #due, 2 do
      local at = due[i + 1] + 0
      if at > now then
        nxt, more = at, false
        break
      end
      local m = due[i]
      local id = ssub(m, 3)
      local kind = ssub(m, 1, 2)
      if kind == 'g:' or kind == 'L:' then
        rcall('HDEL', KEYS[4], m)
        if kind == 'L:' then rcall('HDEL', KEYS[3], m) end -- a voided lease's (void.lua)
        gone[#gone + 1] = m
      else
        local r = load_res(id, a)
        if r and r.state == 'h' then
          expire(id, r, a) -- moves its timer to the purge, after now
          expired = true
        else
          if r then drop_idem(id, r) end
          if r and r.idem ~= '' then rcall('HDEL', KEYS[4], 'f:' .. id) end
          if r and r.g then rcall('HDEL', KEYS[4], 'h:' .. id) end
          rcall('HDEL', KEYS[3], id, 'L:' .. id) -- a lease's kept reply with it
          gone[#gone + 1] = m
        end
      end
    end
    if #gone > 0 then rcall('ZREM', KEYS[2], unpack(gone)) end
    if not more then break end
  end
  if more then nxt = now end
  if nxt < a.due then a.due = nxt end
  if expired then
    save(a, 'reserved', 'q_res', 'o_res', 'due')
  elseif a.keep_due then
    a.due_dirty = true -- the caller saves it with its own fields
  else
    save(a, 'due')
  end
end

-- open reads the account and the server time (a.now), then sweeps the
-- account's timers if the next-due marker says some may be due. It
-- returns the account table, or nil if there is no account.
--
-- The marker (the 'due' field, ms) is never above the earliest timer that
-- this code set (timer() lowers it), so a call before it has nothing to
-- sweep and skips the range query. It is also never more than SWEEP_AHEAD
-- ms ahead of the last sweep, which bounds how late a timer set without it
-- is seen: those of a gateway of an older version, during an upgrade.
-- Accounts written before the marker read it as 0: swept at once, as
-- before.
--
-- With n, only the first n FIELDS are read; the others are false in the
-- table, so that using one fails loudly (arithmetic on a boolean, or
-- int()) rather than writing 0 over it. With keep_due, a new marker the
-- sweep set is left to the caller to save (a.due_dirty), with the fields
-- it writes anyway: one HSET less when accounts are swept on most calls
-- (each call finds a purge due, retain after a busy period). A marker
-- not saved only makes the next call sweep again.
--
-- The table is the library's, made once (ACC) and cleared by each open:
-- calls never overlap, and a script opens one account (a batch's
-- operations one each, in turn). Made on every call, with its keys, it
-- cost ~7k instructions, 2% of a call of lease_settle.lua.
local ACC
local function open(n, keep_due)
  n = n or #FIELDS
  local v = rcall('HMGET', KEYS[1], unpack(FIELDS, 1, n))
  if not v[1] then return nil end
  -- Slots 1-17 (the array part) hold what the hash holds of each of
  -- FIELDS, see save: nil for one not read, so that saving it fails too.
  local a = ACC
  if not a then
    a = {nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
      balance = false, reserved = false, q_res = false, o_res = false, q_used = false, o_used = false,
      period = false, period_end = false, quota_limit = false, overage_cap = false, lb_threshold = false,
      due = false, total_used = false, lb_sent = false, evt_seq = false, total_purchased = false, now = 0,
      lots = false, lots_dirty = false, keep_due = false, events = false, due_dirty = false}
    ACC = a
  end
  -- What the last call left: every other key the scripts set on it.
  a.lots, a.lots_dirty, a.keep_due, a.events, a.due_dirty, a.now = nil, nil, nil, nil, nil, 0
  for i = n + 1, #FIELDS do a[i], a[FIELDS[i]] = nil, false end
  for i = 1, #v do
    -- Written by int(), but lots (13th), which is not a number.
    local x = v[i]
    x = x and i ~= 13 and x + 0 or 0
    a[FIELDS[i]], a[i] = x, x
  end
  if #v < 13 then error('redisstore: open must read the lots') end
  a.lots = v[13] and decode_lots(v[13]) or nil
  if not v[9] or not v[11] then migrate(a, not v[9]) end
  a.now = now_ms()
  a.keep_due = keep_due
  if a.now >= a.due then sweep(a) end
  if a.lots then end_lots(a) end -- an expired grant is never spent
  return a
end

-- append adds a ledger entry and returns its id (server-time ordered).
-- extra is a flat list of name, value; empty values ('', 0, false) are
-- left out (readers take a missing field as empty): every field costs in
-- the script, in memory and in the AOF.
-- f is made at the size of the most fields an entry has (a usage entry's),
-- so that it never grows: a table that grows is copied at each doubling.
local function append(typ, amount, balance_after, extra)
  local f, n = {'type', typ, 'amount', int(amount), 'balance_after', int(balance_after), false, false, false,
    false, false, false, false, false, false, false, false, false, false, false, false, false, false, false, false,
    false, false, false}, 6
  for i = 1, #extra, 2 do
    local v = extra[i + 1]
    if v ~= '' and v ~= 0 and v ~= false then
      if v == true then v = '1' elseif type(v) == 'number' then v = int(v) end
      f[n + 1], f[n + 2], n = extra[i], v, n + 2
    end
  end
  return rcall('XADD', KEYS[5], '*', unpack(f, 1, n))
end

-- emit records a webhook event in the account's outbox, claimable now.
-- A record is 'type|ms|balance|threshold|limit|used|resets_ms|attempts|owner'
-- (owner last: it is the caller's). A job event (job given) has
-- 'job|upstream_job|' before attempts, with '%' and '|' escaped as %25 and
-- %7C. The caller saves evt_seq.
local function emit(a, typ, threshold, limit, used, resets, job, upjob)
  a.evt_seq = a.evt_seq + 1
  local id = int(a.now) .. '-' .. int(a.evt_seq)
  local jf = ''
  if job then
    local e = {['%'] = '%25', ['|'] = '%7C'}
    jf = string.gsub(job, '[%%|]', e) .. '|' .. string.gsub(upjob or '', '[%%|]', e) .. '|'
  end
  rcall('HSET', KEYS[7], id, typ .. '|' .. int(a.now) .. '|' .. int(a.balance) .. '|' .. int(threshold) ..
    '|' .. int(limit) .. '|' .. int(used) .. '|' .. int(resets) .. '|' .. jf .. '0|')
  rcall('ZADD', KEYS[8], int(a.now), id)
  a.events = (a.events or 0) + 1
end

-- low_balance, after the balance moved, records a low-balance event when
-- it is below the threshold and none was since it last was at or above
-- it, and re-arms when it is at or above it. It saves what it changed.
-- Go twin: ledger.Account.LowBalance (meter/ledger)
local function low_balance(a)
  if a.lb_threshold <= 0 then return end
  if a.balance < a.lb_threshold and a.lb_sent == 0 then
    a.lb_sent = 1
    emit(a, 'credits.low_balance', a.lb_threshold, 0, 0, 0)
    save(a, 'lb_sent', 'evt_seq')
  elseif a.balance >= a.lb_threshold and a.lb_sent ~= 0 then
    a.lb_sent = 0
    save(a, 'lb_sent')
  end
end

-- end_lots expires the lots whose expiry is at or before now (the
-- server's clock): what is left and not held leaves the balance, one
-- expiration (grant_void for a voided lot) entry per lot. It also lets go
-- what holds have released since from ended lots, drops ended lots
-- nothing holds any more, and saves the lots when they changed. Every
-- script that opens an account with lots runs it (open), and again after
-- it released a hold (the scripts that settle).
-- Go twin: ledger.Account.EndLots (meter/ledger)
end_lots = function(a)
  local kept, n_entries = {}, 0
  for _, l in ipairs(a.lots) do
    if l.ended == '' and l.exp > 0 and l.exp <= a.now then
      l.ended, a.lots_dirty = 'expired', true
    end
    local n = l.left - l.held
    if l.ended ~= '' and n > 0 then
      l.left, a.balance = l.left - n, a.balance - n
      local typ, what = 'expiration', ' expired'
      if l.ended == 'voided' then typ, what = 'grant_void', ' voided' end
      append(typ, -n, a.balance, {'description', 'credit grant ' .. l.id .. what, 'lots', l.id .. ':' .. int(n)})
      n_entries = n_entries + 1
    end
    if l.ended == '' or l.left > 0 then
      kept[#kept + 1] = l
    else
      a.lots_dirty = true
    end
  end
  a.lots = kept
  if a.lots_dirty or n_entries > 0 then save_lots(a) end
  if n_entries == 0 then return end
  save(a, 'balance')
  if a.lb_sent == false then -- opened with fewer fields (reserve)
    local v = rcall('HMGET', KEYS[1], 'lb_sent', 'evt_seq')
    a.lb_sent, a.evt_seq = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  end
  low_balance(a)
end

-- settle charges a settled request. A held reservation h (late false) is
-- charged min(amount, held) from its own parts, quota first, then grants,
-- then balance, then overage, and the whole of h is released; its use
-- counts in the period it was made in, unless that period has rolled. A
-- late settle (the hold expired first and was released) takes
-- min(amount, held) from what the pools have now, counted in the current
-- period. Uncapped, the excess over the hold is taken from the pools
-- after the hold's parts, and what they cannot give, the shortfall,
-- leaves the balance all the same. It writes the usage entry (with desc,
-- route, request_id, rid as its reservation_id, and pages) when anything
-- is charged, and records the events; the caller saves the account.
-- Returns charged, entry id ('' for none), shortfall and the parts q, b,
-- o. h needs q, b, o, per, amount and, with grant parts, g and gs (see
-- load_res). commit.lua settles a reservation, lease_settle.lua each
-- request's share of a lease. No table is made on the common path (no
-- grants): this runs once per request of a group.
-- Go twin: ledger.Account.Settle (meter/ledger)
local function settle(a, h, late, amount, uncapped, desc, route, request_id, rid, pages)
  local x = uncapped and amount or mmin(amount, h.amount)
  local q, b, o, gs, excess = 0, 0, 0, 0, 0
  local g -- the grant parts charged, in order; nil for none
  local current = true
  if late then
    excess = x
  else
    local held = mmin(x, h.amount)
    q = mmin(held, h.q)
    if h.g then
      g = cut_parts(h.g, held - q)
      gs = parts_sum(g)
    end
    b = mmin(held - q - gs, h.b)
    o = held - q - gs - b
    excess = x - held
    current = h.per == a.period
    release(a, h)
    if g then spend_lots(a, g) end
  end
  if current then
    a.q_used, a.o_used = a.q_used + q, a.o_used + o
  end
  a.balance = a.balance - b - o
  local short = 0
  if excess > 0 then
    local eq, eb, eo, eg, egs = split(a, excess)
    if uncapped then short = excess - eq - egs - eb - eo end
    if eg then
      spend_lots(a, eg)
      g = g or {}
      for _, p in ipairs(eg) do g[#g + 1] = p end
      gs = gs + egs
    end
    a.q_used, a.o_used = a.q_used + eq, a.o_used + eo
    a.balance = a.balance - eb - eo - short
    q, b, o = q + eq, b + eb, o + eo
    current = current or eq + eo > 0
  end
  local charged = q + gs + b + o + short
  a.total_used = a.total_used + charged
  local entry = ''
  if charged > 0 then
    -- append('usage', -(gs + b + o + short), a.balance, {'description', desc, 'route', route,
    --   'request_id', request_id, 'reservation_id', rid, 'late', late, 'quota', q, 'overage', o,
    --   'pages', pages, 'shortfall', short, 'lots', lots}), written out: this runs once per request of
    -- a group, and the list and append's loop over it cost about a tenth of a request (callgrind).
    local f, n = {'type', 'usage', 'amount', int(-(gs + b + o + short)), 'balance_after', int(a.balance), false,
      false, false, false, false, false, false, false, false, false, false, false, false, false, false, false,
      false, false, false, false, false, false}, 6
    if desc ~= '' then f[n + 1], f[n + 2], n = 'description', desc, n + 2 end
    if route ~= '' then f[n + 1], f[n + 2], n = 'route', route, n + 2 end
    if request_id ~= '' then f[n + 1], f[n + 2], n = 'request_id', request_id, n + 2 end
    if rid ~= '' then f[n + 1], f[n + 2], n = 'reservation_id', rid, n + 2 end
    if late then f[n + 1], f[n + 2], n = 'late', '1', n + 2 end
    if q ~= 0 then f[n + 1], f[n + 2], n = 'quota', int(q), n + 2 end
    if o ~= 0 then f[n + 1], f[n + 2], n = 'overage', int(o), n + 2 end
    if pages ~= 0 then f[n + 1], f[n + 2], n = 'pages', int(pages), n + 2 end
    if short ~= 0 then f[n + 1], f[n + 2], n = 'shortfall', int(short), n + 2 end
    if g then
      local lots = parts_str(g)
      if lots ~= '' then f[n + 1], f[n + 2], n = 'lots', lots, n + 2 end
    end
    entry = rcall('XADD', KEYS[5], '*', unpack(f, 1, n))
  end
  -- The quota's and the overage's crossings are tested with the whole
  -- part charged, hold and excess.
  if current and q > 0 and a.quota_limit > 0 and a.q_used >= a.quota_limit and a.q_used - q < a.quota_limit then
    emit(a, 'quota.exhausted', 0, a.quota_limit, a.q_used, a.period_end)
  end
  if gs + b + o + short > 0 then low_balance(a) end
  if current and o > 0 and a.overage_cap > 0 and a.o_used >= a.overage_cap and a.o_used - o < a.overage_cap then
    emit(a, 'overage.limit_reached', 0, a.overage_cap, a.o_used, a.period_end)
  end
  if short > 0 then emit(a, 'credits.shortfall', 0, 0, short, 0) end
  return charged, entry, short, q, b, o
end

-- lots_after, at the end of a script that released a hold, lets go what
-- it released of ended lots and saves the lots it changed.
local function lots_after(a)
  if a.lots then end_lots(a) end
end

-- (end of lib.lua)

-- count_series adds one request's usage to the account's usage series, a
-- hash (key) of plain string fields (no cjson: this runs on every commit):
--   'd'..day..'\0'..route              -> 'requests|pages|credits' of the
--                                         UTC day (days since the epoch)
--   'h'..(hour % SERIES_HOURS)..'\0'..route -> 'hour|requests|pages|credits',
--                                         a ring of the last hours; a slot
--                                         holding an older hour starts afresh
--   'routes'                            -> the routes seen, '\0'-separated,
--                                         so readers name the fields they read
-- Numbers are decimal strings (exact, see int). Written by the scripts that
-- write the usage by route (commit, job charges), in the same call.
local SERIES_HOURS = 168
-- The day's and the hour's field prefixes, formatted once a day and once
-- an hour rather than on every call (a format costs ~0.25 us; the library's locals live
-- as long as it is loaded).
local series_day, series_dp, series_hour, series_hp, series_hv, series_from, series_to
local function count_series(key, now, route, pages, credits, requests)
  requests = requests or 1 -- lease_settle.lua counts a group of one route at once
  if not series_from or now < series_from or now >= series_to then -- a new hour (a day is 24 of them)
    local day, hour = floor(now / 86400000), floor(now / 3600000)
    if day ~= series_day then series_day, series_dp = day, 'd' .. int(day) .. '\0' end
    if hour ~= series_hour then
      series_hour, series_hp, series_hv = hour, 'h' .. int(hour % SERIES_HOURS) .. '\0', int(hour) .. '|'
    end
    series_from, series_to = hour * 3600000, (hour + 1) * 3600000
  end
  local fd, fh = series_dp .. route, series_hp .. route
  local cur = rcall('HMGET', key, fd, fh)
  local r, p, c = 0, 0, 0
  if cur[1] then r, p, c = smatch(cur[1], '^(%d+)|(%d+)|(%d+)$') end
  local hr, hp, hc = 0, 0, 0
  if cur[2] and ssub(cur[2], 1, #series_hv) == series_hv then -- a slot of this hour
    hr, hp, hc = smatch(cur[2], '^%d+|(%d+)|(%d+)|(%d+)$')
  end
  -- One format for three numbers: int()'s digits (%d), a third of the calls.
  local dv = sformat('%d|%d|%d', r + requests, p + pages, c + credits)
  local hv = series_hv .. sformat('%d|%d|%d', hr + requests, hp + pages, hc + credits)
  -- A route with a day field is in the list already (written by the same
  -- HSET): the list, which grows with the routes, is read only for a
  -- route's first request of a day.
  local routes = not cur[1] and rcall('HGET', key, 'routes')
  if not cur[1] and (not routes or not string.find('\0' .. routes .. '\0', '\0' .. route .. '\0', 1, true)) then
    rcall('HSET', key, fd, dv, fh, hv, 'routes', routes and (routes .. '\0' .. route) or route)
  else
    rcall('HSET', key, fd, dv, fh, hv)
  end
end
