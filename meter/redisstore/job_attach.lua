-- job_attach.lua: record a job's upstream id, and its alias KEYS[11].
-- KEYS, ARGV[1..5]: see job_lib.lua (ARGV[3] is the upstream id to attach).
-- ARGV: [6] job id
-- Reply: see job_reply in job_lib.lua,
--   or {'account_not_found'} | {'job_not_found', id} | {'invalid', message}
-- Attaching the job's own upstream id again changes nothing.
local uid = ARGV[3]
local a, j, refused = open_job(false, false)
if refused then return refused end
expire_job(j, a)
if j.upstream_id == uid then return job_reply(j, a, 0, '') end
if j.upstream_id ~= '' then
  return {'invalid', 'job ' .. j.id .. ' already has another upstream id'}
end
local other = redis.call('GET', KEYS[11])
if other and other ~= j.id then
  return {'invalid', 'upstream id ' .. uid .. ' already names job ' .. other}
end
j.upstream_id, j.updated = uid, a.now
redis.call('SET', KEYS[11], j.id, 'PXAT', int(job_deadline(j)))
save_job(j)
return job_reply(j, a, 0, '')
