-- Takes the free seat, or the caller's own seat (away or held by another device).
-- KEYS[1] state hash, KEYS[2] watchers set; ARGV[1] user, ARGV[2] ttl ms
-- Returns {status, owner, opponent, started, starts, watchers}; status ok, not_found,
-- room_full or conflict.
local function reply(status, starts)
  local s = redis.call('HMGET', KEYS[1], 'owner', 'opponent', 'started')
  return {status, s[1] or '', s[2] or '', tonumber(s[3] or '0'), starts, redis.call('SCARD', KEYS[2])}
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found', '', '', 0, 0, 0} end
local g = redis.call('HMGET', KEYS[1], 'owner', 'opponent', 'started', 'owner_away', 'opponent_away')
local owner, opponent = g[1], g[2]
if ARGV[1] == owner then
  redis.call('HSET', KEYS[1], 'owner_away', 0)
elseif ARGV[1] == opponent then
  redis.call('HSET', KEYS[1], 'opponent_away', 0)
elseif opponent == '' then
  redis.call('HSET', KEYS[1], 'opponent', ARGV[1], 'opponent_away', 0)
  redis.call('SREM', KEYS[2], ARGV[1])
else
  return reply('room_full', 0)
end
local now = redis.call('HMGET', KEYS[1], 'opponent', 'started', 'owner_away', 'opponent_away')
local starts = 0
if now[1] ~= '' and now[2] == '0' and now[3] == '0' and now[4] == '0' then
  redis.call('HSET', KEYS[1], 'started', 1)
  starts = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return reply('ok', starts)
