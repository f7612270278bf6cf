-- reserve.lua: hold credits for one request.
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] rid, [3] amount, [4] ttl_ms,
--       [5] idempotency key ('' for none), [6] nonce of this call
-- Reply: {'ok', amount, balance, available} (a new hold of rid)
--   or {'ok', amount, balance, available, replayed_rid} (a replay)
--   or {'account_not_found'} | {'invalid', message} | {'idempotency_conflict'}
--   or {'insufficient_credits', required, available}
-- A replay names the committed reservation and what it charged.
-- The nonce makes a client-side retry of this very call (connection lost
-- after the script ran) answer the same instead of "id already used".
local rid, amount, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local idem, nonce = ARGV[5], ARGV[6]
local balance, reserved, now = open()
if not balance then return {'account_not_found'} end

local r = load_res(rid)
if r then
  if r.nonce == nonce then
    return {'ok', r.amount, balance, balance - reserved}
  end
  return {'invalid', 'reservation id already used'}
end

if idem ~= '' then
  local prev = redis.call('HGET', KEYS[4], 'r:' .. idem)
  local p = prev and load_res(prev)
  if p and p.state == 'h' and p.exp <= now then
    -- due but beyond this call's sweep limit
    reserved = expire(prev, p, now, reserved)
    redis.call('HSET', KEYS[1], 'reserved', int(reserved))
  elseif p and p.state == 'h' then
    return {'idempotency_conflict'}
  elseif p and p.state == 'c' then
    return {'ok', p.charged, balance, balance - reserved, prev}
  end
end

if balance - reserved < amount then
  return {'insufficient_credits', amount, balance - reserved}
end
reserved = reserved + amount
redis.call('HSET', KEYS[1], 'reserved', int(reserved))
redis.call('ZADD', KEYS[2], int(now + ttl), 'r:' .. rid)
save_res(rid, {state = 'h', amount = amount, exp = now + ttl, nonce = nonce, idem = idem})
if idem ~= '' then redis.call('HSET', KEYS[4], 'r:' .. idem, rid) end
return {'ok', amount, balance, balance - reserved}
