-- job_resume.lua: unblock a blocked job, all or nothing.
-- KEYS, ARGV[1..5]: see job_lib.lua. ARGV[6] job id, ARGV[7] the request id
-- recorded in the ledger entry ('' for none).
-- Reply: see job_reply in job_lib.lua,
--   or {'account_not_found'} | {'job_not_found', id} | {'job_expired', id}
--   or {'job_finished', id, status} | {'period', id} | {'upstream', id}
--   or {'insufficient_credits', required, available}
-- The pools must cover the owed pages and, unless a final status waits,
-- one more page at the job's highest rate. The owed pages are charged;
-- then the job finishes as the waiting final status, or runs again
-- holding min(max(estimate - debited, highest rate), what is left), with
-- its expiry moved on by the TTL. A running job is answered as it is.
local a, j, refused = open_job(true, true)
if refused then return refused end
expire_job(j, a)
if j.status == 'expired' then return {'job_expired', j.id} end
if j.status == RUNNING then return job_reply(j, a, 0, '') end
if j.status ~= BLOCKED then return {'job_finished', j.id, j.status} end

local owed, top = 0, 0
for c, rate in pairs(j.rates) do
  owed = owed + ((j.reported[c] or 0) - (j.pages[c] or 0)) * rate
  top = math.max(top, rate)
end
local need = owed
if j.final == '' then need = owed + top end
local avail = available(a)
if avail < need then return {'insufficient_credits', need, avail} end
local wp = wrong_period(a)
if wp then return wp end

local charged, _, entry = charge_owed(j, a, nil, ARGV[7] or '')
j.updated = a.now
if j.final ~= '' then
  j.status, j.finished, j.final = j.final, a.now, ''
else
  j.status, j.expires = RUNNING, a.now + j.ttl
  hold_for(j, a, math.min(math.max(j.estimate - j.debited, top), available(a)))
end
save_job(j)
return job_reply(j, a, charged, entry)
