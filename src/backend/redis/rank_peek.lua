-- The start of a matcher run, one round trip: claims the run for this tick (when ARGV[2]
-- > 0: SET NX PX, so one replica runs the matcher per tick, whoever asks first) and says
-- whether the queue changed and whether a pending match's lease ran out.
-- KEYS[1] players hash, KEYS[2] queue version, KEYS[3] pending zset, KEYS[4] run lease;
-- ARGV[1] replica id, ARGV[2] run lease ms (0: no lease).
-- Returns {claimed 0/1, version, queued, pending, earliest lease deadline ms or -1}.
local claimed = 1
if tonumber(ARGV[2]) > 0 then
  if not redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[2]) then claimed = 0 end
end
-- A missing version starts at the Redis clock in µs (see rank_enqueue.lua).
local version = redis.call('GET', KEYS[2])
if not version then
  local t = redis.call('TIME')
  version = t[1] .. string.format('%06d', t[2])
  redis.call('SET', KEYS[2], version)
end
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
return {claimed, tonumber(version), redis.call('HLEN', KEYS[1]),
  redis.call('ZCARD', KEYS[3]), tonumber(first[2] or '-1')}
