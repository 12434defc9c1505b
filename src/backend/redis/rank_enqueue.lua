-- Queues a player once per user. KEYS[1] players hash (user -> "<rating> <since ms>
-- <session>"), KEYS[2] queue version (bumped by every change, so a matcher that saw it
-- unchanged knows its last read of the queue still holds); ARGV[1] user, ARGV[2] rating,
-- ARGV[3] now ms, ARGV[4] session. Returns 1 if queued now, 0 if already queued.
-- The version starts at the Redis clock in µs, so a queue rebuilt after a Redis restart
-- never repeats a version a replica read before it.
local function bump()
  if redis.call('EXISTS', KEYS[2]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[2], t[1] .. string.format('%06d', t[2]))
  end
  return redis.call('INCR', KEYS[2])
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4]) == 0 then
  return 0
end
bump()
return 1
