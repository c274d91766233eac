--[[
  Stores a cache entry, indexes it under its tags, gives back the fill lease
  when the caller holds it, and tells waiting instances - all in one step, so
  that an invalidation can never fall between the entry and its tags.

  The number of keys varies with the number of tags (ioredis defineCommand
  without numberOfKeys: the caller passes numkeys), hence the -n suffix.

  KEYS[1]     the entry (HASH)
  KEYS[2]     the entry's fill lease
  KEYS[3..n]  the entry's tags: ZSETs of entry keys scored by expiry time (ms)
  ARGV[1]     the caller's lease token ('' : none)
  ARGV[2]     status
  ARGV[3]     headers (JSON)
  ARGV[4]     body (bytes)
  ARGV[5]     ttl, ARGV[6] swr, ARGV[7] sie (milliseconds)
  ARGV[8]     tags (JSON array)
  ARGV[9]     the fill channel
  ARGV[10]    the fill message

  Returns the entry's lifetime in milliseconds (ttl + the longer grace window).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local life = tonumber(ARGV[5]) + math.max(tonumber(ARGV[6]), tonumber(ARGV[7]))

redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'headers', ARGV[3], 'body', ARGV[4], 'storedAt', now,
  'ttl', ARGV[5], 'swr', ARGV[6], 'sie', ARGV[7], 'tags', ARGV[8])
redis.call('PEXPIRE', KEYS[1], life)

for i = 3, #KEYS do
  -- Expired members are pruned as the tag is used, so a busy tag does not grow without bound.
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + life, KEYS[1])
  if redis.call('PTTL', KEYS[i]) < life then redis.call('PEXPIRE', KEYS[i], life) end
end

if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', ARGV[9], ARGV[10])
return life
