-- Assigns the topic's next seq, appends the event to its bounded log and publishes it,
-- atomically, so channel order equals seq order on every replica.
-- KEYS[1] seq counter, KEYS[2] log stream
-- ARGV[1] channel, ARGV[2] event JSON, ARGV[3] max log length (0: no log), ARGV[4] ttl ms
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-1', 'e', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', ARGV[1], seq .. ' ' .. ARGV[2])
return seq
