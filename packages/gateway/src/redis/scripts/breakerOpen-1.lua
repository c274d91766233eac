--[[
  Opens a shared circuit breaker (PRODUCT §4.4) on Redis's clock, unless it is
  already open, and tells every gateway instance on the breaker channel.

  KEYS[1]  the breaker hash: state ("open" | "half-open" | "closed"), gen (the
           opening: Redis ms, increasing), openUntil (epoch ms), openedAt, by, probeUntil
  ARGV[1]  how long it stays open, in milliseconds
  ARGV[2]  the instance id opening it
  ARGV[3]  the breaker channel (PUBLISH)
  ARGV[4]  the breaker id (named in the message)
  ARGV[5]  how long the hash outlives its last change, in milliseconds

  Returns { opened, gen, openUntil, now }: opened is 1 when this call opened
  it, 0 when it was open already (then gen and openUntil are the current ones).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state')
local deadline = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0') or 0
if state == 'open' and deadline > now then
  local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') or 0
  return { 0, gen, deadline, now }
end
-- The generation is Redis's clock (kept increasing): it stays ahead of older openings even
-- when Redis lost its data and restarted.
local gen = math.max(now, (tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') or 0) + 1)
deadline = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'open', 'gen', gen, 'openUntil', deadline, 'openedAt', now, 'by', ARGV[2], 'probeUntil', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[3], cjson.encode({ id = ARGV[4], state = 'open', gen = gen, openUntil = deadline, now = now, by = ARGV[2] }))
return { 1, gen, deadline, now }
