-- Removes a player; with ARGV[2] ~= '', only if that session queued them.
-- KEYS[1] players hash, KEYS[2] queue version, KEYS[3] change log; ARGV[1] user,
-- ARGV[2] session.
-- Returns 1 if removed.
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
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
if ARGV[2] ~= '' and string.match(entry, '^%S+ %d+ (.*)$') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
bump('-' .. ARGV[1])
return 1
