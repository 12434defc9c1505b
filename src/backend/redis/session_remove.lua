-- Removes a session; returns {removed (0/1), live sessions left}.
-- KEYS[1] sessions zset; ARGV[1] session, ARGV[2] now ms
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
return {removed, redis.call('ZCARD', KEYS[1])}
