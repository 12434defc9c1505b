-- Raises a user's direct-message delivery watermark `<seq> <epoch>` (never lowers it,
-- never past the DM log's head), and keeps the log's position as long as the watermark:
-- a position that expired would start a new epoch and replay everything.
-- KEYS[1] watermark key, KEYS[2] the user's DM position hash {seq, epoch}
-- ARGV[1] seq, ARGV[2] ttl ms, ARGV[3] the epoch of that seq
local head = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch or (ARGV[3] ~= '' and ARGV[3] ~= epoch) then
  -- A mark for a log that is gone or was reset since.
  return 0
end
local current = 0
local saved = redis.call('GET', KEYS[1])
if saved then
  local s, e = string.match(saved, '^(%d+) (.*)$')
  if s and e == epoch then current = tonumber(s) end
end
local seq = math.min(tonumber(ARGV[1]), head)
if current > head then current = head end
redis.call('SET', KEYS[1], math.max(seq, current) .. ' ' .. epoch, 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 0
