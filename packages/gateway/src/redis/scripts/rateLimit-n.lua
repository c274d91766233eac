--[[
  Rate-limit decisions, one after the other in one atomic call, on Redis's own
  clock (TIME), so no gateway clock can bend a limit. Each decision covers every
  limit of one request's route: either every limit admits the request and each
  is charged, or it is refused and none is charged. A gateway sends the
  decisions of the requests that arrived in the same event-loop turn together
  (RedisStore in policies/rate-limit/redis-store.ts); a later decision in the
  call sees what an earlier one charged, exactly as if each were its own call.
  The number of keys varies (`-n`): the caller passes it first.

  KEYS               every state key the call uses, each once: a string (gcra:
                     "<stamp> <offset>", the theoretical arrival time as
                     `offset` ms after `stamp`, the Redis TIME it was written at
                     in integer microseconds) or a sorted set (sliding-window:
                     one member per admitted request, scored by its epoch ms)
  ARGV[1]            a member prefix unique to the call; decision d's member
                     (its sliding-window entries) is `<prefix>.<d>`
  ARGV[2]            the number of decisions
  then, per decision, its limits, either
    n > 0            a new set of n limits, each four arguments: the index of
                     its key in KEYS (1-based), algorithm ("gcra" |
                     "sliding-window"), limit (requests per window, integer
                     >= 1), window (milliseconds). Sets are numbered 1, 2, ...
                     in the order they appear.
    -s               the same limits as set s (one client's requests in one
                     call share one set)

  Returns one string, one line per decision, in order (one bulk string is far
  cheaper for the gateway to read than nested arrays): either
    "allowed remaining1 reset1 retry1 remaining2 ..." (integers, one space apart)
      allowed     1 when every limit admits the request (each is then charged),
                  0 when any refuses (none is charged)
      remainingi  requests limit i still admits after this one
      reseti      milliseconds until limit i is back to its full quota
      retryi      milliseconds until limit i admits a request (0 when it admits this one)
  or, when a command of that decision failed (e.g. a key holding another type),
  "!" and the error's message: the other decisions are not affected.
]]
local t = redis.call('TIME')
-- Integer microseconds: exact in a double until the year 2255.
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = nowUs / 1000
local stamp = string.format('%.17g', nowUs)
local nowText = string.format('%.17g', now)

--[[
  Every decision of the call happens at the same `now`, so what a key holds
  needs reading once per call, not once per decision: each key's state is
  read on its first use and kept here, decisions read and charge the copy,
  and what they charged is written once, after the last decision. Redis ends
  in the state the decisions would have left one by one: a sliding window's
  trim at `now` removes nothing the second time, its count is the first
  count plus what this call admitted, its new members are one ZADD, and of
  the PEXPIREs (or GCRA SETs) the last is the one that stays. Under load this
  is what a call costs Redis: ~4 commands per decision became ~4 per key.
]]

-- GCRA: per key, its theoretical arrival time as ms from now (<= 0: the
-- bucket is full), and whether this call charged it.
local gcra = {}

-- The GCRA state of `key` as milliseconds from now until its theoretical
-- arrival time (<= 0: the bucket is full). It is kept relative to the moment
-- it was written, not as an epoch time: an epoch in ms is ~1.7e12, where a
-- double's step is ~2.4e-4 ms, so an interval below that (more than ~4e6
-- requests per second) would never be charged and larger ones would drift.
local function gcraState (key)
  local g = gcra[key]
  if g then return g end
  local v = redis.call('GET', key)
  local tat = 0
  if v then
    local s, o = string.match(v, '^(%d+) (%S+)$')
    if s then tat = tonumber(o) - (nowUs - tonumber(s)) / 1000
    -- A value written before this format: an epoch-ms theoretical arrival time.
    else tat = (tonumber(v) or now) - now end
  end
  g = { tat = tat, charged = false }
  gcra[key] = g
  return g
end

-- Sliding log: per key, the window it was trimmed to, how many requests are
-- in it, and the members this call admitted that are not written yet.
local logs = {}
local order = {}

