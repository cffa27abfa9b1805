-- wrk script for bench/probabilistic.py: every request is a new near-miss contact.
--
--   wrk ... -s bench/probabilistic.lua http://127.0.0.1:PORT -- REQFILE START NTHREADS
--
-- REQFILE holds one JSON body per line, each distinct (no email or phone repeats). Thread t
-- of T sends lines START+t, START+t+T, ...; a run that reaches the end wraps (counted, as a
-- repeated body is an exact hit, not a near miss).

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local bodies = {}
local headers = {["Content-Type"] = "application/json"}
local pos, step
wrapped = 0

function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  step = tonumber(args[3])
  pos = tonumber(args[2]) + tid
end

function request()
  if pos >= #bodies then
    pos = pos % #bodies
    wrapped = wrapped + 1
  end
  local body = bodies[pos + 1]
  pos = pos + step
  return wrk.format("POST", "/identify", headers, body)
end

function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + t:get("wrapped") end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"lat_mean_us":%.1f,"lat_max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"p999_us":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9), w))
end
