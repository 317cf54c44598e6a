#!/usr/bin/env bash
# The HTTP rows of the latency table, measured through `toolhost serve` with wrk.
#
#   examples/bench/http.sh            # after `cargo build --release` at the repository root
#
# Starts `toolhost serve` on a free loopback port with a temporary configuration
# (one tenant with a key; a tools folder holding `calc` and the `misbehave` test
# guest), then runs, one after the other in the same run:
#
#   1. GET /healthz                              wrk -t2 -c64   the baseline: HTTP alone
#   2. POST /v1/tools/calc/call                  wrk -t2 -c64   each wrk thread sends 20,000
#      expressions of its own in turn, more than the pure-result cache keeps, so it never
#      answers: a fresh instance per call (the script checks the server's cache hits)
#   3. POST /v1/tools/misbehave__spin/call       wrk -t2 -c200  200 guests that loop forever,
#      each stopped by a 100 ms deadline (`timeout_ms` in the guest's policy); every answer
#      should be 200 with outcome `timeout`, and the ones that are not are counted
#
# and prints a markdown table: requests/s, p50, p99 (wrk's, from the request's first
# byte sent to the response's last byte read), answers that were not 2xx or failed at
# the socket, and the ratio to /healthz's throughput, beside each row's target. wrk
# and the server share the machine's cores: the figures include wrk's own CPU.
#
# Then, with the server idle, `toolhost bench` runs the same `calc` call in process on
# as many threads as there are cores, in a bare wasmtime loop and through the
# executor, and the script prints what that puts within reach over HTTP. A `calc`
# request costs at least what a /healthz request costs plus what the bare call costs,
# on the same cores, so its ratio to /healthz is at most about bare / (bare + healthz)
# (the ceiling; "about" because a virtual machine's speed drifts between runs). It
# also splits the CPU of one `calc` request (both cores, wrk's share included) into
# /healthz's, the executor's call and what is left: the HTTP handler around the call,
# the larger request and answer, and the result cache. Each wrk run's CPU is also
# measured per process (the server's from /proc/PID/stat, wrk's from its rusage), so
# the split is given again for the server alone, wrk's share apart.
#
# Environment (defaults in brackets):
#   TOOLHOST      the binary                              [ROOT/target/release/toolhost]
#   GUESTS        folder with calc.wasm and guest_misbehave.wasm
#                                                         [ROOT/target/guests/wasm32-wasip2/release]
#                 (ROOT: the checkout this script is in)
#   DURATION      each wrk run                            [5s]
#   ROUNDS        /healthz and calc runs, taking turns     [3]
#   THREADS       wrk threads                             [2]
#   CONNECTIONS   connections for /healthz and calc       [64]
#   LOOPERS       connections (guests at once) for spin   [200]
#   SPIN_TIMEOUT_MS  the looping guest's deadline         [100]
#   SPIN_MAX_CONCURRENCY  spin calls the tool runs at once; more wait for a slot
#                 before their deadline starts            [LOOPERS + 56]
#   KEEP=1        keep the temporary folder (config, tools, server log, wrk output)

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
TOOLHOST=${TOOLHOST:-$root/target/release/toolhost}
GUESTS=${GUESTS:-$root/target/guests/wasm32-wasip2/release}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
LOOPERS=${LOOPERS:-200}
SPIN_TIMEOUT_MS=${SPIN_TIMEOUT_MS:-100}
SPIN_MAX_CONCURRENCY=${SPIN_MAX_CONCURRENCY:-$((LOOPERS + 56))}

die() {
    echo "http.sh: $*" >&2
    exit 1
}

command -v wrk >/dev/null || die "wrk is not installed (Debian/Ubuntu: apt-get install wrk)"
command -v curl >/dev/null || die "curl is not installed (Debian/Ubuntu: apt-get install curl)"
[[ -x $TOOLHOST ]] ||
    die "no toolhost binary at $TOOLHOST: run \`cargo build --release\` at the repository root, or set TOOLHOST"
for wasm in calc.wasm guest_misbehave.wasm; do
    [[ -f $GUESTS/$wasm ]] ||
        die "no $GUESTS/$wasm: run \`cargo build --release\` at the repository root (its artifacts step builds the guests), or set GUESTS"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/toolhost-http-bench.XXXXXX")
