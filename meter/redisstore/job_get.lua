-- job_get.lua: read a job (Job, JobByUpstream), recording it as expired
-- if its expiry passed.
-- KEYS, ARGV[1..5]: see job_lib.lua. ARGV[6] job id.
-- Reply: see job_reply in job_lib.lua,
--   or {'account_not_found'} | {'job_not_found', id}
local a = open()
if not a then return {'account_not_found'} end
local j = load_job()
if not j then return {'job_not_found', ARGV[6]} end
expire_job(j, a)
return job_reply(j, a, 0, '')
