-- Takes a user off the online list.
-- KEYS[1] expiry zset, KEYS[2] lexical zset, KEYS[3] names hash; ARGV[1] user
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 0
