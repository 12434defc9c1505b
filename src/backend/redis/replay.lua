-- Logged events after a cursor, at most ARGV[2] (the newest ones if more).
-- KEYS[1] position hash {seq, epoch}, KEYS[2] log stream, KEYS[3] (optional) the
-- user's delivery watermark ("<seq> <epoch>" or a bare seq), read as the cursor when
-- ARGV[1] is '': a login's watermark and replay in one round trip.
-- ARGV[1] cursor seq, ARGV[2] limit (0: head and epoch only), ARGV[3] cursor epoch
-- ('' unknown: taken as current), ARGV[4] ttl ms
-- A topic without an epoch gets one now, so a joiner learns the epoch its later
-- messages carry. A cursor from another epoch replays the log from its start.
-- Returns {head, epoch, reset, cursor seq, cursor epoch, id, event JSON, id, event JSON,
-- ...} in seq order (ids are `<seq>-1`).
local cursor, cursor_epoch = ARGV[1], ARGV[3]
if cursor == '' then
  cursor, cursor_epoch = '0', ''
  local mark = KEYS[3] and redis.call('GET', KEYS[3])
  if mark then
    local seq, ep = string.match(mark, '^(%d+) (.*)$')
    if seq then
      cursor, cursor_epoch = seq, ep
    else
      cursor = string.match(mark, '^%d+$') or '0'
    end
  end
end
local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local t = redis.call('TIME')
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
local after = tonumber(cursor)
local reset = 0
if cursor_epoch ~= '' and cursor_epoch ~= epoch then
  after = 0
  reset = 1
end
local out = {head, epoch, reset, tonumber(cursor), cursor_epoch}
if after >= head or ARGV[2] == '0' then
  return out
end
local entries = redis.call('XREVRANGE', KEYS[2], '+', (after + 1) .. '-0', 'COUNT', ARGV[2])
for i = #entries, 1, -1 do
  out[#out + 1] = entries[i][1]
  out[#out + 1] = entries[i][2][2]
end
return out
