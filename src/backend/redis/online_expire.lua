-- Takes users whose replicas stopped refreshing them (crashed) off the online list and
-- returns them, so the one caller that removed them announces them offline.
-- KEYS[1] expiry zset, KEYS[2] lexical zset, KEYS[3] names hash; ARGV[1] now ms
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, user in ipairs(expired) do
  redis.call('ZREM', KEYS[1], user)
  redis.call('ZREM', KEYS[2], user)
  redis.call('HDEL', KEYS[3], user)
end
return expired
