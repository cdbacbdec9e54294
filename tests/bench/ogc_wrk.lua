-- wrk script of tests/bench/ogc.py: cycle through a list of request paths, count bad answers, print JSON.
--
--   wrk -t2 -c8 -d10s -s tests/bench/ogc_wrk.lua http://127.0.0.1:PORT -- PATHS_FILE [AUTHORIZATION]
--
-- PATHS_FILE holds one request path per line. Each thread starts at a different line so the
-- threads do not ask for the same thing in step. A response counts as bad unless its status is
-- 200 and its body is not empty (wrk itself only counts statuses >= 400). done() prints one JSON
-- line that ogc.py parses.

local threads = {}

function setup(thread)
   thread:set("thread_index", #threads)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1], "r"), "cannot read the paths file " .. tostring(args[1]))
   paths = {}
   for line in file:lines() do
      if #line > 0 then table.insert(paths, line) end
   end
   file:close()
   assert(#paths > 0, "the paths file " .. args[1] .. " is empty")
   headers = { ["Accept"] = "application/geo+json, application/json" }
   if args[2] ~= nil and #args[2] > 0 then headers["Authorization"] = args[2] end
   position = (thread_index * 7919) % #paths -- a prime stride spreads the threads' starting points
   bad_status = 0
   empty_body = 0
   last_bad_status = 0
end

function request()
   position = position % #paths + 1
   return wrk.format("GET", paths[position], headers)
end

function response(status, response_headers, body)
   if status ~= 200 then
      bad_status = bad_status + 1
      last_bad_status = status
   elseif body == nil or #body == 0 then
      empty_body = empty_body + 1
   end
end

function done(summary, latency, requests)
   local bad, empty, last = 0, 0, 0
   for _, thread in ipairs(threads) do
      bad = bad + thread:get("bad_status")
      empty = empty + thread:get("empty_body")
      if thread:get("last_bad_status") ~= 0 then last = thread:get("last_bad_status") end
   end
   local errors = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
         .. '"bad_status": %d, "last_bad_status": %d, "empty_body": %d, "connect_errors": %d, '
         .. '"read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(95), latency:percentile(99),
      bad, last, empty, errors.connect, errors.read, errors.write, errors.timeout))
end
