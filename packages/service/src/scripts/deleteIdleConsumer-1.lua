--[[
  Deletes a consumer from its group only if it holds no pending entry, so that
  replicas that come and go do not pile up in XINFO CONSUMERS, and so that no
  pending entry is ever dropped (XGROUP DELCONSUMER discards the consumer's PEL).

  KEYS[1] the stream
  ARGV[1] the group
  ARGV[2] the consumer

  Returns 1 when deleted, 0 when the consumer still holds pending entries.
]]
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
