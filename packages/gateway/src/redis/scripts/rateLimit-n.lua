--[[
  One rate-limit decision covering every limit of a route, atomically, on
  Redis's own clock (TIME), so no gateway clock can bend a limit. The number
  of keys varies with the route (`-n`): the caller passes it first (ioredis
  `defineCommand` without `numberOfKeys`).

  KEYS[i]            the state of limit i: a string (gcra: the theoretical arrival
                     time, epoch ms) or a sorted set (sliding-window: one member per
                     admitted request, scored by its epoch ms)
  ARGV[1]            a member unique to this request (sliding-window entries)
  ARGV[2 + 3(i-1)]   the algorithm of limit i: "gcra" | "sliding-window"
  ARGV[3 + 3(i-1)]   limit i: requests per window (integer >= 1)
  ARGV[4 + 3(i-1)]   the window of limit i, in milliseconds

  Returns { allowed, remaining1, reset1, retry1, remaining2, ... }:
    allowed     1 when every limit admits the request, and then each limit is
                charged; 0 when any refuses, and then none is charged
    remainingi  requests limit i still admits after this one
    reseti      milliseconds until limit i is back to its full quota
    retryi      milliseconds until limit i admits a request (0 when it admits this one)
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local allowed = 1
local results = {}
local commit = {}

for i = 1, #KEYS do
  local base = 3 * (i - 1)
  local alg = ARGV[base + 2]
  local limit = tonumber(ARGV[base + 3])
  local window = tonumber(ARGV[base + 4])
  local remaining, reset, retry
  if alg == 'gcra' then
    -- GCRA: one request every `interval`, with a burst of `limit` (tau = window - interval).
    local interval = window / limit
    local tat = tonumber(redis.call('GET', KEYS[i])) or now
    if tat < now then tat = now end
    local newTat = tat + interval
    local slack = now - (newTat - window)
    -- A millionth of an interval absorbs float rounding in the additions.
    if slack < -interval * 1e-6 then
      allowed = 0
      remaining = 0
      retry = -slack
      reset = tat - now
    else
      remaining = math.floor(slack / interval + 1e-6)
      reset = newTat - now
      retry = 0
      commit[i] = newTat
    end
  else
    -- Sliding log: the requests admitted in (now - window, now].
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%.17g', now - window))
    local count = redis.call('ZCARD', KEYS[i])
    if count >= limit then
      allowed = 0
      remaining = 0
      -- A slot frees when the entry `count - limit` (0-based, oldest first) leaves the window.
      local freeing = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
      local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
      retry = tonumber(freeing[2]) + window - now
      reset = tonumber(newest[2]) + window - now
    else
      remaining = limit - count - 1
      reset = window
      retry = 0
      commit[i] = true
    end
  end
  results[#results + 1] = remaining
  results[#results + 1] = math.max(0, math.ceil(reset))
  results[#results + 1] = math.max(0, math.ceil(retry))
end

if allowed == 1 then
  for i = 1, #KEYS do
    local base = 3 * (i - 1)
    local window = tonumber(ARGV[base + 4])
    if ARGV[base + 2] == 'gcra' then
      redis.call('SET', KEYS[i], string.format('%.17g', commit[i]), 'PX', math.max(1, math.ceil(commit[i] - now)))
    else
      redis.call('ZADD', KEYS[i], string.format('%.17g', now), ARGV[1])
      redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(window)))
    end
  end
end

table.insert(results, 1, allowed)
return results
