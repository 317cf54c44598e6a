-- Shared by the wrk scripts of examples/bench/http.sh: numbers each wrk thread
-- (the global `id` in its Lua state) and, when the run is done, writes one line
-- the shell script reads instead of scraping wrk's text:
--   RESULT requests=N duration_us=N p50_us=N p99_us=N non2xx=N socket_errors=N
--          not_timeout=N|- call_p50_ms=X|- call_p99_ms=X|-
-- Latencies are wrk's own (microseconds, from the request's first byte sent to
-- its response's last byte read). `not_timeout` and the server's own call times
-- (`elapsed_ms` of each answer) come only from scripts whose `response` function
-- collects them (spin.lua).

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

-- The p-th percentile (0-100) of a sorted list, nearest rank; "-" when empty.
local function percentile(sorted, p)
   if #sorted == 0 then
      return "-"
   end
   local rank = math.max(1, math.ceil(p / 100 * #sorted))
   return string.format("%.1f", sorted[rank])
end

function done(summary, latency, requests)
   local not_timeout, example, elapsed = nil, nil, {}
   for _, thread in ipairs(threads) do
      local n = thread:get("not_timeout")
      if n ~= nil then
         not_timeout = (not_timeout or 0) + n
         example = example or thread:get("example")
      end
      for _, ms in ipairs(thread:get("elapsed_ms") or {}) do
         elapsed[#elapsed + 1] = ms
      end
   end
   table.sort(elapsed)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d not_timeout=%s call_p50_ms=%s call_p99_ms=%s\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      e.status, e.connect + e.read + e.write + e.timeout,
      not_timeout == nil and "-" or tostring(not_timeout),
      percentile(elapsed, 50), percentile(elapsed, 99)))
   if example ~= nil then
      io.write("EXAMPLE not a timeout: " .. example .. "\n")
   end
end
