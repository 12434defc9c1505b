-- Shared by the ranked queue's scripts (scripts.rs puts it in front of each).
-- Every change bumps the queue version (key `version`) and logs itself under it in the
-- change log (key `log`, stream id `<version>-1`): "+<user> <entry>" or
-- "-<user> <user> ...", so a replica that read the queue at some version catches up
-- with XRANGE instead of reading it all again. The version starts at the Redis clock in
-- µs, so a queue rebuilt after a Redis restart never repeats a version a replica read
-- before it.
local function bump(version, log, change)
  if redis.call('EXISTS', version) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', version, t[1] .. string.format('%06d', t[2]))
  end
  local at = redis.call('INCR', version)
  local id = string.format('%d-1', at)
  local logged = redis.pcall('XADD', log, 'MAXLEN', '~', 20000, id, 'c', change)
  if type(logged) == 'table' and logged.err then
    -- A log ahead of the version (the version key was lost): start it again; readers
    -- see the gap and read the whole queue.
    redis.call('DEL', log)
    redis.call('XADD', log, 'MAXLEN', '~', 20000, id, 'c', change)
  end
  return at
end
