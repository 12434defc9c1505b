-- Logged events with seq > ARGV[1], at most ARGV[2] (the newest ones if more).
-- KEYS[1] seq counter, KEYS[2] log stream
-- Returns {head, id, event JSON, id, event JSON, ...} in seq order (ids are `<seq>-1`).
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
local out = {head}
if after >= head then
  return out
end
local entries = redis.call('XREVRANGE', KEYS[2], '+', (after + 1) .. '-0', 'COUNT', ARGV[2])
for i = #entries, 1, -1 do
  out[#out + 1] = entries[i][1]
  out[#out + 1] = entries[i][2][2]
end
return out
