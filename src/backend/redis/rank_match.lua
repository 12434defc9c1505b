-- The ranked matcher, one call per run, atomic, so any number of replicas may run it at
-- once and nobody is matched twice. Mirrors src/matchmaking.rs step for step: the queue
-- in rating order (ZRANGE: score, then member bytes), one dynamic-programming pass for
-- the most pairs of neighbours whose gap fits both windows, then the smallest total gap,
-- then the longest total wait; only pairs whose players have both settled are taken.
-- Taken pairs become pending matches leased to the caller; pending matches whose lease
-- ran out (their replica died or stalled) are leased to the caller again.
-- KEYS[1] queue zset (user -> rating), KEYS[2] meta hash (user -> "<since> <session>"),
-- KEYS[3] pending zset (room -> lease deadline ms), KEYS[4] matches hash (room -> record)
-- ARGV[1] now ms, ARGV[2] window, ARGV[3] widen/s, ARGV[4] max window, ARGV[5] settle ms,
-- ARGV[6] room prefix (the kth new room is the prefix and k in 8 hex digits), ARGV[7] lease ms, ARGV[8] drop players queued before (ms),
-- ARGV[9] most expired matches to take over.
-- A record is "<room> <a> <a rating> <a since> <b> <b rating> <b since> <made ms>".
-- Returns {queued, pending, new count, record, record, ...} (new ones first).
local now, base, widen, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local settle, prefix, lease = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local drop_before, reclaim = tonumber(ARGV[8]), tonumber(ARGV[9])

local recovered = {}
for _, room in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, reclaim)) do
  local record = redis.call('HGET', KEYS[4], room)
  if record then
    redis.call('ZADD', KEYS[3], now + lease, room)
    recovered[#recovered + 1] = record
  else
    redis.call('ZREM', KEYS[3], room)
  end
end

local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local users, ratings, sinces = {}, {}, {}
local CHUNK = 1000
for first = 1, #entries, 2 * CHUNK do
  local names = {}
  for i = first, math.min(#entries, first + 2 * CHUNK - 1), 2 do
    names[#names + 1] = entries[i]
  end
  local metas = redis.call('HMGET', KEYS[2], unpack(names))
  for j, user in ipairs(names) do
    local since = tonumber(string.match(metas[j] or '', '^(%d+)')) or 0
    if since < drop_before then
      redis.call('ZREM', KEYS[1], user)
      redis.call('HDEL', KEYS[2], user)
    else
      local n = #users + 1
      users[n], ratings[n], sinces[n] = user, tonumber(entries[first + 2 * (j - 1) + 1]), since
    end
  end
end

local function window(since)
  local w = base + widen * math.max(0, now - since) / 1000
  if w > cap then w = cap end
  return w
end
-- best over the first k players: pairs, total gap, total wait; paired[k]: the (k-1)th
-- and kth pair up.
local n = #users
local bp, bg, bw, paired = {[0] = 0, [1] = 0}, {[0] = 0, [1] = 0}, {[0] = 0, [1] = 0}, {}
for k = 2, n do
  bp[k], bg[k], bw[k] = bp[k - 1], bg[k - 1], bw[k - 1]
  local a, b = k - 1, k
  local gap = math.abs(ratings[a] - ratings[b])
  if gap <= window(sinces[a]) and gap <= window(sinces[b]) then
    local tp = bp[k - 2] + 1
    local tg = bg[k - 2] + gap
    local tw = bw[k - 2] + math.max(0, now - sinces[a]) + math.max(0, now - sinces[b])
    local better = tp > bp[k] or (tp == bp[k] and (tg < bg[k] or (tg == bg[k] and tw > bw[k])))
    if better then
      bp[k], bg[k], bw[k], paired[k] = tp, tg, tw, true
    end
  end
end
local chosen = {}
local k = n
while k >= 2 do
  if paired[k] then
    local a, b = k - 1, k
    if math.max(0, now - sinces[a]) >= settle and math.max(0, now - sinces[b]) >= settle then
      chosen[#chosen + 1] = a
    end
    k = k - 2
  else
    k = k - 1
  end
end

local out = {0, 0, #chosen}
local taken, records, leases = {}, {}, {}
local made = 0
for i = #chosen, 1, -1 do
  local a = chosen[i]
  local b = a + 1
  -- The first seat: the lower rating, then who queued first.
  if ratings[a] == ratings[b] and sinces[b] < sinces[a] then a, b = b, a end
  made = made + 1
  local room = prefix .. string.format('%08x', made)
  local record = table.concat({room, users[a], ratings[a], sinces[a], users[b], ratings[b],
    sinces[b], now}, ' ')
  taken[#taken + 1], taken[#taken + 2] = users[a], users[b]
  records[#records + 1], records[#records + 2] = room, record
  leases[#leases + 1], leases[#leases + 2] = now + lease, room
  out[#out + 1] = record
end
-- Batched writes, in chunks that fit Lua's argument limit.
local function each_chunk(list, step, fn)
  for first = 1, #list, step do
    fn(unpack(list, first, math.min(#list, first + step - 1)))
  end
end
each_chunk(taken, CHUNK, function(...) redis.call('ZREM', KEYS[1], ...) end)
each_chunk(taken, CHUNK, function(...) redis.call('HDEL', KEYS[2], ...) end)
each_chunk(records, CHUNK, function(...) redis.call('HSET', KEYS[4], ...) end)
each_chunk(leases, CHUNK, function(...) redis.call('ZADD', KEYS[3], ...) end)
for _, record in ipairs(recovered) do out[#out + 1] = record end
out[1] = redis.call('ZCARD', KEYS[1])
out[2] = redis.call('ZCARD', KEYS[3])
return out
