-- POST /v1/tools/calc/call with a different expression each request, as far as the
-- pure `calc` tool's result cache can tell, so it never answers: each request is a
-- fresh instance. The key and Content-Type come from wrk's -H options.
--
-- Each wrk thread builds its requests once, before the run: 20,000 of its own,
-- which it sends in turn. The result cache keeps 10,000 answers per caller, so a
-- request has always left the cache before it comes round again (http.sh checks
-- the server's cache-hit counter after the run). Building each request as it is
-- sent cost wrk a quarter more CPU per request, on the cores the server uses;
-- /healthz's requests cost wrk nothing to build either.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

local size = 20000
local requests = {}
local sent = 0

function init(args)
   -- `id` is this wrk thread's number (set by report.lua's setup), and the
   -- first argument after the URL, if any, the run's round (http.sh runs calc
   -- several times against one server): the triple (i, id, round) is unique,
   -- so no two threads or rounds share an expression either.
   local round = tonumber(args[1]) or 0
   for i = 1, size do
      local body = string.format('{"expression":"%d*7+%d-%d"}', i, id, round)
      requests[i] = wrk.format("POST", nil, nil, body)
   end
end

function request()
   sent = sent % size + 1
   return requests[sent]
end