server=""
cleanup() {
    if [[ -n $server ]] && kill -0 "$server" 2>/dev/null; then
        # SIGTERM drains: calls in flight finish (the loopers within their deadline).
        kill "$server" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$server" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if [[ ${KEEP:-} == 1 ]]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The tools folder: calc with its default policy; misbehave with the looper's deadline,
# enough fuel that the deadline (not fuel) stops it, and room for every looper at once
# (a tool runs 64 calls at once by default; the rest would wait for a slot, and a
# call's deadline starts only when it has one).
mkdir "$work/tools"
cp "$GUESTS/calc.wasm" "$work/tools/calc.wasm"
cp "$GUESTS/guest_misbehave.wasm" "$work/tools/misbehave.wasm"
cat >"$work/tools/misbehave.toml" <<EOF
[limits]
timeout_ms = $SPIN_TIMEOUT_MS
fuel = 1_000_000_000_000
max_concurrency = $SPIN_MAX_CONCURRENCY
EOF

# One tenant. No rate (unlimited) and a concurrency above every run's connections, so
# the tenant's quotas refuse nothing; a memory budget that holds every call in flight
# (each reserves its memory cap, 64 MiB by default, plus 2 MiB), so none waits for it.
key="th_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
hash=$("$TOOLHOST" hash-key "$key" | grep -o 'blake3:[0-9a-f]\{64\}') ||
    die "\`$TOOLHOST hash-key\` printed no hash"
# An admin key, to read /metrics (the result cache's hits after the calc run).
admin_key="th_admin_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
admin_hash=$("$TOOLHOST" hash-key "$admin_key" | grep -o 'blake3:[0-9a-f]\{64\}') ||
    die "\`$TOOLHOST hash-key\` printed no hash"
in_flight=$((LOOPERS > CONNECTIONS ? LOOPERS : CONNECTIONS))
cat >"$work/serve.toml" <<EOF
admin_keys = ["$admin_hash"]
memory_budget_mb = $(((in_flight + 64) * 66))
[[tenant]]
name = "bench"
keys = ["$hash"]
tools = ["calc", "misbehave__spin"]
concurrency = $((in_flight + 64))
EOF

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average at start: $load_start ($(nproc) cores)"

: >"$work/server.log"
"$TOOLHOST" serve --config "$work/serve.toml" --tools "$work/tools" \
    --listen 127.0.0.1:0 --no-watch >"$work/server.log" 2>&1 &
server=$!

# The server prints `toolhost serving N tools on http://ADDR` once it listens (the
# first start compiles the two components, which takes a few seconds).
url=""
for _ in $(seq 600); do
    url=$(grep -o 'serving .* on http://[0-9.:]*' "$work/server.log" | grep -o 'http://[0-9.:]*' || true)
    [[ -n $url ]] && break
    kill -0 "$server" 2>/dev/null || {
        cat "$work/server.log" >&2
        die "toolhost serve exited"
    }
    sleep 0.1
done
[[ -n $url ]] || {
    cat "$work/server.log" >&2
    die "toolhost serve did not start listening within 60 s"
}
curl -fsS "$url/healthz" >/dev/null || die "$url/healthz does not answer"

auth="Authorization: Bearer $key"
json="Content-Type: application/json"

# Check each call once before loading: calc answers, spin times out.
check() {
    local tool=$1 body=$2 want=$3 got
    got=$(curl -sS -H "$auth" -H "$json" "$url/v1/tools/$tool/call" -d "$body")
    [[ $got == *"\"outcome\":\"$want\""* ]] ||
        die "a call of $tool should end \`$want\`, got: $got"
}
check calc '{"expression":"6*7"}' ok
check misbehave__spin '{}' timeout

# Runs wrk with one of the scripts here (and `script_args` after the URL, for the
# script's `init`); leaves its RESULT line's fields in `r`.
declare -A r
script_args=()
run() {
    local name=$1 script=$2 connections=$3 path=$4
    shift 4
    local out="$work/wrk-$name.txt"
    echo
    local shown="$*"
    echo "== $name: wrk -t$THREADS -c$connections -d$DURATION --latency ${shown//$key/KEY} -s $script $path"
    local server_before wrk_cpu
    server_before=$(server_ticks)
    # wrk's own CPU (user and system seconds), from bash's `time`.
    wrk_cpu=$(
        TIMEFORMAT='%3U %3S'
        { time wrk -t"$THREADS" -c"$connections" -d"$DURATION" --latency "$@" \
            -s "$here/$script" "$url$path" ${script_args[@]+"${script_args[@]}"} >"$out" 2>&1; } 2>&1
    ) || {
        cat "$out" >&2
        die "wrk failed"
    }
    local server_after
    server_after=$(server_ticks)
    sed 's/^/    /' "$out"
    # A script error does not stop wrk (it falls back to its default request and
    # prints `NAME.lua:LINE: ...`), so any such line means the run measured the wrong thing.
    if grep -q '\.lua:[0-9]' "$out"; then
        die "the wrk script $script failed (see above)"
    fi
    local line fields field
    line=$(grep '^RESULT ' "$out") || die "wrk printed no RESULT line (see above)"
    read -ra fields <<<"${line#RESULT }"
    r=()
    for field in "${fields[@]}"; do
        r[${field%%=*}]=${field#*=}
    done
    # CPU time of the run, in microseconds: the server's and wrk's.
    r[server_cpu_us]=$(((server_after - server_before) * 1000000 / clock_ticks))
    r[wrk_cpu_us]=$(awk -v t="$wrk_cpu" 'BEGIN { split(t, a, " "); printf "%.0f", (a[1] + a[2]) * 1e6 }')
}

# The server's CPU time so far (user and system), in clock ticks.
clock_ticks=$(getconf CLK_TCK)
server_ticks() {
    awk '{ print $14 + $15 }' "/proc/$server/stat"
}

ms() { awk -v us="$1" 'BEGIN { printf (us < 10000 ? "%.2f ms" : "%.1f ms"), us / 1000 }'; }
rate() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", n / (us / 1e6) }'; }

# /healthz and calc take turns, ROUNDS times: this virtual machine's speed drifts
# by tens of percent over a minute, and a ratio of two runs far apart in time
# measures the drift as much as the server. The table shows the round with the
# median ratio.
declare -a ratios=() health_rows=() calc_rows=() health_rates=() calc_rates=() health_cpu=() calc_cpu=()
# "SERVER WRK": the CPU microseconds one request cost the server and wrk.
per_request() { awk -v s="$1" -v w="$2" -v n="$3" 'BEGIN { printf "%.1f %.1f", s / n, w / n }'; }
for round in $(seq "$ROUNDS"); do
    run "healthz-$round" healthz.lua "$CONNECTIONS" /healthz
    health_rates[round]=$(rate "${r[requests]}" "${r[duration_us]}")
    health_cpu[round]=$(per_request "${r[server_cpu_us]}" "${r[wrk_cpu_us]}" "${r[requests]}")
    health_rows[round]="| \`GET /healthz\` (baseline: HTTP alone), -c$CONNECTIONS | ${health_rates[round]} | $(ms "${r[p50_us]}") | $(ms "${r[p99_us]}") | ${r[non2xx]} / ${r[socket_errors]} | 1.00 | – |"

    # The round number makes this round's expressions differ from the last's.
    script_args=(-- "$round")
    run "calc-$round" calc.lua "$CONNECTIONS" /v1/tools/calc/call -H "$auth" -H "$json"
    script_args=()
    calc_rates[round]=$(rate "${r[requests]}" "${r[duration_us]}")
    calc_cpu[round]=$(per_request "${r[server_cpu_us]}" "${r[wrk_cpu_us]}" "${r[requests]}")
    ratios[round]=$(awk -v a="${calc_rates[round]}" -v b="${health_rates[round]}" 'BEGIN { printf "%.2f", a / b }')
    calc_rows[round]="| \`POST /v1/tools/calc/call\`, a fresh input each, -c$CONNECTIONS | ${calc_rates[round]} | $(ms "${r[p50_us]}") | $(ms "${r[p99_us]}") | ${r[non2xx]} / ${r[socket_errors]} | ${ratios[round]} | p99 ≤ 10 ms, ≥ 0.5 of /healthz |"
done
# calc.lua sends each thread's requests in turn; none may have been answered from
# the result cache, or the row measured the cache, not fresh instances.
cache_hits=$(curl -fsS -H "Authorization: Bearer $admin_key" "$url/metrics" |
    grep -o '^toolhost_cache_hits_total [0-9]*' | grep -o '[0-9]*$') ||
    die "/metrics shows no toolhost_cache_hits_total"
[[ $cache_hits == 0 ]] || die "$cache_hits calc requests were answered from the result cache"
# The round with the median ratio.
median=$(for round in $(seq "$ROUNDS"); do echo "${ratios[round]} $round"; done |
    sort -n | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) { print $2 }')
row_health=${health_rows[median]}
row_calc=${calc_rows[median]}
health_rps=${health_rates[median]}
calc_rps=${calc_rates[median]}
read -r health_server health_wrk <<<"${health_cpu[median]}"
read -r calc_server calc_wrk <<<"${calc_cpu[median]}"
all_ratios=$(for round in $(seq "$ROUNDS"); do echo -n "${ratios[round]} "; done)

run spin spin.lua "$LOOPERS" /v1/tools/misbehave__spin/call --timeout 5s -H "$auth" -H "$json"
spin_rps=$(rate "${r[requests]}" "${r[duration_us]}")
row_spin="| \`POST /v1/tools/misbehave__spin/call\`, $LOOPERS looping guests at once, ${SPIN_TIMEOUT_MS} ms timeout | $spin_rps | $(ms "${r[p50_us]}") | $(ms "${r[p99_us]}") | ${r[non2xx]} / ${r[socket_errors]}; not \`timeout\`: ${r[not_timeout]} | – | p99 ≤ $((SPIN_TIMEOUT_MS + 10)) ms, every answer a timeout |"
spin_other=${r[not_timeout]}
spin_call="${r[call_p50_ms]} / ${r[call_p99_ms]} ms"

# The same call in process, with the server idle: the bare wasmtime loop and the
# executor, each on as many threads as the machine has cores.
cores=$(nproc)
"$TOOLHOST" bench --wasm "$GUESTS/calc.wasm" --tool calc --input '{"expression":"123*7+1"}' \
    --threads "$cores" --calls 20000 --no-python --json >"$work/bench-calc.json" 2>"$work/bench-calc.err" || {
    cat "$work/bench-calc.err" >&2
    die "\`toolhost bench\` of calc failed"
}
per_sec() { grep -o "\"$1\": *[0-9.]*" "$work/bench-calc.json" | head -1 | grep -o '[0-9.]*$'; }
bare_rps=$(per_sec bare_per_sec)
exec_rps=$(per_sec executor_per_sec)
[[ -n $bare_rps && -n $exec_rps ]] || die "\`toolhost bench --json\` printed no figures: $(cat "$work/bench-calc.json")"

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "Load average $load_start at the start, $load_end at the end; $(nproc) cores shared by the server and wrk; -t$THREADS, $DURATION each run."
echo
echo "| request | requests/s | p50 | p99 | non-2xx / socket errors | / healthz | target |"
echo "|---|--:|--:|--:|--:|--:|---|"
echo "$row_health"
echo "$row_calc"
echo "$row_spin"
echo
echo "calc / healthz in each of the $ROUNDS rounds, in turn: ${all_ratios% } (the table shows round $median, the median)."
echo "The loopers' calls as the server timed them (elapsed_ms in each answer), p50 / p99: $spin_call."
echo
awk -v cores="$cores" -v health="$health_rps" -v calc="$calc_rps" -v bare="$bare_rps" \
    -v exec="$exec_rps" -v hs="$health_server" -v hw="$health_wrk" -v cs="$calc_server" \
    -v cw="$calc_wrk" 'BEGIN {
    us = cores * 1e6
    printf "The same \140calc\140 call in process, on %d threads, with the server idle: bare wasmtime %.0f/s, the executor %.0f/s.\n", cores, bare, exec
    printf "Ceiling of the \140calc\140 ratio (a server adding nothing to /healthz and the bare call): %.2f; measured %.2f.\n", bare / (bare + health), calc / health
    printf "CPU of one \140calc\140 request, all %d cores and wrk included: %.1f µs = /healthz %.1f + the executor'"'"'s call %.1f + the rest %.1f.\n", cores, us / calc, us / health, us / exec, us / calc - us / health - us / exec
    printf "The same, each process measured (the server from /proc, wrk from its rusage): /healthz server %.1f + wrk %.1f µs; \140calc\140 server %.1f + wrk %.1f µs, the server'"'"'s = /healthz'"'"'s %.1f + the executor'"'"'s call %.1f + the rest %.1f.\n", hs, hw, cs, cw, hs, us / exec, cs - hs - us / exec
}'
if [[ $spin_other != 0 ]]; then
    echo
    echo "$spin_other looper answers were not a timeout; the first:"
    grep '^EXAMPLE ' "$work/wrk-spin.txt" || true
fi
