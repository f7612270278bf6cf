-- job_lib.lua: helpers of the job scripts (meter.JobStore), prepended to
-- each of them after lib.lua.
--
-- A job script gets the account keys (see lib.lua), and
--   KEYS[9]  usage-by-route hash of the period ARGV[2] names (see commit.lua)
--   KEYS[10] the job record, JSON (see load_job)
--   KEYS[11] the alias of the upstream id ARGV[3] ('' for none): -> job id
--   KEYS[12] the usage series hash (see count_series in lib.lua)
-- ARGV: [1] retain_ms, [2] period id of KEYS[9], [3] upstream id of KEYS[11],
--       [4] the call's period id (0: the stored period), [5] its end ms;
--       the script's own from [6] on.
-- Two replies ask the caller to call again with other keys, having changed
-- nothing that matters: {'period', id} (KEYS[9] is not the usage hash of
-- the stored period, where a charge counts) and {'upstream', id} (KEYS[11]
-- is not the job's alias, whose expiry follows the record's).
--
-- The job's hold is a reservation record (see load_res) of rid
-- 'job:'..id: the sweep of open() expires it at the job's expiry and
-- Account.Reserved counts it. Charges take its parts in place.
--
-- The record and its alias expire (PXAT) retain_ms after the job's expiry
-- while it runs, after its end once finished. A running or blocked job
-- whose expiry passed is read as expired, and recorded so by the first
-- script that touches it.

local JOB_NUMS = {'est_pages', 'estimate', 'debited', 'failed', 'created', 'updated', 'expires', 'finished',
  'ttl', 'retain'}
local JOB_MAPS = {'rates', 'pages', 'reported'}
local RUNNING, BLOCKED = 'running', 'blocked_insufficient_credits'

-- load_job reads the record of KEYS[10], or nil. Its numbers are stored as
-- decimal strings: cjson writes numbers as %.14g, which is not exact.
local function load_job()
  local raw = redis.call('GET', KEYS[10])
  if not raw then return nil end
  local j = cjson.decode(raw)
  for _, k in ipairs(JOB_NUMS) do j[k] = tonumber(j[k]) or 0 end
  for _, k in ipairs(JOB_MAPS) do
    local m = {}
    for c, v in pairs(j[k] or {}) do m[c] = tonumber(v) or 0 end
    j[k] = m
  end
  return j
end

local function job_json(j)
  local o = {}
  for k, v in pairs(j) do o[k] = v end
  for _, k in ipairs(JOB_NUMS) do o[k] = int(j[k]) end
  for _, k in ipairs(JOB_MAPS) do
    local m = {}
    for c, v in pairs(j[k]) do m[c] = int(v) end
    o[k] = m
  end
  return cjson.encode(o)
end

local function job_deadline(j)
  return (j.finished > 0 and j.finished or j.expires) + j.retain
end

-- save_job writes the record and moves its expiry, and the alias's (the
-- caller checked that KEYS[11] is the alias, see job_alias_ok).
local function save_job(j)
  local at = int(job_deadline(j))
  redis.call('SET', KEYS[10], job_json(j), 'PXAT', at)
  if j.upstream_id ~= '' then redis.call('PEXPIREAT', KEYS[11], at) end
end

local function job_alias_ok(j)
  return j.upstream_id == '' or j.upstream_id == ARGV[3]
end

local function job_rid(j) return 'job:' .. j.id end

-- open_job opens the account, moves it to the call's period (ARGV[4],
-- ARGV[5]) with roll_period, and reads the job (ARGV[6] names it); with
-- check_alias, a job of another upstream id than KEYS[11]'s is refused.
-- It returns the account and the job, or nil, nil and the refusal to
-- answer.
local function open_job(roll_period, check_alias)
  local a = open()
  if not a then return nil, nil, {'account_not_found'} end
  if roll_period then roll(a, tonumber(ARGV[4]) or 0, tonumber(ARGV[5]) or 0) end
  local j = load_job()
  if not j then return nil, nil, {'job_not_found', ARGV[6]} end
  if check_alias and not job_alias_ok(j) then return nil, nil, {'upstream', j.upstream_id} end
  return a, j
