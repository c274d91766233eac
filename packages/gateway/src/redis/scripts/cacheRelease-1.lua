--[[
  Gives back a fill lease without storing anything (the response could not be
  cached, or the upstream failed) and tells the instances waiting for it to go
  upstream themselves. Only the lease's holder can release it.

  KEYS[1] the fill lease
  ARGV[1] the caller's lease token
  ARGV[2] the fill channel
  ARGV[3] the fill message

  Returns 1 when released, 0 when the lease was not the caller's (it expired or another caller took it).
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
