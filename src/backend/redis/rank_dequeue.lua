-- Removes a player; with ARGV[2] ~= '', only if that session queued them.
-- KEYS[1] players hash, KEYS[2] queue version, KEYS[3] change log; ARGV[1] user,
-- ARGV[2] session.
-- Returns 1 if removed.
-- Changes go through bump() (rank_bump.lua, put in front of this script).
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
if ARGV[2] ~= '' and string.match(entry, '^%S+ %d+ (.*)$') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
bump(KEYS[2], KEYS[3], '-' .. ARGV[1])
return 1
