-- Removes a session; returns {removed (0/1), live sessions left}.
-- KEYS[1] sessions zset; ARGV[1] session, ARGV[2] now ms
-- With KEYS[2..4] (the online list's keys, one Redis only) the user leaves the online
-- list when no live session is left, as online_remove.lua does: ARGV[3] user; and with
-- ARGV[4] channel and ARGV[5] payload, the payload is published there then (the
-- user_offline announcement).
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local left = redis.call('ZCARD', KEYS[1])
if KEYS[4] and left == 0 then
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('HDEL', KEYS[4], ARGV[3])
  if ARGV[5] then
    redis.call('PUBLISH', ARGV[4], ARGV[5])
  end
end
return {removed, left}
