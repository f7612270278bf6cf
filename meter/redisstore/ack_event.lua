-- ack_event.lua: remove a delivered webhook event, or put it back.
-- KEYS: [1] outbox hash, [2] outbox zset (see lib.lua)
-- ARGV: [1] id, [2] delay_ms, or '' to remove the event
-- Reply: {'ok', left}: the account's events left
--   or {'not_found', message} (a retry of an event that is gone)
-- A retry clears the lease, counts the attempt and makes the event due
-- delay_ms from now (server time). Removing one that is gone is a no-op.
local id = ARGV[1]
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  return {'ok', redis.call('ZCARD', KEYS[2])}
end
local raw = redis.call('HGET', KEYS[1], id)
if not raw then return {'not_found', 'no event ' .. id} end
local head, attempts = string.match(raw, '^(.*|)(%d+)|[^|]*$')
if not head then error('redisstore: bad event record ' .. id) end
redis.call('HSET', KEYS[1], id, head .. string.format('%.0f', tonumber(attempts) + 1) .. '|')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[2])), id)
return {'ok', redis.call('ZCARD', KEYS[2])}
