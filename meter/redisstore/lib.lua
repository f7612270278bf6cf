-- lib.lua: helpers shared by the account scripts; prepended to each of them
-- at init, so everything here is local.
--
-- Every account script gets the same KEYS, all under one {hash tag}:
--   KEYS[1] account hash: balance, reserved, created_ms, nonce
--   KEYS[2] holds zset: rid -> expires_ms, the held (unsettled) reservations
--   KEYS[3] reservations hash: rid -> cjson record {amount, state, idem,
--           charged, entry, late, bal, avail, and while held: exp, nonce};
--           state is one of held | committed | voided | expired
--   KEYS[4] idempotency hash: 'r:'..key -> rid (Reserve),
--           'g:'..key -> ledger entry id (Grant)
--   KEYS[5] ledger stream: one entry per balance change
--   KEYS[6] gc zset: 'r:'..rid | 'g:'..key -> purge-at ms
-- and ARGV[1] = retain_ms, how long settled records and mappings are kept.
--
-- Amounts are integer milli-credits held in Lua doubles (exact below 2^53);
-- they always leave Lua through int(), because Lua's own number formatting
-- (%.14g) would turn large values into "1e+15".

local SWEEP_LIMIT = 200
local MAX_CREDITS = 9007199254740992

local function int(n)
  if n == 0 then return '0' end -- never "-0"
  return string.format('%.0f', n)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local NUMS = {'amount', 'exp', 'charged', 'bal', 'avail'}

local function load_res(rid)
  local raw = redis.call('HGET', KEYS[3], rid)
  if not raw then return nil end
  local r = cjson.decode(raw)
  for _, f in ipairs(NUMS) do r[f] = tonumber(r[f] or '0') end
  return r
end

-- save_res stores numbers as strings: cjson would print them with 14 digits.
local function save_res(rid, r)
  local o = {}
  for k, v in pairs(r) do o[k] = v end
  for _, f in ipairs(NUMS) do
    if r[f] then o[f] = int(r[f]) end
  end
  redis.call('HSET', KEYS[3], rid, cjson.encode(o))
end

-- drop_idem removes the Reserve idempotency mapping of r if it names rid,
-- so that a retry with the same key may be charged again.
local function drop_idem(rid, r)
  if r.idem ~= '' and redis.call('HGET', KEYS[4], 'r:' .. r.idem) == rid then
    redis.call('HDEL', KEYS[4], 'r:' .. r.idem)
  end
end

-- finish stores a settled record, without what only a held one needs
-- (records are many: one per request for retain_ms), and schedules its
-- purge.
local function finish(rid, r, now)
  r.nonce, r.exp = nil, nil
  save_res(rid, r)
  redis.call('ZADD', KEYS[6], int(now + tonumber(ARGV[1])), 'r:' .. rid)
end

-- expire marks a held reservation whose TTL has passed as expired and
-- returns the new reserved total. The caller writes it back (HSET).
local function expire(rid, r, now, reserved)
  r.state = 'expired'
  drop_idem(rid, r)
  redis.call('ZREM', KEYS[2], rid)
  finish(rid, r, now)
  return reserved - r.amount
end

-- sweep expires due holds and purges due gc entries, a bounded number of
-- each per call, and returns balance, reserved. The account must exist.
local function sweep(now)
  local v = redis.call('HMGET', KEYS[1], 'balance', 'reserved')
  local balance, reserved = tonumber(v[1]), tonumber(v[2])
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', int(now), 'LIMIT', 0, SWEEP_LIMIT)
  if #due > 0 then
    for _, rid in ipairs(due) do
      local r = load_res(rid)
      if r and r.state == 'held' then
        reserved = expire(rid, r, now, reserved)
      else
        redis.call('ZREM', KEYS[2], rid)
      end
    end
    redis.call('HSET', KEYS[1], 'reserved', int(reserved))
  end
  local old = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', int(now), 'LIMIT', 0, SWEEP_LIMIT)
  for _, m in ipairs(old) do
    if string.sub(m, 1, 2) == 'r:' then
      local rid = string.sub(m, 3)
      local r = load_res(rid)
      if r then drop_idem(rid, r) end
      redis.call('HDEL', KEYS[3], rid)
    else
      redis.call('HDEL', KEYS[4], m)
    end
  end
  if #old > 0 then redis.call('ZREM', KEYS[6], unpack(old)) end
  return balance, reserved
end

-- append adds a ledger entry and returns its id (server-time ordered).
local function append(typ, amount, balance_after, desc, route, reqid, rid, late)
  return redis.call('XADD', KEYS[5], '*',
    'type', typ, 'amount', int(amount), 'balance_after', int(balance_after),
    'description', desc, 'route', route, 'request_id', reqid,
    'reservation_id', rid, 'late', late and '1' or '0')
end

local function account_exists()
  return redis.call('EXISTS', KEYS[1]) == 1
end

-- (end of lib.lua)
