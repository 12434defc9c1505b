-- Adds (or refreshes) a session in a sorted set scored by expiry time; returns how many
-- live sessions were there before. Expired entries (crashed replicas) are dropped.
-- KEYS[1] sessions zset; ARGV[1] session, ARGV[2] now ms, ARGV[3] expiry ms, ARGV[4] key ttl ms
-- With KEYS[2..4] (the online list's keys: one Redis, not Cluster, where they sit in
-- another slot) the user is marked online too, as online_touch.lua does (the name is
-- overwritten when this is the user's first session): ARGV[5] user, ARGV[6] name; and
-- with ARGV[7] channel and ARGV[8] payload, the payload is published there for a first
-- session (the user_online announcement).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local before = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  before = before - 1
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if KEYS[4] then
  redis.call('ZADD', KEYS[2], 'GT', ARGV[3], ARGV[5])
  redis.call('ZADD', KEYS[3], 0, ARGV[5])
  if before == 0 then
    redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
  else
    redis.call('HSETNX', KEYS[4], ARGV[5], ARGV[6])
  end
  if ARGV[8] and before == 0 then
    redis.call('PUBLISH', ARGV[7], ARGV[8])
  end
end
return before
