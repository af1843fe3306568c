--[[
One request against a per-user rate limit: the generic cell rate algorithm (GCRA).

The key holds the "theoretical arrival time" (TAT, microseconds on Redis' clock): when the
user's allowance would be back to full. Each request moves it one interval later; a request
that would move it more than `burst` intervals ahead of now is refused, and the reply says
how long until it would be allowed. One key per user, one round trip, and the same answer
from every instance because the clock is Redis'.

KEYS[1] the user's key   ARGV[1] interval between requests (µs)   ARGV[2] burst (requests)
Returns {1, 0} when allowed, {0, retry_after_µs} when refused.
]]

local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local ahead = next_tat - now
if ahead > burst * interval then
  return {0, ahead - burst * interval}
end
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil(ahead / 1000))
return {1, 0}
