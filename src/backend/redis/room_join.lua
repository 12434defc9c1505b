-- Puts a session in a room. Returns {1 if it is the user's first live session there, users}.
-- KEYS[1] the user's sessions in the room (zset session -> expiry)
-- KEYS[2] the room's users (zset user -> expiry)
-- KEYS[3] the room's log position: kept alive while the room has members, so the log
-- does not start a new epoch under live cursors
-- ARGV[1] session, ARGV[2] user, ARGV[3] now ms, ARGV[4] expiry ms, ARGV[5] key ttl ms,
-- ARGV[6] history ttl ms
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local before = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  before = before - 1
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], 'GT', ARGV[4], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if KEYS[3] then redis.call('PEXPIRE', KEYS[3], ARGV[6]) end
local first = 0
if before == 0 then first = 1 end
return {first, redis.call('ZCARD', KEYS[2])}
