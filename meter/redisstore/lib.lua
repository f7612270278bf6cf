-- lib.lua: helpers shared by the account scripts; prepended to each of them
-- at init, so everything here is local.
--
-- Every account script gets the same KEYS, all under one {hash tag}:
--   KEYS[1] account hash: balance, reserved, created_ms, nonce, settings
--   KEYS[2] timers zset, what is due when:
--           'r:'..rid -> expires_ms while the reservation is held,
--                        purge-at ms once it is settled;
--           'g:'..key -> purge-at ms of a Grant idempotency mapping
--   KEYS[3] reservations hash: rid -> record, see load_res
--   KEYS[4] idempotency hash: 'r:'..key -> rid (Reserve),
--           'g:'..key -> ledger entry id (Grant)
--   KEYS[5] ledger stream: one entry per balance change
-- and ARGV[1] = retain_ms, how long settled records and mappings are kept.
--
-- Every redis.call costs a few microseconds, most of a script's time: the
-- hot scripts make as few as they can (one timers zset instead of holds +
-- gc, no EXISTS, records as plain strings rather than cjson).
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

-- A record is 'state|amount|exp|charged|bal|avail|late|entry|nonce|idem',
-- state h (held), c (committed), v (voided) or x (expired); exp and nonce
-- only matter while held. The idempotency key is last, as it may hold '|'.
local REC = '^([hcvx])|(%d+)|(%d+)|(%-?%d+)|(%-?%d+)|(%-?%d+)|([01])|([^|]*)|([^|]*)|(.*)$'

local function load_res(rid)
  local raw = redis.call('HGET', KEYS[3], rid)
  if not raw then return nil end
  local st, amount, exp, charged, bal, avail, late, entry, nonce, idem = string.match(raw, REC)
  if not st then error('redisstore: bad reservation record ' .. rid) end
  return {state = st, amount = tonumber(amount), exp = tonumber(exp), charged = tonumber(charged),
    bal = tonumber(bal), avail = tonumber(avail), late = late == '1', entry = entry,
    nonce = nonce, idem = idem}
end

local function save_res(rid, r)
  redis.call('HSET', KEYS[3], rid, r.state .. '|' .. int(r.amount) .. '|' .. int(r.exp or 0) .. '|' ..
    int(r.charged or 0) .. '|' .. int(r.bal or 0) .. '|' .. int(r.avail or 0) .. '|' ..
    (r.late and '1' or '0') .. '|' .. (r.entry or '') .. '|' .. (r.nonce or '') .. '|' .. r.idem)
end

-- drop_idem removes the Reserve idempotency mapping of r if it names rid,
-- so that a retry with the same key may be charged again.
local function drop_idem(rid, r)
  if r.idem ~= '' and redis.call('HGET', KEYS[4], 'r:' .. r.idem) == rid then
    redis.call('HDEL', KEYS[4], 'r:' .. r.idem)
  end
end

-- finish stores a settled record, without what only a held one needs
-- (records are many: one per request for retain_ms), and moves its timer
-- from the expiry to the purge (one ZADD: the member stays).
local function finish(rid, r, now)
  r.nonce, r.exp = nil, nil
  save_res(rid, r)
  redis.call('ZADD', KEYS[2], int(now + tonumber(ARGV[1])), 'r:' .. rid)
end

-- expire marks a held reservation whose TTL has passed as expired and
-- returns the new reserved total. The caller writes it back (HSET).
local function expire(rid, r, now, reserved)
  r.state = 'x'
  drop_idem(rid, r)
  finish(rid, r, now)
  return reserved - r.amount
end

-- open reads the account's balances and the server time, then expires due
-- holds and purges due settled records and mappings, a bounded number per
-- call. It returns balance, reserved, now; or nil if there is no account.
local function open()
  local v = redis.call('HMGET', KEYS[1], 'balance', 'reserved')
  if not v[1] then return nil end
  local balance, reserved = tonumber(v[1]), tonumber(v[2])
  local now = now_ms()
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', int(now), 'LIMIT', 0, SWEEP_LIMIT)
  if #due == 0 then return balance, reserved, now end
  local expired, gone = false, {}
  for _, m in ipairs(due) do
    local id = string.sub(m, 3)
    if string.sub(m, 1, 2) == 'g:' then
      redis.call('HDEL', KEYS[4], m)
      gone[#gone + 1] = m
    else
      local r = load_res(id)
      if r and r.state == 'h' then
        reserved, expired = expire(id, r, now, reserved), true
      else
        if r then drop_idem(id, r) end
        redis.call('HDEL', KEYS[3], id)
        gone[#gone + 1] = m
      end
    end
  end
  if #gone > 0 then redis.call('ZREM', KEYS[2], unpack(gone)) end
  if expired then redis.call('HSET', KEYS[1], 'reserved', int(reserved)) end
  return balance, reserved, now
end

-- append adds a ledger entry and returns its id (server-time ordered).
-- Empty fields are left out (readers take a missing field as empty):
-- every field costs in the script, in memory and in the AOF.
local function append(typ, amount, balance_after, desc, route, reqid, rid, late)
  local f = {'type', typ, 'amount', int(amount), 'balance_after', int(balance_after)}
  if desc ~= '' then f[#f + 1] = 'description'; f[#f + 1] = desc end
  if route ~= '' then f[#f + 1] = 'route'; f[#f + 1] = route end
  if reqid ~= '' then f[#f + 1] = 'request_id'; f[#f + 1] = reqid end
  if rid ~= '' then f[#f + 1] = 'reservation_id'; f[#f + 1] = rid end
  if late then f[#f + 1] = 'late'; f[#f + 1] = '1' end
  return redis.call('XADD', KEYS[5], '*', unpack(f))
end

-- (end of lib.lua)
