-- wrk script for bench/ingest.py and bench/events.py: replays pre-signed requests, each exactly once.
--
-- Arguments (after `--`): <requests file> <path> <thread count> [format]
-- Format "twilio" (the default, bench/ingest.py): one request per line,
-- "<X-Twilio-Signature>\t<urlencoded body>". Format "events" (bench/events.py): one signed
-- Standard Webhooks request per line,
-- "<webhook-id>\t<webhook-timestamp>\t<webhook-signature>\t<JSON body>". Thread k
-- keeps lines k, k+n, k+2n, ... so no two threads (and no two connections, since a thread
-- hands out its lines in order) ever send the same request. A file of one line is sent
-- over and over: that is the floor run.
--
-- done() prints one line "BENCH_RESULT {json}" that ingest.py parses.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, path, nthreads = args[1], args[2], tonumber(args[3])
  local events = (args[4] == "events")
  reqs, sent, non2xx, exhausted = {}, 0, 0, 0
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["User-Agent"] = "TwilioProxy/1.1",
  }
  if events then
    headers = {["Content-Type"] = "application/json", ["User-Agent"] = "bench-events/1"}
  end
  local lines = {}
  for line in io.lines(file) do
    lines[#lines + 1] = line
  end
  repeat_one = (#lines == 1)
  for line_no, line in ipairs(lines) do
    if (repeat_one or (line_no - 1) % nthreads == id) and events then
      local a = line:find("\t", 1, true)
      local b = line:find("\t", a + 1, true)
      local c = line:find("\t", b + 1, true)
      headers["webhook-id"] = line:sub(1, a - 1)
      headers["webhook-timestamp"] = line:sub(a + 1, b - 1)
      headers["webhook-signature"] = line:sub(b + 1, c - 1)
      reqs[#reqs + 1] = wrk.format("POST", path, headers, line:sub(c + 1))
    elseif repeat_one or (line_no - 1) % nthreads == id then
      local tab = line:find("\t", 1, true)
      headers["X-Twilio-Signature"] = line:sub(1, tab - 1)
      -- Formatted once here so request() costs wrk nothing during the run.
      reqs[#reqs + 1] = wrk.format("POST", path, headers, line:sub(tab + 1))
    end
  end
  spare = wrk.format("GET", "/healthz")
end

function request()
  if repeat_one then
    sent = sent + 1
    return reqs[1]
  end
  if sent >= #reqs then
    -- Ran out: never resend a webhook. The run is reported as broken (see ingest.py).
    exhausted = 1
    wrk.thread:stop()
    return spare
  end
  sent = sent + 1
  return reqs[sent]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local total_sent, total_non2xx, total_exhausted = 0, 0, 0
  for _, t in ipairs(threads) do
    total_sent = total_sent + t:get("sent")
    total_non2xx = total_non2xx + t:get("non2xx")
    total_exhausted = total_exhausted + t:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us": %d, "responses": %d, "sent": %d, "non2xx": %d, ' ..
    '"exhausted_threads": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}, "latency_us": {"mean": %.1f, "p50": %d, "p90": %d, ' ..
    '"p99": %d, "max": %d}}\n',
    summary.duration, summary.requests, total_sent, total_non2xx, total_exhausted,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
