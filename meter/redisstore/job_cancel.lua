-- job_cancel.lua: finish a running or blocked job as canceled, releasing
-- its hold; what was charged stays.
-- KEYS, ARGV[1..5]: see job_lib.lua. ARGV[6] job id.
-- Reply: see job_reply in job_lib.lua,
--   or {'account_not_found'} | {'job_not_found', id} | {'upstream', id}
--   or {'job_finished', id, status} (canceling a canceled job answers it)
local a, j, refused = open_job(false, true)
if refused then return refused end
expire_job(j, a)
if j.status == 'canceled' then return job_reply(j, a, 0, '') end
if j.status ~= RUNNING and j.status ~= BLOCKED then return {'job_finished', j.id, j.status} end
drop_hold(j, a, load_hold(j, a))
j.status, j.finished, j.updated = 'canceled', a.now, a.now
save_job(j)
return job_reply(j, a, 0, '')
