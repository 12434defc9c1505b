-- Raises a user's direct-message delivery watermark (never lowers it, never past the
-- DM seq counter), and keeps the counter alive as long as the watermark: a counter that
-- expired and restarted below the watermark would hide every new DM.
-- KEYS[1] watermark key, KEYS[2] the user's DM seq counter; ARGV[1] seq, ARGV[2] ttl ms
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local seq = math.min(tonumber(ARGV[1]), head)
if current > head then current = head end
redis.call('SET', KEYS[1], math.max(seq, current), 'PX', ARGV[2])
if head > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 0
