--[[
  Closes a shared circuit breaker after a successful probe (PRODUCT §4.4) and
  tells every gateway instance. A close for an older opening (another instance
  opened it again since) changes nothing.

  KEYS[1]  the breaker hash (see breakerOpen-1.lua)
  ARGV[1]  the opening (gen) the probe belonged to
  ARGV[2]  the instance id closing it
  ARGV[3]  the breaker channel (PUBLISH)
  ARGV[4]  the breaker id (named in the message)
  ARGV[5]  how long the hash outlives its last change, in milliseconds

  Returns { closed, gen }: closed is 1 when closed (or already closed), 0 when
  a newer opening stands (gen is then its generation).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') or 0
if gen > tonumber(ARGV[1]) then
  return { 0, gen }
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'gen', gen, 'probeUntil', 0, 'by', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[3], cjson.encode({ id = ARGV[4], state = 'closed', gen = gen, openUntil = 0, now = now, by = ARGV[2] }))
return { 1, gen }
