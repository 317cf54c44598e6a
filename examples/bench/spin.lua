-- POST /v1/tools/misbehave__spin/call: a guest that loops forever, stopped by
-- the deadline its policy sets (timeout_ms in misbehave.toml, written by
-- http.sh). Every answer should be 200 with "outcome":"timeout"; the ones that
-- are not (another status, or another outcome) are counted, and the first is
-- kept as an example. A `response` function makes wrk read every body, which
-- costs wrk some CPU; at a few thousand answers a second that does not matter.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

wrk.method = "POST"
wrk.body = "{}"

not_timeout = 0
-- The call's own time as the server measured it (`elapsed_ms` in each answer),
-- to tell time spent in the call from time spent reaching it and answering.
elapsed_ms = {}

function response(status, headers, body)
   local ms = body:match('"elapsed_ms":([0-9.eE+-]+)')
   if ms ~= nil then
      elapsed_ms[#elapsed_ms + 1] = tonumber(ms)
   end
   if status ~= 200 or not body:find('"outcome":"timeout"', 1, true) then
      not_timeout = not_timeout + 1
      if example == nil then
         example = status .. " " .. body:sub(1, 300)
      end
   end
end
