--[[
  Asks for the one half-open probe of a shared circuit breaker (PRODUCT §4.4):
  exactly one instance of the cluster gets it, for `leaseMs` (after which,
  say if that instance died, another may probe).

  KEYS[1]  the breaker hash (see breakerOpen-1.lua)
  ARGV[1]  the lease, in milliseconds (the service timeout and a margin)
  ARGV[2]  the instance id asking
  ARGV[3]  the breaker channel (PUBLISH)
  ARGV[4]  the breaker id (named in the message)
  ARGV[5]  how long the hash outlives its last change, in milliseconds

  Returns { verdict, gen, deadline, now }:
    verdict 1  granted: this instance probes, until `deadline` (epoch ms)
            0  refused: still open until `deadline`
            3  refused: another instance is probing, until `deadline` at the latest
            2  the breaker is closed: call the service normally
    A breaker Redis does not know (its data was lost) is granted, as an expired open one.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state')
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0') or 0
if state == 'closed' then
  return { 2, gen, 0, now }
end
local deadline = 0
if state == 'open' then
  deadline = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0') or 0
elseif state == 'half-open' and redis.call('HGET', KEYS[1], 'by') ~= ARGV[2] then
  -- Another instance's lease; this instance's own (its probe ended without a verdict) is renewed.
  deadline = tonumber(redis.call('HGET', KEYS[1], 'probeUntil') or '0') or 0
end
if deadline > now then
  if state == 'open' then return { 0, gen, deadline, now } end
  return { 3, gen, deadline, now }
end
local lease = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'half-open', 'probeUntil', lease, 'by', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[3], cjson.encode({ id = ARGV[4], state = 'half-open', gen = gen, openUntil = lease, now = now, by = ARGV[2] }))
return { 1, gen, lease, now }
