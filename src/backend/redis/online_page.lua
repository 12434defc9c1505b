-- Sweeps users whose replicas stopped refreshing them, then returns one page of online
-- users ordered by id: {count, user, name, user, name, ...}.
-- KEYS[1] expiry zset, KEYS[2] lexical zset, KEYS[3] names hash
-- ARGV[1] now ms, ARGV[2] cursor ('' for the start), ARGV[3] page size
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, user in ipairs(expired) do
  redis.call('ZREM', KEYS[1], user)
  redis.call('ZREM', KEYS[2], user)
  redis.call('HDEL', KEYS[3], user)
end
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local users = redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, ARGV[3])
local out = {redis.call('ZCARD', KEYS[2])}
for _, user in ipairs(users) do
  out[#out + 1] = user
  out[#out + 1] = redis.call('HGET', KEYS[3], user) or user
end
return out
