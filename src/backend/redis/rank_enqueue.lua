-- Queues a player once per user. KEYS[1] players hash (user -> "<rating> <since ms>
-- <session>"), KEYS[2] queue version (bumped by every change, so a matcher that saw it
-- unchanged knows its last read of the queue still holds), KEYS[3] change log;
-- ARGV[1] user, ARGV[2] rating, ARGV[3] now ms, ARGV[4] session. Returns 1 if queued
-- now, 0 if already queued.
-- Every change bumps the version and logs itself under it (stream id `<version>-1`):
-- "+<user> <entry>" or "-<user> <user> ...", so a replica that read the queue at some
-- version catches up with XRANGE instead of reading it all again. The version starts
-- at the Redis clock in µs, so a queue rebuilt after a Redis restart never repeats a
-- version a replica read before it.
local function bump(change)
  if redis.call('EXISTS', KEYS[2]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[2], t[1] .. string.format('%06d', t[2]))
  end
  local version = redis.call('INCR', KEYS[2])
  local id = string.format('%d-1', version)
  local logged = redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', 20000, id, 'c', change)
  if type(logged) == 'table' and logged.err then
    -- A log ahead of the version (the version key was lost): start it again; readers
    -- see the gap and read the whole queue.
    redis.call('DEL', KEYS[3])
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', 20000, id, 'c', change)
  end
  return version
end
local entry = ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4]
if redis.call('HSETNX', KEYS[1], ARGV[1], entry) == 0 then
  return 0
end
bump('+' .. ARGV[1] .. ' ' .. entry)
return 1
