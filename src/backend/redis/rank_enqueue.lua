-- Queues a player once per user. KEYS[1] players hash (user -> "<rating> <since ms>
-- <session>"), KEYS[2] queue version (bumped by every change, so a matcher that saw it
-- unchanged knows its last read of the queue still holds), KEYS[3] change log;
-- ARGV[1] user, ARGV[2] rating, ARGV[3] now ms, ARGV[4] session. Returns 1 if queued
-- now, 0 if already queued.
-- Changes go through bump() (rank_bump.lua, put in front of this script).
local entry = ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4]
if redis.call('HSETNX', KEYS[1], ARGV[1], entry) == 0 then
  return 0
end
bump(KEYS[2], KEYS[3], '+' .. ARGV[1] .. ' ' .. entry)
return 1
