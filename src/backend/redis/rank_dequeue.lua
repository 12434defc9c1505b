-- Removes a player; with ARGV[2] ~= '', only if that session queued them.
-- KEYS[1] players hash, KEYS[2] queue version; ARGV[1] user, ARGV[2] session.
-- Returns 1 if removed.
-- The version starts at the Redis clock in µs, so a queue rebuilt after a Redis restart
-- never repeats a version a replica read before it.
local function bump()
  if redis.call('EXISTS', KEYS[2]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[2], t[1] .. string.format('%06d', t[2]))
  end
  return redis.call('INCR', KEYS[2])
end
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
if ARGV[2] ~= '' and string.match(entry, '^%S+ %d+ (.*)$') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
bump()
return 1
