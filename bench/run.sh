#!/usr/bin/env bash
# The Switchyard benchmark: how much does the gateway add on top of calling the provider directly,
# and how does that compare with the cheapest possible proxy (nginx)?
#
#   bench/run.sh            # from the repo root; prints a table, writes bench-out/results.json
#
# Three targets answer the same chat request, all backed by the instant mock provider:
#   direct   the mock itself (the floor)
#   nginx    a keep-alive, non-buffering nginx reverse proxy in front of the mock (the reference)
#   gateway        switchyard, one model group routed to the mock (no keys, no ledger, no
#                  metrics: the bare path)
#   gateway-keys   the same, with keys required and the calling key under in-process rate limits
#                  (requests, tokens, calls in flight; far above the load, so every check runs
#                  and none refuses)
#   gateway-redis  the same limits kept in Redis (BENCH_REDIS_URL, default the local one): one
#                  script per call; run when Redis answers
#   gateway-ledger the bare path with the ledger, metrics and traces on: each call priced, its
#                  spend record queued and written in batches to SQLite with its daily
#                  aggregates, recorded in the Prometheus metrics, and traced (every call:
#                  its span, its stages' and its attempt's, exported over OTLP/HTTP to the
#                  mock, which counts them)
#   gateway-guards the bare path with the guards on (PII tokenized, secrets blocked, injections
#                  blocked with every tier, secrets and image links redacted in answers)
#   gateway-audit  the bare path with the audit log on: each call's record queued and appended
#                  in batches to the Merkle tree in SQLite, checkpoints signed every 10 s
# Each is loaded with wrk at concurrency 1 (pure latency) and 64 (throughput), plain and
# streaming, then probed for stream time-to-first-byte with a sequential raw-socket client.
# Beside requests per second, each run reports the CPU time (user + system, every thread; for
# nginx its workers too) the target process spent per request: on a shared machine the
# throughput of a run swings with whatever else runs, while the CPU a request costs holds far
# steadier, so it is the figure to compare two gateway targets by (cpu-vs-gw: the target's CPU
# per request over the bare gateway's in the same round).
#
# Environment:
#   BENCH_DURATION    wrk duration per run (default 10s); every run has a 2s unreported warm-up
#   BENCH_WARMUP      warm-up duration (default 2s)
#   BENCH_TTFB_N      sequential streaming requests per target for TTFB (default 2000)
#   BENCH_SKIP_BUILD  1 = use the existing target/release binaries as they are
#   BENCH_TARGETS     subset of "direct nginx gateway gateway-keys gateway-redis gateway-ledger
#                     gateway-audit gateway-guards"
#                     (default: all; gateway-redis only when Redis answers)
#   BENCH_REDIS_URL   the Redis of gateway-redis (default redis://127.0.0.1:6379/)
#   BENCH_ROUNDS      rounds of every wrk run, interleaved (default 1); with more than one the
#                     table shows medians and the range of the ratio to nginx over the rounds
#   BENCH_RUST_LOG    the gateway's log filter (default info, as it ships: a line per request)
#   BENCH_TOKENS      tokens in every answer (default 20: a short answer; 300 answers as a real
#                     provider's long answer does: 300 SSE chunks streamed, ~1.5 KB whole)
#
# Caveat: the load generator, the mock and the proxy share the machine's cores (2 here), so
# absolute numbers move between runs and machines; compare rows of the same run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
TTFB_N=${BENCH_TTFB_N:-2000}
ROUNDS=${BENCH_ROUNDS:-1}
OUT_DIR=bench-out
KEY=bench-key
# 20 completion tokens = 20 SSE content chunks: a short answer, instant from the mock.
TOKENS=${BENCH_TOKENS:-20}
[[ $TOKENS =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_TOKENS must be a positive number" >&2; exit 1; }
UPSTREAM_MODEL="echo?tokens=$TOKENS"
GATEWAY_MODEL=bench
CHAT_PATH=/v1/chat/completions
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/}
MASTER=bench-master-key-0123456789
redis_answers() {
    local hostport=${REDIS_URL#redis://}
    hostport=${hostport%%/*}
    command -v redis-cli >/dev/null && redis-cli -h "${hostport%:*}" -p "${hostport##*:}" ping >/dev/null 2>&1
}
DEFAULT_TARGETS="direct nginx gateway gateway-keys gateway-ledger gateway-audit gateway-guards"
if redis_answers; then DEFAULT_TARGETS+=" gateway-redis"; fi
read -r -a TARGETS <<<"${BENCH_TARGETS:-$DEFAULT_TARGETS}"
wants() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
wants_gateway() { [[ " ${TARGETS[*]} " == *" gateway"* ]]; }
for target in "${TARGETS[@]}"; do
    [[ $target =~ ^(direct|nginx|gateway|gateway-keys|gateway-redis|gateway-ledger|gateway-audit|gateway-guards)$ ]] || { echo "bench: unknown target $target" >&2; exit 1; }
done

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive number, not $ROUNDS"

# --- tools -----------------------------------------------------------------------------------
# nginx lives in /usr/sbin, which a non-root PATH usually lacks.
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[[ -x $NGINX ]] || missing+=(nginx-light)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}"
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
command -v cargo >/dev/null || die "cargo not found"

# --- build -----------------------------------------------------------------------------------
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries"
    if wants_gateway; then
        cargo build --release -p switchyard-server -p switchyard-mock
    else
        cargo build --release -p switchyard-mock
    fi
fi
GATEWAY_BIN=target/release/switchyard
MOCK_BIN=target/release/switchyard-mock
[[ -x $MOCK_BIN ]] || die "$MOCK_BIN missing"
! wants_gateway || [[ -x $GATEWAY_BIN ]] || die "$GATEWAY_BIN missing"

# --- processes and cleanup -------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
# nginx workers drop root privileges and must still reach their temp paths in here.
chmod 755 "$TMP"
# Raw results gather here and reach bench-out/ only when complete, so a second run started
# meanwhile (or an aborted one) cannot mix its numbers into this one's.
RAW_DIR=$TMP/raw
mkdir -p "$RAW_DIR"
PIDS=()
STEP_PID=

cleanup() {
    local status=$? pid i
    trap - EXIT INT TERM
    if [[ -n $STEP_PID ]]; then kill -TERM "$STEP_PID" 2>/dev/null || true; fi
    # Stop in reverse start order (gateway and nginx before the mock they call).
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in {1..50}; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a long step (wrk, ttfb.py) in the background and waits for it: bash runs a trap only after
# a foreground child exits, but interrupts `wait` at once, so Ctrl-C or a TERM cleans up promptly.
run_step() {
    "$@" &
    STEP_PID=$!
    local status=0
    wait "$STEP_PID" || status=$?
    STEP_PID=
    return "$status"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints a process's log and fails; for services that died or never became ready.
fail_with_log() {
    local what=$1 logfile=$2
    echo "--- $logfile" >&2
    tail -n 30 "$logfile" >&2 || true
    die "$what"
}

# --- services --------------------------------------------------------------------------------
# The process answering for each target, for its CPU time.
declare -A PID_OF

# CPU time in clock ticks (user + system, all threads, living or exited) of a process and its
# children (nginx's workers); the children's own children are not counted.
cpu_ticks() {
    local pid=$1 total=0 p t
    for p in "$pid" $(pgrep -P "$pid" 2>/dev/null || true); do
        # Fields after the command name, which may hold spaces: utime and stime are 12th and 13th.
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)
start_mock() {
    # Port 0 avoids racing other users of the machine for a port; the mock reports what it got.
    "$MOCK_BIN" --listen 127.0.0.1:0 >"$TMP/mock.out" 2>"$TMP/mock.log" &
    local pid=$! addr=
    PIDS+=("$pid")
    PID_OF[direct]=$pid
    for _ in {1..100}; do
        addr=$(sed -n 's#^switchyard-mock listening on http://\([0-9.:]*\).*#\1#p' "$TMP/mock.out")
        [[ -n $addr ]] && break
        kill -0 "$pid" 2>/dev/null || fail_with_log "mock exited at startup" "$TMP/mock.log"
        sleep 0.1
    done
    [[ -n $addr ]] || fail_with_log "mock did not report its address" "$TMP/mock.log"
    MOCK_PORT=${addr##*:}
    log "mock on 127.0.0.1:$MOCK_PORT"
}

start_nginx() {
    NGINX_PORT=$(free_port)
    mkdir -p "$TMP"/{client_body,proxy,fastcgi,uwsgi,scgi}
    sed -e "s#@TMP@#$TMP#g" -e "s#@PORT@#$NGINX_PORT#g" -e "s#@UPSTREAM_PORT@#$MOCK_PORT#g" \
        bench/nginx.conf.tmpl >"$TMP/nginx.conf"
    # -e: nginx opens its compiled-in error log before it reads the config; keep even that private.
    "$NGINX" -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" &
    PIDS+=("$!")
    PID_OF[nginx]=$!
    # Any answer will do: nginx forwards GET / to the mock, which has no such route.
    python3 bench/ttfb.py wait "http://127.0.0.1:$NGINX_PORT/" --any-status --timeout 10 \
        || fail_with_log "nginx did not start" "$TMP/nginx-error.log"
    log "nginx on 127.0.0.1:$NGINX_PORT"
}

# A gateway target: its port, and the key clients send (a virtual key for the keyed ones).
declare -A PORT_OF KEY_OF
start_gateway() {
    local target=$1 port config=$TMP/$1.yaml
    port=$(free_port)
    cat >"$config" <<EOF
server:
  listen: 127.0.0.1:$port
models:
  - name: $GATEWAY_MODEL
    deployments:
      - provider: openai_compatible
        model: "$UPSTREAM_MODEL"
        api_base: http://127.0.0.1:$MOCK_PORT/v1
        api_key: $KEY
EOF
    printf 'store:\n  url: "sqlite://%s"\n' "$TMP/$target.db" >>"$config"
    if [[ $target == gateway-keys || $target == gateway-redis ]]; then
        printf 'auth:\n  master_key: %s\n' "$MASTER" >>"$config"
    fi
    if [[ $target != gateway-ledger ]]; then
        printf 'ledger:\n  enabled: false\nmetrics:\n  enabled: false\n' >>"$config"
    else
        # Traces too: every call a span, exported to the mock, which doubles as a collector.
        printf 'otel:\n  endpoint: http://127.0.0.1:%s\n' "$MOCK_PORT" >>"$config"
    fi
    if [[ $target != gateway-audit ]]; then
        printf 'audit:\n  enabled: false\n' >>"$config"
    fi
    if [[ $target == gateway-guards ]]; then
        printf 'guards:\n  pii:\n    action: tokenize\n  secrets:\n    action: block\n  injection:\n    action: block\n  output:\n    secrets: redact\n    markdown_images: redact\n' >>"$config"
    fi
    if [[ $target == gateway-redis ]]; then
        printf 'redis:\n  url: "%s"\n  prefix: "switchyard-bench-%s"\n' "$REDIS_URL" "$$" >>"$config"
    fi
    RUST_LOG=${BENCH_RUST_LOG:-info} "$GATEWAY_BIN" serve --config "$config" >>"$TMP/gateway.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    python3 bench/ttfb.py wait "http://127.0.0.1:$port/health/readiness" --timeout 30 \
        || fail_with_log "$target did not become ready" "$TMP/gateway.log"
    PORT_OF[$target]=$port
    KEY_OF[$target]=$KEY
    if [[ $target == gateway-keys || $target == gateway-redis ]]; then
        KEY_OF[$target]=$(python3 bench/ttfb.py key "http://127.0.0.1:$port" --master "$MASTER") \
            || fail_with_log "$target: could not create a key" "$TMP/gateway.log"
    fi
    if [[ $target == gateway ]]; then GATEWAY_PID=$pid; fi
    PID_OF[$target]=$pid
    log "$target on 127.0.0.1:$port (pid $pid)"
}

GATEWAY_PID=
start_mock
if wants nginx; then start_nginx; fi
for target in gateway gateway-keys gateway-redis gateway-ledger gateway-audit gateway-guards; do
    if wants "$target"; then start_gateway "$target"; fi
done

url_of() {
    case $1 in
        direct) echo "http://127.0.0.1:$MOCK_PORT$CHAT_PATH" ;;
        nginx) echo "http://127.0.0.1:$NGINX_PORT$CHAT_PATH" ;;
        gateway*) echo "http://127.0.0.1:${PORT_OF[$1]}$CHAT_PATH" ;;
    esac
}
model_of() { if [[ $1 == gateway* ]]; then echo "$GATEWAY_MODEL"; else echo "$UPSTREAM_MODEL"; fi; }
key_of() { if [[ $1 == gateway* ]]; then echo "${KEY_OF[$1]}"; else echo "$KEY"; fi; }

# A fast wrong answer would look like a win, so every target must first answer properly.
for target in "${TARGETS[@]}"; do
    python3 bench/ttfb.py check "$(url_of "$target")" --model "$(model_of "$target")" \
        --key "$(key_of "$target")" --target "$target" >&2
done

# --- throughput and latency (wrk) ------------------------------------------------------------
run_wrk() {
    local target=$1 conc=$2 stream=$3 round=$4 threads=1 out line json
    out=$RAW_DIR/wrk-$target-c$conc-s$stream-r$round.txt
    # Two wrk threads at most: wrk shares the 2 cores with the mock and the proxy.
    if ((conc > 1)); then threads=2; fi
    local -a cmd=(env BENCH_MODEL="$(model_of "$target")" BENCH_STREAM="$stream" BENCH_KEY="$(key_of "$target")"
        BENCH_MAX_TOKENS="$((TOKENS > 64 ? TOKENS + 64 : 64))"
        wrk "-t$threads" "-c$conc" --timeout 5s -s bench/chat.lua "$(url_of "$target")")
    run_step "${cmd[@]}" -d "$WARMUP" >/dev/null
    local ticks_before ticks_after
    ticks_before=$(cpu_ticks "${PID_OF[$target]}")
    run_step "${cmd[@]}" -d "$DURATION" >"$out"
    ticks_after=$(cpu_ticks "${PID_OF[$target]}")
    if [[ $target == gateway* ]]; then
        # A line per request adds up (a million lines a round): keep what matters, then start
        # the log afresh (it is opened for appending, so the gateway writes on at the new end).
        grep -iE 'error|panic' "$TMP/gateway.log" | head -n 5 >>"$TMP/gateway-errors.log" || true
        : >"$TMP/gateway.log"
    fi
    line=$(grep '^BENCH_RESULT ' "$out") || die "no result from wrk for $target c=$conc stream=$stream"
    json=${line#BENCH_RESULT \{}
    printf '{"target":"%s","conc":%d,"stream":%s,"round":%d,"cpu_s":%s,%s\n' \
        "$target" "$conc" "$([[ $stream == 1 ]] && echo true || echo false)" "$round" \
        "$(awk -v t=$((ticks_after - ticks_before)) -v hz="$CLK_TCK" 'BEGIN {printf "%.3f", t / hz}')" "$json" \
        >>"$RAW_DIR/wrk.jsonl"
    log "$(printf '%-7s c=%-2s stream=%s round=%s  %s' "$target" "$conc" "$stream" "$round" \
        "$(grep -o '"rps":[0-9.]*' <<<"$line"), $(grep -o '"non2xx":[0-9]*' <<<"$line")")"
}

# Other work on the box (a cargo build, say) takes cores from the processes under test and shows
# up mostly in p99, so say so rather than let such a run pass for a clean one.
read -r LOAD1 _ </proc/loadavg
if awk -v l="$LOAD1" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
    log "warning: 1-minute load average is $LOAD1 on $(nproc) CPUs; expect noisy numbers"
fi
log "wrk: $DURATION per run (after $WARMUP warm-up), $ROUNDS round(s)"
for ((round = 1; round <= ROUNDS; round++)); do
    for stream in 0 1; do
        for conc in 1 64; do
            # Targets back to back for each load shape, so they see the same machine state.
            for target in "${TARGETS[@]}"; do
                run_wrk "$target" "$conc" "$stream" "$round"
            done
        done
    done
done

# --- stream time to first byte ---------------------------------------------------------------
log "stream TTFB: $TTFB_N sequential requests per target"
for target in "${TARGETS[@]}"; do
    run_step python3 bench/ttfb.py ttfb "$(url_of "$target")" --model "$(model_of "$target")" \
        --key "$(key_of "$target")" --n "$TTFB_N" --target "$target" >>"$RAW_DIR/ttfb.jsonl"
done

# --- gateway memory and report ---------------------------------------------------------------
RSS_MB=null
if [[ -n $GATEWAY_PID ]]; then
    kill -0 "$GATEWAY_PID" 2>/dev/null || fail_with_log "gateway died during the run" "$TMP/gateway.log"
    # VmHWM = peak resident set over the whole run, i.e. under the 64-connection load.
    RSS_MB=$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$GATEWAY_PID/status")
    grep -iE 'error|panic' "$TMP/gateway.log" >>"$TMP/gateway-errors.log" || true
    if [[ -s $TMP/gateway-errors.log ]]; then
        log "gateway logged errors (first lines):"
        head -n 5 "$TMP/gateway-errors.log" >&2
    fi
fi

cat >"$RAW_DIR/meta.json" <<EOF
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo none)",
  "duration": "$DURATION",
  "rounds": $ROUNDS,
  "warmup": "$WARMUP",
  "ttfb_n": $TTFB_N,
  "cpus": $(nproc),
  "cpu_model": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1 | tr -d '"')",
  "wrk": "$(wrk -v 2>&1 | head -n 1 | awk '{print $2}')",
  "nginx": "$("$NGINX" -v 2>&1 | sed 's#.*nginx/##')",
  "load_average_at_start": $LOAD1,
  "upstream_model": "$UPSTREAM_MODEL",
  "gateway_peak_rss_mb": $RSS_MB
}
EOF

mkdir -p "$OUT_DIR"
rm -rf "$OUT_DIR/raw"
cp -r "$RAW_DIR" "$OUT_DIR/raw"
echo
python3 bench/report.py "$OUT_DIR/raw" "$OUT_DIR/results.json"