end

-- load_hold returns the job's hold record while it holds, else nil.
local function load_hold(j, a)
  local r = load_res(job_rid(j), a)
  if r and r.state == 'h' then return r end
  return nil
end

-- drop_hold releases what is left of the hold and settles its record.
local function drop_hold(j, a, r)
  if not r then return end
  release(a, r)
  r.state = 'v'
  finish(job_rid(j), r, a)
  save(a, 'reserved', 'q_res', 'o_res')
  lots_after(a) -- what it held of an ended grant leaves now
end

-- expire_job records a running or blocked job whose expiry passed as
-- expired (at its expiry), releasing the hold if the sweep has not yet.
-- The deadline of the keys does not move, so the alias is not written.
local function expire_job(j, a)
  if (j.status == RUNNING or j.status == BLOCKED) and j.expires <= a.now then
    local r = load_hold(j, a)
    if r then
      expire(job_rid(j), r, a)
      save(a, 'reserved', 'q_res', 'o_res')
      lots_after(a)
    end
    j.status, j.finished, j.updated = 'expired', j.expires, j.expires
    redis.call('SET', KEYS[10], job_json(j), 'PXAT', int(job_deadline(j)))
  end
end

-- wrong_period says when KEYS[9] is not the usage hash of the stored
-- period (after roll), where a charge counts.
local function wrong_period(a)
  if tonumber(ARGV[2]) ~= a.period then return {'period', a.period} end
  return nil
end

-- available is what the pools can give now.
-- Go twin: ledger.Account.Available (meter/ledger)
local function available(a)
  local qa, room, oa, ga = pools(a)
  return qa + ga + math.max(0, room) + oa
end

