-- Display names of the given users (the user id where none is set).
-- KEYS[1] names hash; ARGV users
local out = {}
for i, user in ipairs(ARGV) do
  out[i] = redis.call('HGET', KEYS[1], user) or user
end
return out
