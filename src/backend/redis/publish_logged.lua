-- Assigns the topic's next seq, appends the event to its bounded log and publishes it,
-- atomically, so channel order equals seq order on every replica.
-- KEYS[1] position hash {seq, epoch}, KEYS[2] log stream, KEYS[3] channel (same slot:
-- sharded pub/sub), KEYS[4] the client's message id key (KEYS[1] again when none)
-- ARGV[1] event JSON, ARGV[2] max log length (0: no log), ARGV[3] ttl ms,
-- ARGV[4] 'PUBLISH' or 'SPUBLISH', ARGV[5] message id ttl ms ('0': no message id)
-- Games also pass KEYS[5], KEYS[6] (state, watchers) and ARGV[6] (game ttl ms): a game
-- with traffic is not idle.
-- A position hash that is gone (Redis restarted empty, the topic expired) starts a new
-- epoch: its seqs restart at 1 and every reader can tell.
-- Returns {seq, epoch, 1 if the message id was logged before (nothing stored) else 0}.
if ARGV[5] ~= '0' then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    local seq, epoch = string.match(seen, '^(%d+) (.*)$')
    return {tonumber(seq), epoch, 1}
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local t = redis.call('TIME')
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if seq == 1 then
  -- Entries left from an earlier epoch would refuse the new ids.
  redis.call('DEL', KEYS[2])
end
if tonumber(ARGV[2]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-1', 'e', ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
if ARGV[5] ~= '0' then
  redis.call('SET', KEYS[4], seq .. ' ' .. epoch, 'PX', ARGV[5])
end
if KEYS[6] then
  redis.call('PEXPIRE', KEYS[5], ARGV[6])
  redis.call('PEXPIRE', KEYS[6], ARGV[6])
end
redis.call(ARGV[4], KEYS[3], seq .. ' ' .. epoch .. ' ' .. ARGV[1])
return {seq, epoch, 0}
