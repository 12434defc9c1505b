-- Reads or sets a player's away flag. KEYS[1] state hash
-- ARGV[1] user, ARGV[2] 'set' to mark away, 'get' to read. Returns 1 when away.
local g = redis.call('HMGET', KEYS[1], 'owner', 'opponent', 'owner_away', 'opponent_away')
local field
if ARGV[1] == g[1] then field = 'owner_away' elseif ARGV[1] == g[2] then field = 'opponent_away' else return 0 end
if ARGV[2] == 'set' then
  redis.call('HSET', KEYS[1], field, 1)
  return 1
end
if field == 'owner_away' then return tonumber(g[3] or '0') end
return tonumber(g[4] or '0')
