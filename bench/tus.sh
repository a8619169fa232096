#!/usr/bin/env bash
# TUS ingest benchmark: one 1 GiB upload by curl (a single PATCH) to our endpoint and to
# @tus/server + @tus/file-store (npm) in the same run, alternating, several rounds; prints MB/s
# (10^6 bytes/s) per run, the median of each, and the ratio ours / @tus/server (target >= 1.5).
#
# Env: P2P_BIN (default build/p2p-sharer; its node must serve TUS, else the TUS test harness
# TUS_HARNESS, default build/tests/test_tus_harness, is used), BENCH_TUS_BYTES (default 1 GiB),
# BENCH_TUS_ROUNDS (default 3), BENCH_NPM_DIR (npm cache dir, default build/npm).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${P2P_BIN:-$ROOT/build/p2p-sharer}
HARNESS=${TUS_HARNESS:-$ROOT/build/tests/test_tus_harness}
BYTES=${BENCH_TUS_BYTES:-1073741824}
ROUNDS=${BENCH_TUS_ROUNDS:-3}
NPM_DIR=${BENCH_NPM_DIR:-$ROOT/build/npm}

command -v node >/dev/null || { echo "bench/tus.sh: node (Node.js) is required" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench/tus.sh: curl is required" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/p2p-bench-tus.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- reference server: @tus/server 2.4.5 + @tus/file-store 2.1.1 (TUS.md §4) ---
if [ ! -d "$NPM_DIR/node_modules/@tus/server" ] || [ ! -d "$NPM_DIR/node_modules/@tus/file-store" ]; then
    mkdir -p "$NPM_DIR"
    (cd "$NPM_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        npm install --no-audit --no-fund --loglevel=error @tus/server@2.4.5 @tus/file-store@2.1.1 \
            tus-js-client@4.3.1 >/dev/null)
fi
cat > "$WORK/ref-server.mjs" <<'EOF'
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'
import fs from 'node:fs'
const dir = process.argv[2]
fs.mkdirSync(dir, { recursive: true })
const server = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) })
const s = server.listen({ host: '127.0.0.1', port: 0 }, () => console.log(`PID ${process.pid}\nLISTENING 127.0.0.1:${s.address().port}`))
EOF
ln -s "$NPM_DIR/node_modules" "$WORK/node_modules"

echo "bench/tus.sh: generating $BYTES random bytes" >&2
head -c "$BYTES" /dev/urandom > "$WORK/payload.bin"

wait_port() { # file -> port
    local f=$1 i
    for i in $(seq 1 100); do
        local p
        p=$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$f" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.1
    done
    echo "server did not start: $(cat "$f")" >&2
    return 1
}

# --- our endpoint: the node if its binary serves TUS, else the harness (same module) ---
start_ours() {
    rm -rf "$WORK/ours"; mkdir -p "$WORK/ours"
    local mode=harness
    if [ -x "$BIN" ] && "$BIN" help 2>/dev/null | grep -q '^  p2p-sharer node'; then
        cat > "$WORK/ours/node.yaml" <<EOF
download_dir: "$WORK/ours/data"
trackers: ["127.0.0.1:9"]
log: {level: "warn"}
EOF
        "$BIN" node -c "$WORK/ours/node.yaml" --listen 127.0.0.1:0 > "$WORK/ours/out" 2>"$WORK/ours/err" &
        OURS_PID=$!
        PIDS+=("$OURS_PID")
        local port
        if port=$(wait_port "$WORK/ours/out") &&
            curl -sf -X OPTIONS -o /dev/null -D - "http://127.0.0.1:$port/files/" | grep -qi '^tus-version'; then
            OURS_PORT=$port; OURS_MODE=node; return 0
        fi
        kill "$OURS_PID" 2>/dev/null || true; wait "$OURS_PID" 2>/dev/null || true
    fi
    [ -x "$HARNESS" ] || { echo "no TUS endpoint: build p2p-sharer or test_tus_harness" >&2; exit 1; }
    "$HARNESS" --dir "$WORK/ours/up" --complete "$WORK/ours/done" > "$WORK/ours/out" 2>&1 &
    OURS_PID=$!
    PIDS+=("$OURS_PID")
    OURS_PORT=$(wait_port "$WORK/ours/out")
    OURS_MODE=$mode
}

