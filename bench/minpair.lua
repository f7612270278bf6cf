-- minpair.lua: the floor a reserve+settle pair is compared with (issue
-- 17), run by bench/store.sh through redis-benchmark: what one request's
-- money needs at the least in one call, with none of the rules.
-- KEYS: [1] account hash, [2] holds hash, [3] ledger stream
-- ARGV: [1] hold id
local a = redis.call('HMGET', KEYS[1], 'balance', 'reserved')
local bal = (tonumber(a[1]) or 1000000000) - 3
redis.call('HINCRBY', KEYS[1], 'balance', -3)
redis.call('HINCRBY', KEYS[1], 'reserved', 0)
redis.call('HINCRBY', KEYS[1], 'used', 3)
redis.call('HSET', KEYS[2], ARGV[1], '5')
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'type', 'usage', 'amount', '-3', 'balance_after', tostring(bal))
return 1
