-- Live users of a room: {count, user...} (at most ARGV[2] users, ordered by id).
-- KEYS[1] the room's users; ARGV[1] now ms, ARGV[2] limit
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local users = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(users)
local out = {#users}
for i = 1, math.min(#users, tonumber(ARGV[2])) do
  out[#out + 1] = users[i]
end
return out
