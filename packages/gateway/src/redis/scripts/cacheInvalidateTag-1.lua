--[[
  Deletes every cache entry carrying a tag, then the tag itself.

  KEYS[1] the tag: a ZSET of entry keys (scored by expiry time)

  Returns the number of entries deleted.
]]
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local n = 0
for i = 1, #members, 500 do
  n = n + redis.call('DEL', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('DEL', KEYS[1])
return n
