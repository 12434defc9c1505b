-- Assigns the topic's next seq, appends the event to its bounded log and publishes it,
-- atomically, so channel order equals seq order on every replica.
-- KEYS[1] seq counter, KEYS[2] log stream, KEYS[3] channel (same slot: sharded pub/sub)
-- ARGV[1] event JSON, ARGV[2] max log length (0: no log), ARGV[3] ttl ms,
-- ARGV[4] 'PUBLISH' or 'SPUBLISH'
-- Games also pass KEYS[4], KEYS[5] (state, watchers) and ARGV[5] (game ttl ms): a game
-- with traffic is not idle.
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-1', 'e', ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
if KEYS[5] then
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
end
redis.call(ARGV[4], KEYS[3], seq .. ' ' .. ARGV[1])
return seq
