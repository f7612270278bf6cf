-- batch.lua: run several account operations in one call, each as if it
-- were called alone, at one server time (see batch.go).
-- KEYS: the keys of each operation in turn.
-- ARGV: for each operation, the name of its file (reserve, commit or
--       void), its number of keys, its number of arguments, then its
--       arguments.
-- Reply: one reply per operation, in order: the operation's own, or
--   {'batch_error', message} when it raised an error (its writes before
--   the error stay, as they would for a call alone).
-- The operations run in order, so two of one account see each other's
-- writes as two calls would.
local keys, args = KEYS, ARGV
local out = {}
local k, i = 1, 1
NOW = nil
NOW = now_ms()
while i <= #args do
  local name, nk, na = args[i], tonumber(args[i + 1]), tonumber(args[i + 2])
  local op = (name == 'reserve' or name == 'commit' or name == 'void') and OPS[name]
  if not op or not nk or not na then error('redisstore: bad batch operation ' .. tostring(name)) end
  local ok, rep = pcall(op, {unpack(keys, k, k + nk - 1)}, {unpack(args, i + 3, i + 2 + na)})
  if not ok then
    rep = {'batch_error', type(rep) == 'table' and tostring(rep.err) or tostring(rep)}
  end
  out[#out + 1] = rep
  k, i = k + nk, i + 3 + na
end
NOW = nil
return out
