#!/usr/bin/env bash
# How much work the gateway does per request, as a count that does not move with the machine:
# user-space instructions per request, counted by valgrind's callgrind over N requests after a
# warm-up, for a plain and a streamed (20-token) chat call relayed to the mock provider, first on
# the bare path (no keys, no ledger), then with keys required and the calling key under
# in-process rate limits (requests, tokens, calls in flight: every check runs, none refuses),
# then with the ledger, metrics and traces on (each call priced, its spend record queued and
# written to SQLite, recorded in the Prometheus metrics, and its spans exported over OTLP/HTTP
# to the mock), then with the audit log on (each call's record
# queued and appended to the Merkle tree in SQLite, checkpoints signed), then with the guards on
# (PII tokenized, secrets blocked, injections blocked (every tier), secrets and image links
# redacted in answers), then with the answer cache on (in memory): every call a hit (the same
# prompt each time) and every call a miss (a prompt of its own, answered upstream and kept).
#
#   bench/instructions.sh            # from the repo root; prints one line per call kind
#
# Wall-clock figures (bench/run.sh) swing with whatever else the machine does; this one stays
# within half a percent run after run for the same binary, so it shows what a change to the
# request path costs or saves. It leaves out the kernel (sockets, scheduling), which
# bench/run.sh includes.
#
# Environment:
#   BENCH_N           requests counted per call kind (default 2000)
#   BENCH_SKIP_BUILD  1 = use the existing target/release binaries as they are
#   BENCH_KINDS       the call kinds to count (default: all ten, "plain stream plain-keys
#                     stream-keys plain-ledger stream-ledger plain-audit stream-audit
#                     plain-guards stream-guards plain-cache-hit stream-cache-hit
#                     plain-cache-miss stream-cache-miss")
#   BENCH_RUST_LOG    the gateway's log filter (default info, as it ships: a line per request)
#   BENCH_KEEP        a directory to keep the callgrind profiles in (callgrind.plain,
#                     callgrind.stream), for callgrind_annotate or kcachegrind
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${BENCH_N:-2000}
KEY=bench-key

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'instructions: %s\n' "$*" >&2; exit 1; }

if ! command -v valgrind >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "valgrind missing; install with: sudo apt-get install -y valgrind"
    log "installing valgrind"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries"
    cargo build --release -p switchyard-server -p switchyard-mock
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-instructions.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

MOCK_PORT=$(free_port)
target/release/switchyard-mock --listen "127.0.0.1:$MOCK_PORT" >"$TMP/mock.log" 2>&1 &
PIDS+=("$!")
python3 bench/ttfb.py wait "http://127.0.0.1:$MOCK_PORT/" --any-status --timeout 10 \
    || die "the mock did not start"

GATEWAY_PORT=$(free_port)
MASTER=bench-master-key-0123456789
# The gateway's config: `none` is the bare path; `keys` requires keys; `ledger` records spend
# (store: SQLite in $TMP).
write_config() {
    cat >"$TMP/gateway.yaml" <<YAML
server:
  listen: 127.0.0.1:$GATEWAY_PORT
models:
  - name: bench
    deployments:
      - provider: openai_compatible
        model: "echo?tokens=20"
        api_base: http://127.0.0.1:$MOCK_PORT/v1
        api_key: $KEY
YAML
    cat >>"$TMP/gateway.yaml" <<YAML
store:
  url: "sqlite://$TMP/store-$1.db"
YAML
    if [[ $1 == keys ]]; then
        printf 'auth:\n  master_key: %s\n' "$MASTER" >>"$TMP/gateway.yaml"
    fi
    if [[ $1 != ledger ]]; then
        printf 'ledger:\n  enabled: false\nmetrics:\n  enabled: false\n' >>"$TMP/gateway.yaml"
    else
        # Traces too: every call a span, exported to the mock, which doubles as a collector.
        printf 'otel:\n  endpoint: http://127.0.0.1:%s\n' "$MOCK_PORT" >>"$TMP/gateway.yaml"
    fi
    if [[ $1 != audit ]]; then
        printf 'audit:\n  enabled: false\n' >>"$TMP/gateway.yaml"
    fi
    if [[ $1 == cache ]]; then
        printf 'cache:\n  enabled: true\n' >>"$TMP/gateway.yaml"
    fi
    if [[ $1 == guards ]]; then
        printf 'guards:\n  pii:\n    action: tokenize\n  secrets:\n    action: block\n  injection:\n    action: block\n  output:\n    secrets: redact\n    markdown_images: redact\n' >>"$TMP/gateway.yaml"
    fi
}
URL="http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions"

count() {
    local kind=$1 flag=$2 auth=$3 out=$TMP/callgrind.$1 key=$KEY
    [[ " ${BENCH_KINDS:-$kind} " == *" $kind "* ]] || return 0
    write_config "$auth"
    RUST_LOG=${BENCH_RUST_LOG:-info} valgrind --tool=callgrind --callgrind-out-file="$out" \
        target/release/switchyard serve --config "$TMP/gateway.yaml" >"$TMP/valgrind-$kind.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    python3 bench/ttfb.py wait "http://127.0.0.1:$GATEWAY_PORT/health/readiness" --timeout 120 \
        || { tail -n 20 "$TMP/valgrind-$kind.log" >&2; die "the gateway did not start under valgrind"; }
    if [[ $auth == keys ]]; then
        key=$(python3 bench/ttfb.py key "http://127.0.0.1:$GATEWAY_PORT" --master "$MASTER") \
            || die "could not create a key"
    fi
    # Warm-up (connections, pools, lazy statics, the key's cache entry), then count exactly N
    # requests.
    python3 bench/ttfb.py load "$URL" --model bench --key "$key" --n 200 $flag
    callgrind_control --zero "$pid" >/dev/null 2>&1
    python3 bench/ttfb.py load "$URL" --model bench --key "$key" --n "$N" $flag --unique-from 200
    callgrind_control --dump "$pid" >/dev/null 2>&1
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    local total
    total=$(sed -n 's/^totals: //p' "$out.1")
    [[ -n $total ]] || die "no callgrind totals for $kind"
    if [[ -n ${BENCH_KEEP:-} ]]; then mkdir -p "$BENCH_KEEP" && cp "$out.1" "$BENCH_KEEP/callgrind.$kind"; fi
    printf '%-18s %8d instructions per request (user space, %d requests)\n' "$kind" $((total / N)) "$N"
}

log "counting $N requests per call kind under callgrind (slow: valgrind runs the gateway ~50x slower)"
count plain "" none
count stream --stream none
count plain-keys "" keys
count stream-keys --stream keys
count plain-ledger "" ledger
count stream-ledger --stream ledger
count plain-audit "" audit
count stream-audit --stream audit
count plain-guards "" guards
count stream-guards --stream guards
count plain-cache-hit "" cache
count stream-cache-hit --stream cache
count plain-cache-miss --unique cache
count stream-cache-miss "--stream --unique" cache