start_ref() {
    rm -rf "$WORK/ref"; mkdir -p "$WORK/ref"
    node "$WORK/ref-server.mjs" "$WORK/ref/files" > "$WORK/ref/out" 2>&1 &
    REF_PID=$!
    PIDS+=("$REF_PID")
    REF_PORT=$(wait_port "$WORK/ref/out")
    # the server's own pid (the one to measure and to stop)
    REF_PID=$(sed -n 's/^PID //p' "$WORK/ref/out" | head -1)
    PIDS+=("$REF_PID")
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# One upload: POST (creation), then a single PATCH of the whole payload. Prints MB/s and the
# server's CPU seconds during the PATCH (user + system, all threads).
one_upload() { # port pid
    local port=$1 pid=$2 loc out code t c0 c1
    loc=$(curl -s -D - -o /dev/null -X POST -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $BYTES" \
        -H "Upload-Metadata: filename $(printf 'bench.bin' | base64)" "http://127.0.0.1:$port/files/" |
        tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    [ -n "$loc" ] || { echo "creation failed on port $port" >&2; return 1; }
    case "$loc" in http*) ;; *) loc="http://127.0.0.1:$port$loc" ;; esac
    c0=$(cpu_ticks "$pid")
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -X PATCH -H 'Tus-Resumable: 1.0.0' \
        -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' -H 'Expect:' \
        -T "$WORK/payload.bin" "$loc")
    c1=$(cpu_ticks "$pid")
    code=${out%% *}; t=${out#* }
    [ "$code" = 204 ] || { echo "PATCH answered $code on port $port" >&2; return 1; }
    awk -v b="$BYTES" -v t="$t" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f %.2f\n", b / 1e6 / t, c / hz }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

OURS=() REF=() OURS_CPU=() REF_CPU=()
for r in $(seq 1 "$ROUNDS"); do
    start_ours; sync
    read -r mbs cpu < <(one_upload "$OURS_PORT" "$OURS_PID")
    OURS+=("$mbs"); OURS_CPU+=("$cpu")
    kill "$OURS_PID"; wait "$OURS_PID" 2>/dev/null || true
    rm -rf "$WORK/ours"
    start_ref; sync
    read -r mbs cpu < <(one_upload "$REF_PORT" "$REF_PID")
    REF+=("$mbs"); REF_CPU+=("$cpu")
    kill "$REF_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$REF_PID" 2>/dev/null || break; sleep 0.1; done
    rm -rf "$WORK/ref"
    echo "round $r: p2p-sharer ($OURS_MODE) ${OURS[-1]} MB/s (${OURS_CPU[-1]} CPU-s)," \
         "@tus/server ${REF[-1]} MB/s (${REF_CPU[-1]} CPU-s)"
done
om=$(printf '%s\n' "${OURS[@]}" | median)
rm_=$(printf '%s\n' "${REF[@]}" | median)
oc=$(printf '%s\n' "${OURS_CPU[@]}" | median)
rc=$(printf '%s\n' "${REF_CPU[@]}" | median)
ratio=$(awk -v a="$om" -v b="$rm_" 'BEGIN { printf "%.2f", a / b }')
echo "TUS single-PATCH upload of $BYTES bytes, curl, 127.0.0.1, median of $ROUNDS:"
echo "  p2p-sharer (includes piece hashing, seed, move into complete_dir): $om MB/s"
echo "  @tus/server 2.4.5 + @tus/file-store 2.1.1:                         $rm_ MB/s"
echo "  ratio: ${ratio}x (target >= 1.5x)"
echo "  server CPU during the PATCH (median): p2p-sharer $oc s, @tus/server $rc s"