local function writeLog (key, s)
  if #s.pending == 0 then return end
  local args = {}
  for i = 1, #s.pending do
    args[#args + 1] = nowText
    args[#args + 1] = s.pending[i]
  end
  redis.call('ZADD', key, unpack(args))
  redis.call('PEXPIRE', key, math.max(1, math.ceil(s.window)))
  s.pending = {}
end

-- The requests admitted in (now - window, now] under `key`.
local function logState (key, window)
  local s = logs[key]
  if s and s.window == window then return s end
  if s then writeLog(key, s) end -- the same key with another window (a shared bucket): trimmed again
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.17g', now - window))
  local count = redis.call('ZCARD', key)
  if not s then order[#order + 1] = key end
  s = { window = window, count = count, pending = {}, last = nil }
  logs[key] = s
  return s
end

-- One decision over `limits` (each { key, algorithm, limit, window }).
local function decide (limits, member)
  local allowed = 1
  local results = { 0 }
  local commit = {}
  for i = 1, #limits do
    local l = limits[i]
    local key, limit, window = l[1], l[3], l[4]
    local remaining, reset, retry
    if l[2] == 'gcra' then
      -- GCRA: one request every `interval`, with a burst of `limit` (tau = window - interval).
      -- Times here are relative to now: tat is "ms from now".
      local interval = window / limit
      local g = gcraState(key)
      local tat = g.tat
      if tat < 0 then tat = 0 end
      local newTat = tat + interval
      local slack = window - newTat
      -- A millionth of an interval absorbs float rounding in the additions.
      if slack < -interval * 1e-6 then
        allowed = 0
        remaining = 0
        retry = -slack
        reset = tat
      else
        remaining = math.floor(slack / interval + 1e-6)
        reset = newTat
        retry = 0
        commit[i] = newTat
      end
    else
      local s = logState(key, window)
      local count = s.count
      if count >= limit then
        allowed = 0
        remaining = 0
        -- A slot frees when the entry `count - limit` (0-based, oldest first) leaves the window.
        writeLog(key, s)
        local freeing = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
        local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
        retry = tonumber(freeing[2]) + window - now
        reset = tonumber(newest[2]) + window - now
      else
        remaining = limit - count - 1
        reset = window
        retry = 0
        commit[i] = true
      end
    end
    results[#results + 1] = string.format('%d', remaining)
    results[#results + 1] = string.format('%d', math.max(0, math.ceil(reset)))
    results[#results + 1] = string.format('%d', math.max(0, math.ceil(retry)))
  end

  if allowed == 1 then
    for i = 1, #limits do
      local l = limits[i]
      if l[2] == 'gcra' then
        local g = gcra[l[1]]
        g.tat = commit[i]
        g.charged = true
      else
        local s = logs[l[1]]
        -- One member per decision, as one ZADD of it would leave (a key twice in one decision counts once).
        if s.last ~= member then
          s.pending[#s.pending + 1] = member
          s.count = s.count + 1
          s.last = member
        end
      end
    end
  end
  results[1] = allowed == 1 and '1' or '0'
  return table.concat(results, ' ')
end

local out = {}
local sets = {}
local prefix = ARGV[1]
local a = 3
for d = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[a])
  local limits
  if n > 0 then
    limits = {}
    for i = 1, n do
      local b = a + 1 + 4 * (i - 1)
      limits[i] = { KEYS[tonumber(ARGV[b])], ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]) }
    end
    sets[#sets + 1] = limits
    a = a + 1 + 4 * n
  else
    limits = sets[-n]
    a = a + 1
  end
  local ok, res = pcall(decide, limits, prefix .. '.' .. d)
  if ok then
    out[d] = res
  else
    -- A failed redis.call raises a table { err = message }; anything else is a script fault.
    local message = type(res) == 'table' and tostring(res.err) or tostring(res)
    out[d] = '!' .. string.gsub(message, '\n', ' ')
  end
end

-- What the call charged, written once per key.
for key, g in pairs(gcra) do
  if g.charged then
    redis.call('SET', key, stamp .. ' ' .. string.format('%.17g', g.tat), 'PX', math.max(1, math.ceil(g.tat)))
  end
end
for i = 1, #order do writeLog(order[i], logs[order[i]]) end
return table.concat(out, '\n')
