--[[
  Reads a cache entry and, when it is missing or stale, tries to take its fill
  lease in the same step: of all the instances that miss one key at once,
  exactly one goes upstream. Freshness is judged on Redis's clock (TIME), like
  the lease, so clock skew between gateway machines cannot bend a TTL.

  KEYS[1] the entry: a HASH of status, headers, body, storedAt, ttl, swr, sie, tags
  KEYS[2] the entry's fill lease
  ARGV[1] a lease token for this caller ('' : do not try to take the lease)
  ARGV[2] the lease length in milliseconds

  Returns { state, ageMs, lease [, status, headers, body, ttl, swr, sie, tags] }
    state  0 missing, 1 fresh, 2 stale (the entry's fields follow for 1 and 2)
    lease  1 taken by this call, 0 held by another caller, -1 not tried
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local e = redis.call('HMGET', KEYS[1], 'status', 'headers', 'body', 'storedAt', 'ttl', 'swr', 'sie', 'tags')

local function lease ()
  if ARGV[1] == '' then return -1 end
  if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
  return 0
end

if not e[1] or not e[4] or not e[5] then
  return { 0, 0, lease() }
end
local age = now - tonumber(e[4])
if age < 0 then age = 0 end
if age < tonumber(e[5]) then
  return { 1, age, -1, e[1], e[2], e[3], e[5], e[6], e[7], e[8] }
end
return { 2, age, lease(), e[1], e[2], e[3], e[5], e[6], e[7], e[8] }
