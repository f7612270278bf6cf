-- settings.lua: replace an account's settings.
-- KEYS: the account keys, see lib.lua.
-- ARGV: [1] retain_ms, [2] settings as JSON ('': keep them), [3] monthly quota,
--       [4] overage cap, [5] quota unit, [6] low-balance threshold
-- Reply: as account.lua's (updated_ms now), or {'account_not_found'}
-- The quota, its unit, the overage cap and the low-balance threshold are
-- the limits in force, kept as plain fields, which the hot scripts read
-- without decoding the JSON: the account's own or its plan's (ARGV[2] ''
-- sets only them). A change applies at once, to the current period too.
local a = open()
if not a then return {'account_not_found'} end
a.quota_limit, a.overage_cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local settings = ARGV[2]
if settings == '' then
  redis.call('HSET', KEYS[1], 'quota_unit', ARGV[5])
  settings = redis.call('HGET', KEYS[1], 'settings') or ''
else
  redis.call('HSET', KEYS[1], 'settings', settings, 'quota_unit', ARGV[5], 'updated_ms', int(a.now))
end
a.lb_threshold = tonumber(ARGV[6]) or 0
-- A new threshold records no event; it re-arms when the balance is at or
-- above it (the next debit below it records one).
if a.lb_threshold <= 0 or a.balance >= a.lb_threshold then a.lb_sent = 0 end
save(a, 'quota_limit', 'overage_cap', 'lb_threshold', 'lb_sent')
return with_state({'ok', a.balance, a.reserved, tonumber(redis.call('HGET', KEYS[1], 'created_ms')),
  settings, a.total_purchased, a.total_used, a.now}, a)
