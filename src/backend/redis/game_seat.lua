-- A game's seats. KEYS[1] state hash
-- ARGV[1] 'away' | 'lease' | 'seats'
--   away:  ARGV[2] user, ARGV[3] the away mark (ms): marks the user's seat away.
--   lease: ARGV[2] user, ARGV[3] until (ms): the user's seat is held (clears an away
--          mark) and vouched for until then.
--   seats: returns {owner, owner_away, owner_lease, opponent, opponent_away,
--          opponent_lease}, or {} when there is no such game.
local g = redis.call('HMGET', KEYS[1], 'owner', 'opponent')
if not g[1] then return {} end
if ARGV[1] == 'seats' then
  local s = redis.call('HMGET', KEYS[1], 'owner_away', 'owner_lease', 'opponent_away', 'opponent_lease')
  return {g[1], s[1] or '0', s[2] or '0', g[2] or '', s[3] or '0', s[4] or '0'}
end
local seat
if ARGV[2] == g[1] then seat = 'owner'
elseif ARGV[2] == g[2] then seat = 'opponent'
else return {} end
if ARGV[1] == 'away' then
  redis.call('HSET', KEYS[1], seat .. '_away', ARGV[3])
else
  redis.call('HSET', KEYS[1], seat .. '_away', 0, seat .. '_lease', ARGV[3])
end
return {}
