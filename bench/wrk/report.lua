-- wrk script for `make bench`: prints the run's figures as one JSON line (BENCHJSON ...).
-- Arguments after `--`: none (GET), or `post BYTES` for a POST of BYTES bytes (the echo workload).
-- "latency" is wrk's whole histogram, [microseconds, count] for each value seen: the rounds of
-- one workload (measure.py) are merged into one distribution, whose percentiles are exact.

function init(args)
   if args[1] == "post" then
      local size = tonumber(args[2] or "4096")
      local pattern = "0123456789abcdef"
      wrk.method = "POST"
      wrk.body = string.rep(pattern, math.floor(size / #pattern)) .. string.rep("x", size % #pattern)
      wrk.headers["Content-Type"] = "application/octet-stream"
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local histogram = {}
   for i = 1, #latency do  -- latency(i): the i-th distinct value and its count
      local value, count = latency(i)
      histogram[i] = string.format("[%d,%d]", value, count)
   end
   io.write(string.format(
      'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency": [%s]}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout, table.concat(histogram, ",")))
end
