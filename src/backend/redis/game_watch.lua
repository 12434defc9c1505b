-- Adds a watcher. KEYS[1] state hash, KEYS[2] watchers set
-- ARGV[1] user, ARGV[2] limit, ARGV[3] ttl ms ('' to only read the state)
-- Returns {status, owner, opponent, started, 0, watchers}.
local function reply(status)
  local s = redis.call('HMGET', KEYS[1], 'owner', 'opponent', 'started')
  return {status, s[1] or '', s[2] or '', tonumber(s[3] or '0'), 0, redis.call('SCARD', KEYS[2])}
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found', '', '', 0, 0, 0} end
if ARGV[3] == '' then return reply('ok') end
local g = redis.call('HMGET', KEYS[1], 'owner', 'opponent')
if ARGV[1] == g[1] or ARGV[1] == g[2] then return reply('conflict') end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0
    and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[2]) then
  return reply('room_full')
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return reply('ok')
