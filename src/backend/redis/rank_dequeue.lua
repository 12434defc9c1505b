-- Removes a player; with ARGV[2] ~= '', only if that session queued them.
-- KEYS[1] queue zset, KEYS[2] meta hash; ARGV[1] user, ARGV[2] session. Returns 1 if removed.
local meta = redis.call('HGET', KEYS[2], ARGV[1])
if not meta then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
if ARGV[2] ~= '' and string.match(meta, '^%d+ (.*)$') ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
