-- Prints one line of figures, and appends them to $BATON_BENCH_OUT (tab-separated) for the table.
-- `errors` counts non-2xx answers and socket errors.
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  local name = os.getenv("BATON_BENCH_NAME")
  local rps, p50, p99 = summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000
  io.write(string.format("%-34s %9.1f req/s   p50 %8.2f ms   p99 %8.2f ms   %7d requests   %d errors\n",
    name, rps, p50, p99, summary.requests, errors))
  local out = os.getenv("BATON_BENCH_OUT")
  if out then
    local f = io.open(out, "a")
    f:write(string.format("%s\t%.1f\t%.2f\t%.2f\t%d\n", name, rps, p50, p99, errors))
    f:close()
  end
end
