-- Takes the pairs a replica chose (with matchmaking::pair, from one read of the queue)
-- into pending matches, so any number of replicas may race. If the queue version is
-- still the one the replica's read carries, nothing changed since and the pairs are
-- taken as they are; else each pair is checked: both players still queued with exactly
-- the entry the replica read (same rating, since and session), nobody taken twice.
-- (The pair fitting and both being settled follow from those entries and `now`: the
-- replica computed them with the shared rule.) Entries the replica found orphaned are
-- dropped under the same check. Pending matches whose lease ran out (their replica died
-- or stalled) are leased to the caller again.
-- KEYS[1] players hash (user -> "<rating> <since ms> <session>"), KEYS[2] queue version,
-- KEYS[3] pending zset (room -> lease deadline ms), KEYS[4] matches hash (room -> record),
-- KEYS[5] change log (see rank_enqueue.lua)
-- ARGV[1] now ms, ARGV[2] lease deadline ms, ARGV[3] drop players queued before (ms),
-- ARGV[4] most expired matches to take over, ARGV[5] version read (-1: none),
-- ARGV[6] D: entries to drop; then D times <user> <entry>; then the pairs, each as
-- <room> <a> <a entry> <b> <b entry> <record>, a record being
-- "<room> <a> <a rating> <a since> <b> <b rating> <b since> <made ms>".
-- Returns {queued, pending, taken flags ('1'/'0' per pair), version, taken-over record...}.
local now, deadline, drop_before = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local reclaim, drops = tonumber(ARGV[4]), tonumber(ARGV[6])
local unchanged = tonumber(redis.call('GET', KEYS[2]) or '0') == tonumber(ARGV[5])
local CHUNK = 1000
-- Changes go through bump() (rank_bump.lua, put in front of this script).

local recovered = {}
for _, room in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, reclaim)) do
  local record = redis.call('HGET', KEYS[4], room)
  if record then
    redis.call('ZADD', KEYS[3], deadline, room)
    recovered[#recovered + 1] = record
  else
    redis.call('ZREM', KEYS[3], room)
  end
end

local removed = {}
for i = 7, 6 + 2 * drops, 2 do
  local entry = ARGV[i + 1]
  local since = tonumber(string.match(entry, '^%S+ (%d+)'))
  if since and since < drop_before and redis.call('HGET', KEYS[1], ARGV[i]) == entry then
    removed[#removed + 1] = ARGV[i]
  end
end

local flags, records, leases = {}, {}, {}
local function take(i)
  removed[#removed + 1], removed[#removed + 2] = ARGV[i + 1], ARGV[i + 3]
  records[#records + 1], records[#records + 2] = ARGV[i], ARGV[i + 5]
  leases[#leases + 1], leases[#leases + 2] = deadline, ARGV[i]
  flags[#flags + 1] = '1'
end
local first_pair = 7 + 2 * drops
if unchanged then
  for i = first_pair, #ARGV, 6 do take(i) end
else
  local seen = {}
  for first = first_pair, #ARGV, 6 * CHUNK do
    local last = math.min(#ARGV, first + 6 * CHUNK - 1)
    local names = {}
    for i = first, last, 6 do
      names[#names + 1], names[#names + 2] = ARGV[i + 1], ARGV[i + 3]
    end
    local entries = redis.call('HMGET', KEYS[1], unpack(names))
    local j = 0
    for i = first, last, 6 do
      local a, b = ARGV[i + 1], ARGV[i + 3]
      j = j + 2
      if entries[j - 1] == ARGV[i + 2] and entries[j] == ARGV[i + 4]
        and not seen[a] and not seen[b] and a ~= b then
        seen[a], seen[b] = true, true
        take(i)
      else
        flags[#flags + 1] = '0'
      end
    end
  end
end
-- Batched writes, in chunks that fit Lua's argument limit.
local function each_chunk(list, step, fn)
  for first = 1, #list, step do
    fn(unpack(list, first, math.min(#list, first + step - 1)))
  end
end
each_chunk(removed, CHUNK, function(...) redis.call('HDEL', KEYS[1], ...) end)
each_chunk(records, CHUNK, function(...) redis.call('HSET', KEYS[4], ...) end)
each_chunk(leases, CHUNK, function(...) redis.call('ZADD', KEYS[3], ...) end)
local version = tonumber(redis.call('GET', KEYS[2]) or '0')
if #removed > 0 then version = bump(KEYS[2], KEYS[5], '-' .. table.concat(removed, ' ')) end
local out = {redis.call('HLEN', KEYS[1]), redis.call('ZCARD', KEYS[3]), table.concat(flags), version}
for _, record in ipairs(recovered) do out[#out + 1] = record end
return out
