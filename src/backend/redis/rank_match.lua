-- The ranked matcher, atomic, so any number of replicas may run it at once and nobody
-- is matched twice. Mirrors src/matchmaking.rs: neighbours in rating order whose gap fits
-- both players' windows (base + widen * waited s, capped) pair up, closest gap first,
-- ties to whoever waited longest; rounds repeat because taking a pair makes neighbours.
-- KEYS[1] queue zset, KEYS[2] meta hash; ARGV[1] now ms, ARGV[2] window, ARGV[3] widen/s,
-- ARGV[4] max window. Returns {user, rating, since, user, rating, since, ...} per pair.
local now, base, widen, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local left = {}
for i = 1, #entries, 2 do
  local meta = redis.call('HGET', KEYS[2], entries[i]) or '0 '
  left[#left + 1] = {user = entries[i], rating = tonumber(entries[i + 1]),
    since = tonumber(string.match(meta, '^(%d+)')) or 0}
end
table.sort(left, function(a, b)
  if a.rating ~= b.rating then return a.rating < b.rating end
  return a.since < b.since
end)
local function window(p)
  local w = base + widen * math.max(0, now - p.since) / 1000
  if w > cap then w = cap end
  return w
end
local out = {}
while true do
  local cands = {}
  for i = 1, #left - 1 do
    local a, b = left[i], left[i + 1]
    local gap = math.abs(a.rating - b.rating)
    if gap <= window(a) and gap <= window(b) then
      cands[#cands + 1] = {gap = gap, oldest = math.min(a.since, b.since), pos = i}
    end
  end
  if #cands == 0 then break end
  table.sort(cands, function(x, y)
    if x.gap ~= y.gap then return x.gap < y.gap end
    if x.oldest ~= y.oldest then return x.oldest < y.oldest end
    return x.pos < y.pos
  end)
  local used = {}
  for _, c in ipairs(cands) do
    if not used[c.pos] and not used[c.pos + 1] then
      used[c.pos], used[c.pos + 1] = true, true
      for _, p in ipairs({left[c.pos], left[c.pos + 1]}) do
        redis.call('ZREM', KEYS[1], p.user)
        redis.call('HDEL', KEYS[2], p.user)
        out[#out + 1] = p.user
        out[#out + 1] = tostring(p.rating)
        out[#out + 1] = tostring(p.since)
      end
    end
  end
  local rest = {}
  for i, p in ipairs(left) do
    if not used[i] then rest[#rest + 1] = p end
  end
  left = rest
end
return out
