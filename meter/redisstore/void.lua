-- void.lua: release a reservation without charging.
-- Go twin: ledger.Account.Release (meter/ledger)
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] rid
-- Reply: {'ok', balance, available, state...} (state: see with_state in lib.lua)
--   or {'account_not_found'} | {'reservation_not_found'}
--   or {'reservation_settled', status ('committed')}
-- Every part of the hold (quota, balance, overage) goes back to its pool.
-- Voiding a voided or expired reservation changes nothing and succeeds.
local rid = ARGV[2]
local a = open()
if not a then return {'account_not_found'} end
-- A job's hold is settled by the job's calls only (as ledger and boltstore).
if string.sub(rid, 1, 4) == 'job:' then return {'reservation_not_found'} end

-- With a lease's kept reply (see lease_settle.lua): one HMGET.
local v = redis.call('HMGET', KEYS[3], rid, 'L:' .. rid)
local r = decode_res(rid, v[1], a)
if not r then return {'reservation_not_found'} end
if r.state == 'c' then return {'reservation_settled', 'committed'} end
if r.state == 'h' then
  if r.exp <= a.now then
    expire(rid, r, a) -- due but beyond the sweep limit
  else
    r.state = 'v'
    drop_idem(rid, r)
    finish(rid, r, a)
    release(a, r)
  end
  save(a, 'reserved', 'q_res', 'o_res')
  lots_after(a) -- what it held of an ended grant leaves now
  -- A lease's reply kept next to its record is kept REPLAY_MS more, as
  -- lease_settle.lua keeps one of a lease not held (the sweep purges
  -- both), rather than as long as the record.
  if v[2] then timer(a, a.now + math.min(REPLAY_MS, tonumber(ARGV[1])), 'L:' .. rid) end
end
return with_state({'ok', a.balance, a.balance - a.reserved}, a)
