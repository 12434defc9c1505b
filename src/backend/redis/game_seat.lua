-- Reads or sets when a player's seat went away. KEYS[1] state hash
-- ARGV[1] user, ARGV[2] 'set' or 'get', ARGV[3] the away mark (ms) for 'set'.
-- Returns the mark, 0 while the seat is taken (or the user has no seat).
local g = redis.call('HMGET', KEYS[1], 'owner', 'opponent', 'owner_away', 'opponent_away')
local field, value
if ARGV[1] == g[1] then field, value = 'owner_away', g[3]
elseif ARGV[1] == g[2] then field, value = 'opponent_away', g[4]
else return 0 end
if ARGV[2] == 'set' then
  redis.call('HSET', KEYS[1], field, ARGV[3])
  return tonumber(ARGV[3])
end
return tonumber(value or '0')
