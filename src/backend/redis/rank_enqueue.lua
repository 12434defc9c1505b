-- Queues a player once per user. KEYS[1] queue zset (user -> rating),
-- KEYS[2] meta hash (user -> "<since ms> <session>"); ARGV[1] user, ARGV[2] rating,
-- ARGV[3] now ms, ARGV[4] session. Returns 1 if queued now, 0 if already queued.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. ' ' .. ARGV[4])
return 1
