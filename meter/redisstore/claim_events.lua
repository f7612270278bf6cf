-- claim_events.lua: lease an account's due webhook events to an owner.
-- KEYS: [1] outbox hash, [2] outbox zset (see lib.lua)
-- ARGV: [1] owner, [2] lease_ms, [3] limit
-- Reply: {'ok', left, id, record, id, record, ...}: the events leased
--   (records as in lib.lua's emit, with the new owner), and how many
--   events the account still has, leased or not.
-- An event is due when its zset score (creation, end of lease, retry
-- time) has passed; leasing moves the score to the end of the lease, so
-- no one else claims it before then.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owner, until_ms = ARGV[1], now + tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now), 'LIMIT', 0, tonumber(ARGV[3]))
local out = {'ok', 0}
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then
    raw = string.match(raw, '^(.*|)[^|]*$') .. owner
    redis.call('HSET', KEYS[1], id, raw)
    redis.call('ZADD', KEYS[2], string.format('%.0f', until_ms), id)
    out[#out + 1] = id
    out[#out + 1] = raw
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
out[2] = redis.call('ZCARD', KEYS[2])
return out
