-- wrk script: replay pre-built requests round robin and check every response.
-- Args: <requests file> <success marker> <authorization header value>
-- Each line of the file is METHOD<TAB>PATH<TAB>BODY[<TAB>AUTHORIZATION] (BODY may be empty).
-- A response counts as bad unless it is 200 and its body contains the marker.
local threads = {}
local requests = {}
local marker = ""
local next_index = 1
bad = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  marker = args[2]
  for line in io.lines(args[1]) do
    local method, path, rest = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    -- An optional fourth field is the line's own Authorization value.
    local body, own = rest:match("^([^\t]*)\t(.*)$")
    if body == nil then body = rest end
    local headers = { ["Authorization"] = own or args[3], ["Content-Type"] = "application/json" }
    if body == "" then body = nil end
    table.insert(requests, wrk.format(method, path, headers, body))
  end
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, marker, 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + (thread:get("bad") or 0)
  end
  local e = summary.errors
  -- The latency distribution as 1000 quantiles (microseconds), so that runs can be merged.
  local quantiles = {}
  for i = 0, 999 do
    table.insert(quantiles, string.format("%d", latency:percentile((i + 0.5) / 10)))
  end
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "socket_errors": %d, "bad": %d, "quantiles_us": [%s]}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, total_bad,
    table.concat(quantiles, ", ")))
end
