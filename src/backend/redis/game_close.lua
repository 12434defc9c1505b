-- Deletes a game; only the caller that finds it gets 'ok' (one game.closed per game).
-- KEYS[1] state hash, KEYS[2] watchers set, KEYS[3], KEYS[4] the game log's position and
-- stream. Returns {status, owner, opponent, started, 0, watchers}.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found', '', '', 0, 0, 0} end
local s = redis.call('HMGET', KEYS[1], 'owner', 'opponent', 'started')
local watchers = redis.call('SCARD', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {'ok', s[1] or '', s[2] or '', tonumber(s[3] or '0'), 0, watchers}
