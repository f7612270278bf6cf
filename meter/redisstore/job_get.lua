-- job_get.lua: read a job (Job, JobByUpstream), recording it as expired
-- if its expiry passed.
-- KEYS, ARGV[1..5]: see job_lib.lua. ARGV[6] job id.
-- Reply: see job_reply in job_lib.lua,
--   or {'account_not_found'} | {'job_not_found', id}
local a, j, refused = open_job(false, false)
if refused then return refused end
expire_job(j, a)
return job_reply(j, a, 0, '')
