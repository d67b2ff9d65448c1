-- wrk script for `make bench`: counts the responses per X-Pid header (the process that answered),
-- then prints the run's figures and the counts as one JSON line (BENCHJSON ...).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   pids = {}
end

function response(status, headers, body)
   local pid = headers["X-Pid"] or headers["x-pid"] or "none"
   pids[pid] = (pids[pid] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      for pid, n in pairs(thread:get("pids")) do
         total[pid] = (total[pid] or 0) + n
      end
   end
   local parts = {}
   for pid, n in pairs(total) do
      table.insert(parts, string.format('"%s": %d', pid, n))
   end
   local histogram = {}  -- as report.lua's
   for i = 1, #latency do
      local value, count = latency(i)
      histogram[i] = string.format("[%d,%d]", value, count)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"pids": {%s}, "latency": [%s]}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(99), latency.max, latency.mean,
      e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ", "),
      table.concat(histogram, ",")))
end