local function job_classes(j)
  local cs = {}
  for c in pairs(j.rates) do cs[#cs + 1] = c end
  table.sort(cs)
  return cs
end

-- charge_owed charges the owed pages (reported - pages) of each class in
-- name order, whole, as many as the budget covers: the hold r (nil for
-- none), then the pools; pages of rate 0 always. The credits come from
-- the hold's parts first (quota, grants, balance, overage), the rest from
-- the pools (split).
-- Go twins: ledger.PagesWithin, Account.JobBudget, Account.ChargeJob It writes one ledger entry (if any credits), counts the
-- call in the stored period's usage, and records the events Commit would.
-- Returns credits charged, pages charged, entry id, and whether every owed
-- page was charged.
local function charge_owed(j, a, r, request_id)
  local budget = available(a)
  if r then budget = budget + r.amount end
  local cost, pages, covered = 0, 0, true
  for _, c in ipairs(job_classes(j)) do
    local owed, rate = (j.reported[c] or 0) - (j.pages[c] or 0), j.rates[c]
    if owed > 0 then
      local k = owed
      if rate > 0 then
        k = math.min(owed, math.floor(budget / rate))
        if k * rate > budget then k = k - 1 end -- the division rounded up
      end
      if k < owed then covered = false end
      j.pages[c] = (j.pages[c] or 0) + k
      pages, cost, budget = pages + k, cost + k * rate, budget - k * rate
    end
  end
  if pages == 0 then return 0, 0, '', covered end

  local hq, hb, ho, current = 0, 0, 0, true
  local g, hgs = {}, 0 -- the grant parts charged, in order
  if r then
    hq = math.min(cost, r.q)
    if r.g then
      g = cut_parts(r.g, cost - hq)
      hgs = parts_sum(g)
      local rest = {} -- r.g less the prefix g
      for i, p in ipairs(r.g) do
        local n = p.n - (g[i] and g[i].n or 0)
        if n > 0 then rest[#rest + 1] = {id = p.id, n = n} end
      end
      hold_lots(a, g, -1)
      spend_lots(a, g)
      r.g, r.gs, r.amount = rest, r.gs - hgs, r.amount - hgs
      if #rest > 0 then
        redis.call('HSET', KEYS[4], 'h:' .. job_rid(j), parts_str(rest))
      else
        redis.call('HDEL', KEYS[4], 'h:' .. job_rid(j))
      end
    end
    hb = math.min(cost - hq - hgs, r.b)
    ho = math.min(cost - hq - hgs - hb, r.o)
    r.q, r.b, r.o = r.q - hq, r.b - hb, r.o - ho
    r.amount = r.amount - hq - hb - ho
    a.reserved = a.reserved - hgs - hb - ho
    -- Parts held in a period that has since rolled no longer count in it.
    current = r.per == a.period
    if current then
      a.q_res, a.o_res = a.q_res - hq, a.o_res - ho
      a.q_used, a.o_used = a.q_used + hq, a.o_used + ho
    end
    a.balance = a.balance - hb - ho
  end
  -- Taking from the hold (its parts move from held to used) leaves the
  -- pools as they were, so they cover the rest.
  local pq, pb, po, pg = split(a, cost - hq - hgs - hb - ho)
  if pg then
    spend_lots(a, pg)
    for _, p in ipairs(pg) do g[#g + 1] = p end
  end
  local gs = parts_sum(g)
  local q, b, o = hq + pq, hb + pb, ho + po
  local qc, oc = pq, po -- what counts in the period's used
  if current then qc, oc = qc + hq, oc + ho end
  a.q_used, a.o_used = a.q_used + pq, a.o_used + po
  a.balance = a.balance - pb - po
  a.total_used = a.total_used + cost
  j.debited = j.debited + cost

  local entry = ''
  if cost > 0 then
    entry = append('usage', -(gs + b + o), a.balance, {'route', j.route, 'request_id', request_id,
      'reservation_id', j.id, 'quota', q, 'overage', o, 'pages', pages,
      'job_id', j.id, 'upstream_job_id', j.upstream_id, 'lots', parts_str(g)})
  end
  save(a, 'balance', 'reserved', 'q_res', 'o_res', 'q_used', 'o_used', 'total_used')
  if qc > 0 and a.quota_limit > 0 and a.q_used >= a.quota_limit and a.q_used - qc < a.quota_limit then
    emit(a, 'quota.exhausted', 0, a.quota_limit, a.q_used, a.period_end)
  end
  if gs + b + o > 0 then low_balance(a) end
  if oc > 0 and a.overage_cap > 0 and a.o_used >= a.overage_cap and a.o_used - oc < a.overage_cap then
    emit(a, 'overage.limit_reached', 0, a.overage_cap, a.o_used, a.period_end)
  end
  if a.events then save(a, 'evt_seq') end
  lots_after(a)
  if redis.call('HINCRBY', KEYS[9], j.route .. '\0requests', 1) == 1 and a.period > 0 then
    redis.call('PEXPIREAT', KEYS[9], int(math.max(a.period_end, a.now) + 62 * 86400000))
  end
  redis.call('HINCRBY', KEYS[9], j.route .. '\0pages', int(pages))
  if cost > 0 then redis.call('HINCRBY', KEYS[9], j.route .. '\0credits', int(cost)) end
  count_series(KEYS[12], a.now, j.route, pages, cost)
  return cost, pages, entry, covered
end

-- hold_for holds x (as far as the pools cover it) for the job until its
-- expiry, in a fresh hold record.
local function hold_for(j, a, x)
  local q, b, o, g, gs = split(a, x)
  a.reserved, a.q_res, a.o_res = a.reserved + gs + b + o, a.q_res + q, a.o_res + o
  save(a, 'reserved', 'q_res', 'o_res')
  timer(a, j.expires, 'r:' .. job_rid(j))
  save_res(job_rid(j), {state = 'h', q = q, b = b, o = o, per = a.period, exp = j.expires, idem = ''})
  if g then
    hold_lots(a, g, 1)
    redis.call('HSET', KEYS[4], 'h:' .. job_rid(j), parts_str(g))
    save_lots(a)
  end
  return q + gs + b + o
end

-- job_reply: {'ok', job_json, reserved, charged, entry_id, balance,
-- available, period, events}.
local function job_reply(j, a, charged, entry)
  local r = load_hold(j, a)
  local held = r and r.amount or 0
  return {'ok', job_json(j), int(held), int(charged or 0), entry or '', int(a.balance),
    int(a.balance - a.reserved), int(a.period), a.events or 0}
end

-- (end of job_lib.lua)
