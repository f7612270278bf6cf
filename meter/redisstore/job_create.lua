-- job_create.lua: record a running job and hold its estimate.
-- KEYS, ARGV[1..5]: see job_lib.lua.
-- ARGV: [6] job id, [7] route, [8] rates (JSON: class -> decimal string),
--       [9] estimated pages, [10] estimate, [11] ttl_ms, [12] retain_ms of
--       the record once finished, [13] nonce of this call
-- Reply: see job_reply in job_lib.lua,
--   or {'account_not_found'} | {'invalid', message}
--   or refusals as reserve.lua's (insufficient_credits, overage_limit_reached,
--   quota_exceeded)
-- The nonce makes a client-side retry of this very call (connection lost
-- after the script ran) answer the same instead of "job id already used".
local id, estimate, ttl, nonce = ARGV[6], tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[13]
local a = open()
if not a then return {'account_not_found'} end
roll(a, tonumber(ARGV[4]) or 0, tonumber(ARGV[5]) or 0)
local now = a.now

local j = load_job()
if j then
  if j.nonce == nonce then
    expire_job(j, a)
    return job_reply(j, a, 0, '')
  end
  return {'invalid', 'job id already used'}
end
if load_hold({id = id}, a) then return {'invalid', 'job id already used'} end

local q, b, o, _, gs = split(a, estimate)
if q + gs + b + o < estimate then return refusal(a, estimate) end

local rates = {}
local pages = {}
for c, v in pairs(cjson.decode(ARGV[8])) do
  rates[c], pages[c] = tonumber(v), 0
end
local reported = {}
for c in pairs(rates) do reported[c] = 0 end
j = {id = id, upstream_id = '', route = ARGV[7], status = RUNNING, rates = rates,
  est_pages = tonumber(ARGV[9]), estimate = estimate, debited = 0, pages = pages, reported = reported,
  failed = 0, final = '', created = now, updated = now, expires = now + ttl, finished = 0, ttl = ttl,
  retain = tonumber(ARGV[12]), nonce = nonce}
hold_for(j, a, estimate)
save_job(j)
return job_reply(j, a, 0, '')
