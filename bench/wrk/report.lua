-- wrk script for `make bench`: prints the run's figures as one JSON line (BENCHJSON ...).
-- Arguments after `--`: none (GET), or `post BYTES` for a POST of BYTES bytes (the echo workload).

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
   io.write(string.format(
      'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout))
end
