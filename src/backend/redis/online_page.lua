-- One page of online users ordered by id: {count, user, name, user, name, ...}.
-- (The caller ran online_expire.lua first, announcing whom it took off.)
-- KEYS[1] expiry zset, KEYS[2] lexical zset, KEYS[3] names hash
-- ARGV[1] now ms (unused), ARGV[2] cursor ('' for the start), ARGV[3] page size
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local users = redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, ARGV[3])
local out = {redis.call('ZCARD', KEYS[2])}
for _, user in ipairs(users) do
  out[#out + 1] = user
  out[#out + 1] = redis.call('HGET', KEYS[3], user) or user
end
return out
