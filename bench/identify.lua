-- wrk script for bench/identify.py: a mixed POST /identify workload.
--
--   wrk ... -s bench/identify.lua http://127.0.0.1:PORT -- REQFILE SEED PKNOWN PNEW TAG BASE NTHREADS
--
-- REQFILE (written by identify.py) holds one line per item:
--   "K <json body>"  a look-up of a seeded person (varied fields and formatting)
--   "E <email>"      a seeded email, sent with a brand-new phone  ("new information")
--   "P <phone>"      a seeded phone, sent with a brand-new email  ("new information")
-- PKNOWN / PNEW are the fractions of look-ups and new people; the rest is new information.
-- New values come from a per-thread counter (n = BASE + counter * NTHREADS + thread id), so
-- they are unique across threads and never collide with seeded phones (other area codes).

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local NEW_AREAS = {206, 253, 360, 425, 509, 503, 541, 971, 458, 907}
local FIRST = {"alex", "sam", "maria", "li", "noor", "ivan", "zoe", "omar", "ines", "kofi"}

local known, emails, phones = {}, {}, {}
local headers = {["Content-Type"] = "application/json"}
local pknown, pnew, tag, base, nthreads
sent_known, sent_new, sent_info, counter = 0, 0, 0, 0

function init(args)
  local path = args[1]
  math.randomseed(tonumber(args[2]) + 7919 * tid)
  pknown, pnew = tonumber(args[3]), tonumber(args[4])
  tag, base, nthreads = args[5], tonumber(args[6]), tonumber(args[7])
  for line in io.lines(path) do
    local kind, rest = line:sub(1, 1), line:sub(3)
    if kind == "K" then known[#known + 1] = rest
    elseif kind == "E" then emails[#emails + 1] = rest
    elseif kind == "P" then phones[#phones + 1] = rest end
  end
end

local function new_phone()
  local n = base + counter * nthreads + tid
  local area = NEW_AREAS[(n % 10) + 1]
  local m = math.floor(n / 10)
  local exch = 200 + math.floor(m / 10000) % 800
  local line = m % 10000
  local style = n % 3
  if style == 0 then return string.format("+1 %d %d %04d", area, exch, line)
  elseif style == 1 then return string.format("(%d) %d-%04d", area, exch, line)
  else return string.format("%d-%d-%04d", area, exch, line) end
end

local function new_email(kind)
  return string.format("%s.%s.%s.t%d.%d@bench.example", FIRST[(counter % 10) + 1], kind, tag, tid, counter)
end

function request()
  local r = math.random()
  local body
  if r < pknown then
    sent_known = sent_known + 1
    body = known[math.random(#known)]
  elseif r < pknown + pnew then
    counter = counter + 1
    sent_new = sent_new + 1
    local who = FIRST[(counter % 10) + 1]
    if counter % 4 == 0 then
      body = string.format('{"email":"%s","phoneNumber":"%s","name":"%s Bench"}', new_email("new"), new_phone(), who)
    elseif counter % 10 == 1 then
      body = string.format('{"email":"%s"}', new_email("new"))
    elseif counter % 10 == 3 then
      body = string.format('{"phoneNumber":"%s"}', new_phone())
    else
      body = string.format('{"email":"%s","phoneNumber":"%s"}', new_email("new"), new_phone())
    end
  else
    counter = counter + 1
    sent_info = sent_info + 1
    if math.random() < 0.5 then
      body = string.format('{"email":"%s","phoneNumber":"%s"}', emails[math.random(#emails)], new_phone())
    else
      body = string.format('{"email":"%s","phoneNumber":"%s"}', new_email("info"), phones[math.random(#phones)])
    end
  end
  return wrk.format("POST", "/identify", headers, body)
end

function done(summary, latency, requests)
  local k, n, i = 0, 0, 0
  for _, t in ipairs(threads) do
    k = k + t:get("sent_known")
    n = n + t:get("sent_new")
    i = i + t:get("sent_info")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"non2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"lat_mean_us":%.1f,"lat_max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"sent_known":%d,"sent_new":%d,"sent_info":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9), k, n, i))
end
