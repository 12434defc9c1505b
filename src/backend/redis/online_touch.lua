-- Marks a user online until ARGV[2]; sets the display name when ARGV[4] is '1' or none is set.
-- KEYS[1] expiry zset, KEYS[2] lexical zset (for paging), KEYS[3] names hash
-- ARGV[1] user, ARGV[2] expiry ms, ARGV[3] name, ARGV[4] overwrite name
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
else
  redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[3])
end
return 0
