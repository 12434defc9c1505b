-- Raises a user's direct-message delivery watermark (never lowers it).
-- KEYS[1] watermark key; ARGV[1] seq, ARGV[2] ttl ms
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = tonumber(ARGV[1])
if seq > current then
  redis.call('SET', KEYS[1], seq, 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
