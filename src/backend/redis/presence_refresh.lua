-- Refreshes a chunk of this replica's sessions and room memberships in one call, as
-- session_add + online_touch and room_join + the user's room set would one by one.
-- Single-node Redis only: in Cluster mode the keys span slots and entries go one by one.
-- KEYS[1..3] online expiry zset, lexical zset, names hash; then one key per session (the
-- user's sessions zset); then four per membership (the user's sessions in the room, the
-- room's users, the room's log position, the user's room set).
-- ARGV[1] now ms, ARGV[2] expiry ms, ARGV[3] key ttl ms, ARGV[4] history ttl ms,
-- ARGV[5] number of sessions; then session, user, name per session; then session,
-- user, room per membership.
local now, expiry, ttl, history = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local k, a = 4, 6
for _ = 1, tonumber(ARGV[5]) do
  local session, user, name = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
  redis.call('ZADD', KEYS[k], expiry, session)
  redis.call('PEXPIRE', KEYS[k], ttl)
  redis.call('ZADD', KEYS[1], 'GT', expiry, user)
  redis.call('ZADD', KEYS[2], 0, user)
  redis.call('HSETNX', KEYS[3], user, name)
  k, a = k + 1, a + 3
end
while a <= #ARGV do
  local session, user, room = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
  redis.call('ZADD', KEYS[k], expiry, session)
  redis.call('PEXPIRE', KEYS[k], ttl)
  redis.call('ZADD', KEYS[k + 1], 'GT', expiry, user)
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now)
  redis.call('PEXPIRE', KEYS[k + 1], ttl)
  redis.call('PEXPIRE', KEYS[k + 2], history)
  redis.call('SADD', KEYS[k + 3], room)
  redis.call('PEXPIRE', KEYS[k + 3], ttl)
  k, a = k + 4, a + 3
end
return 0
