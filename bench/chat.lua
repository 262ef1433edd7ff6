-- wrk script for bench/run.sh: POSTs one chat completion per request and, at the end, prints a
-- single machine-readable line that run.sh collects:
--   BENCH_RESULT {"requests":…,"rps":…,"p50_us":…,…}
--
-- Everything that varies between runs comes from the environment so one script serves every
-- target: BENCH_MODEL (model string), BENCH_STREAM ("1" = SSE streaming), BENCH_KEY (bearer key),
-- BENCH_MAX_TOKENS (the request's max_tokens, default 64).
--
-- There is deliberately no response() callback: defining one makes wrk hand every response to
-- Lua, which costs more than the proxies under test. wrk itself still counts responses with a
-- status >= 400 (summary.errors.status, reported as "non2xx": no target here ever answers 3xx);
-- ttfb.py checks for exact 200s and complete SSE framing separately.

local model = os.getenv("BENCH_MODEL") or "echo?tokens=20"
local stream = os.getenv("BENCH_STREAM") == "1"
local key = os.getenv("BENCH_KEY") or "bench-key"
local max_tokens = os.getenv("BENCH_MAX_TOKENS") or "64"

local body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello to the benchmark"}],"max_tokens":' .. max_tokens
if stream then
  body = body .. ',"stream":true'
end
body = body .. '}'

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

-- No request() on purpose: without one wrk formats the request once (after adding the Host
-- header, which nginx requires and a request() built at load time would lack) and reuses it.

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
