-- Creates a game. KEYS[1] state hash, KEYS[2] watchers set
-- ARGV[1] owner, ARGV[2] opponent ('' for friend play), ARGV[3] ttl ms
-- Ranked games start with both seats away: the players take them with game.join.
redis.call('DEL', KEYS[1], KEYS[2])
local ranked = 0
if ARGV[2] ~= '' then ranked = 1 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'opponent', ARGV[2], 'started', 0,
  'owner_away', ranked, 'opponent_away', ranked)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
