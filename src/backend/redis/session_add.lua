-- Adds (or refreshes) a session in a sorted set scored by expiry time; returns how many
-- live sessions were there before. Expired entries (crashed replicas) are dropped.
-- KEYS[1] sessions zset; ARGV[1] session, ARGV[2] now ms, ARGV[3] expiry ms, ARGV[4] key ttl ms
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local before = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  before = before - 1
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return before
