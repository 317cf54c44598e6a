-- GET /healthz: HTTP alone, the baseline. wrk sends its default request.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")
