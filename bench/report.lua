-- Prints one line of figures; `errors` counts non-2xx answers and socket errors.
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("%-28s %9.1f req/s   p50 %8.2f ms   p99 %8.2f ms   %7d requests   %d errors\n",
    os.getenv("BATON_BENCH_NAME"), summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.requests, errors))
end
