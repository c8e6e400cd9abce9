-- wrk script for the PAR benchmarks: the request comes from the environment, the summary
-- goes to stdout as one JSON line (wrk's own --latency table has no p99.9).
--   WRK_METHOD  GET (default) or POST
--   WRK_BODY    request body (sent as application/json)
--   WRK_ACCEPT  Accept header, when set
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body and #body > 0 then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local accept = os.getenv("WRK_ACCEPT")
if accept and #accept > 0 then
  wrk.headers["Accept"] = accept
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,'
      .. '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,'
      .. '"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
