-- floor_settle.lua: bench/floor.sh puts this at the top of a copy of
-- meter/redisstore/lease_settle.lua, so that a gateway built from that
-- copy settles each request of a group with bench/minpair.lua's work
-- (the floor issue 17 compares the hot path with) and answers in
-- lease_settle.lua's reply format. None of the money rules: balance and
-- entries only, for measuring how much of a metered request's latency
-- and CPU the settle script itself is, never for serving.
-- Per request: HMGET, three HINCRBY, HSET, HDEL, XADD, as minpair.lua.
do
  local a = rcall('HMGET', KEYS[1], 'balance', 'reserved')
  local bal, res = a[1] + 0, a[2] + 0
  local vals = {}
  for i = 5, #ARGV, 7 do
    local amt = ARGV[i + 1] + 0
    bal = bal - amt
    rcall('HINCRBY', KEYS[1], 'balance', -amt)
    rcall('HINCRBY', KEYS[1], 'reserved', 0)
    rcall('HINCRBY', KEYS[1], 'total_used', amt)
    rcall('HSET', KEYS[3], 'floor', '5')
    rcall('HDEL', KEYS[3], 'floor')
    local e = rcall('XADD', KEYS[5], '*', 'type', 'usage', 'amount', int(-amt), 'balance_after', int(bal))
    -- settled's six values a request, packed as lease_settle.lua packs them
    vals[#vals + 1] = spack('<ddddBs', amt, bal, bal - res, 0, 0, e)
  end
  return {'ok', bal, bal - res, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, tconcat(vals)}
end
