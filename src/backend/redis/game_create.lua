-- Creates a game. KEYS[1] state hash, KEYS[2] watchers set
-- ARGV[1] owner, ARGV[2] opponent ('' for friend play), ARGV[3] ttl ms, ARGV[4] now ms
-- Seat fields `*_away` hold when the seat went away (ms), 0 while taken. Ranked games
-- start with both seats away: the players take them with game.join.
redis.call('DEL', KEYS[1], KEYS[2])
local away = 0
if ARGV[2] ~= '' then away = ARGV[4] end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'opponent', ARGV[2], 'started', 0,
  'owner_away', away, 'opponent_away', away)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
