-- job_report.lua: record a job's progress (cumulative counts) and charge
-- the newly done pages.
-- Go twin: ledger.Account.ChargeJob (meter/ledger)
-- KEYS, ARGV[1..5]: see job_lib.lua.
-- ARGV: [6] job id, [7] done pages (JSON: class -> decimal string),
--       [8] failed pages, [9] final status ('' | completed | failed),
--       [10] request id
-- Reply: see job_reply in job_lib.lua,
--   or {'account_not_found'} | {'job_not_found', id} | {'job_expired', id}
--   or {'job_finished', id, status} | {'job_invalid', job_json} (a class
--   not the job's, or pages costing more than MAX_CREDITS: the caller
--   words the refusal) | {'period', id} | {'upstream', id}
-- Running: the owed pages are charged (see charge_owed). If some cannot
-- be, the job is blocked: the rest of the hold is released and a
-- job.blocked event recorded; a final status waits in j.final. A report
-- that charged pages moves the expiry on by the TTL; one with a final
-- status whose pages are all paid finishes the job. Blocked: the counts
-- (and a final status) are recorded, nothing else. A lower count than the
-- recorded one reads as the recorded one. A finished job answers a report
-- that repeats its final one (the same status, failed count, and counts
-- of the classes it names).
local final, request_id = ARGV[9], ARGV[10]
local a, j, refused = open_job(true, true)
if refused then return refused end

local raw, done = {}, {}
for c, v in pairs(cjson.decode(ARGV[7])) do
  if not j.rates[c] then return {'job_invalid', job_json(j)} end
  raw[c] = tonumber(v)
  done[c] = math.max(raw[c], j.reported[c] or 0)
end
local total = 0
for c, rate in pairs(j.rates) do total = total + (done[c] or j.reported[c] or 0) * rate end
if total > MAX_CREDITS then return {'job_invalid', job_json(j)} end

expire_job(j, a)
if j.status == 'expired' then return {'job_expired', j.id} end
if j.status ~= RUNNING and j.status ~= BLOCKED then
  -- A repeat of the final report (the same status and counts: a retry)
  -- is answered; any other report is refused.
  local same = final ~= '' and final == j.status and (tonumber(ARGV[8]) or 0) == j.failed
  for c, n in pairs(raw) do same = same and n == j.reported[c] end
  if same then return job_reply(j, a, 0, '') end
  return {'job_finished', j.id, j.status}
end
if j.status == RUNNING then
  local wp = wrong_period(a)
  if wp then return wp end
end

for c, n in pairs(done) do j.reported[c] = n end
j.failed = math.max(j.failed, tonumber(ARGV[8]) or 0)
j.updated = a.now
if j.status == BLOCKED then
  if final ~= '' then j.final = final end
  save_job(j)
  return job_reply(j, a, 0, '')
end

local rid, r = job_rid(j), load_hold(j, a)
local charged, pages, entry, covered = charge_owed(j, a, r, request_id)
if pages > 0 then j.expires = a.now + j.ttl end
if not covered then
  j.status = BLOCKED
  if final ~= '' then j.final = final end
  drop_hold(j, a, r)
  emit(a, 'job.blocked', 0, 0, 0, 0, j.id, j.upstream_id)
  save(a, 'evt_seq')
elseif final ~= '' then
  j.status, j.finished = final, a.now
  drop_hold(j, a, r)
elseif r and pages > 0 then
  r.exp = j.expires
  save_res(rid, r)
  timer(a, r.exp, 'r:' .. rid)
end
save_job(j)
return job_reply(j, a, charged, entry)
