-- POST /v1/tools/calc/call with a different expression every request, so the
-- result cache of the pure `calc` tool never answers: each is a fresh instance.
-- The key and Content-Type come from wrk's -H options.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

local counter = 0

function request()
   counter = counter + 1
   -- `id` is this wrk thread's number (set by report.lua's setup): the pair
   -- (counter, id) is unique, so no two requests of the run share an input.
   local body = string.format('{"expression":"%d*7+%d"}', counter, id)
   return wrk.format("POST", nil, nil, body)
end
