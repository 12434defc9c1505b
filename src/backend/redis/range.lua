-- Logged events with ARGV[1] <= seq <= ARGV[2] (a gap to fill), oldest first.
-- KEYS[1] log stream. Returns {id, event JSON, id, event JSON, ...}.
local out = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', ARGV[2] .. '-1')) do
  out[#out + 1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
