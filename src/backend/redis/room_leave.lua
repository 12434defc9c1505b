-- Takes a session out of a room. Returns {1 if it was the user's last live session, users}.
-- KEYS[1] the user's sessions in the room, KEYS[2] the room's users
-- ARGV[1] session, ARGV[2] user, ARGV[3] now ms
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local left = redis.call('ZCARD', KEYS[1])
local last = 0
if left == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
  if removed == 1 then last = 1 end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
return {last, redis.call('ZCARD', KEYS[2])}
