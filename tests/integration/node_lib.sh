# Helpers for the node end-to-end tests (sourced). Needs P2P_BIN, curl, jq, cmp.
# Everything listens on 127.0.0.1 with ephemeral ports; every process started here is killed by
# its PID on exit (the PIDs are the services' own, so tests can signal them), every wait loop is
# bounded, and each test works in its own mktemp directory.
set -euo pipefail

: "${P2P_BIN:?P2P_BIN must point at the p2p-sharer binary}"
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

W=$(mktemp -d)
PIDS=()
declare -A NODE_PID NODE_ADDR NODE_DIR
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    # a sanitizer report in any service log (ASan build) fails the test
    local san
    san=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$W"/*.err 2>/dev/null || true)
    if [ -n "$san" ]; then
        echo "FAIL: sanitizer report in: $san" >&2
        FAILS=$((${FAILS:-0} + 1))
    fi
    if [ "${FAILS:-0}" -ne 0 ] || [ "${KEEP_LOGS:-0}" = 1 ]; then
        for f in "$W"/*.err; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f") (last 40 lines)" >&2
            tail -n 40 "$f" >&2
        done
    fi
    rm -rf "$W"
    [ "${FAILS:-0}" -eq 0 ] || exit 1
}
trap cleanup EXIT

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
die() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); exit 1; }

# wait_line FILE PID: waits (<= 10 s) for "LISTENING host:port" in FILE; prints host:port.
wait_line() {
    local file=$1 pid=$2 i
    for i in $(seq 1 200); do
        grep -q '^LISTENING ' "$file" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    sed -n 's/^LISTENING //p' "$file" | head -n 1
}

# start_tracker [NAME]: sets TADDR (host:port) and TPID. Short sessions keep tests fast.
start_tracker() {
    local name=${1:-tracker}
    cat > "$W/$name.yaml" <<EOF
session_expire: "4s"
session_check_interval: "1s"
log: {level: "debug"}
EOF
    "$P2P_BIN" tracker -c "$W/$name.yaml" --listen "${TRACKER_LISTEN:-127.0.0.1:0}" \
        > "$W/$name.out" 2>> "$W/$name.err" &
    TPID=$!
    PIDS+=("$TPID")
    TADDR=$(wait_line "$W/$name.out" "$TPID")
    [ -n "$TADDR" ] || { cat "$W/$name.err" >&2; die "tracker $name did not start"; }
}

# node_config NAME [EXTRA_YAML]: writes $W/NAME.yaml (dirs under $W/NAME).
node_config() {
    local name=$1 extra=${2:-}
    mkdir -p "$W/$name/dl"
    NODE_DIR[$name]="$W/$name/dl"
    cat > "$W/$name.yaml" <<EOF
download_dir: "$W/$name/dl"
session_expire: "4s"
max_download_concurrency: ${NODE_MAX_DL:-8}
max_peer_concurrency: 4
log: {level: "${NODE_LOG_LEVEL:-debug}"}
$extra
EOF
}

# start_node NAME [EXTRA_YAML]: runs a node (config written unless $W/NAME.yaml exists and
# EXTRA_YAML is empty), sets NODE_PID[NAME] and NODE_ADDR[NAME].
start_node() {
    local name=$1 extra=${2:-}
    if [ ! -f "$W/$name.yaml" ] || [ -n "$extra" ]; then node_config "$name" "$extra"; fi
    NODE_DIR[$name]="$W/$name/dl"
    : > "$W/$name.out"
    "$P2P_BIN" node -c "$W/$name.yaml" --listen 127.0.0.1:0 \
        > "$W/$name.out" 2>> "$W/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    NODE_PID[$name]=$pid
    local addr
    addr=$(wait_line "$W/$name.out" "$pid")
    [ -n "$addr" ] || { cat "$W/$name.err" >&2; die "node $name did not start"; }
    NODE_ADDR[$name]=$addr
}

# api NAME METHOD PATH [BODY [curl args...]]: sets CODE and BODY.
api() {
    local name=$1 m=$2 p=$3
    shift 3
    local args=(-s -o "$W/body" -w '%{http_code}' --max-time 15 -X "$m")
    if [ $# -gt 0 ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$1")
        shift
    fi
    CODE=$(curl "${args[@]}" "$@" "http://${NODE_ADDR[$name]}$p") || CODE="curl-error"
    BODY=$(cat "$W/body" 2>/dev/null || true)
}

# expect WHAT STATUS [JQ_FILTER]: checks the last api call.
expect() {
    local what=$1 status=$2 filter=${3:-}
    if [ "$CODE" != "$status" ]; then
        fail "$what: status $CODE, want $status; body: $BODY"
        return 1
    fi
    if [ -n "$filter" ] && ! printf '%s' "$BODY" | jq -e "$filter" >/dev/null 2>&1; then
        fail "$what: body does not satisfy '$filter': $BODY"
        return 1
    fi
    ok "$what"
}

ERRJSON='(.code|test("^E00[1-9]$")) and (.msg|type=="string" and length>0)'

# task_state NAME ID: prints the task's state ("" if unknown).
task_state() {
    curl -s --max-time 5 "http://${NODE_ADDR[$1]}/v1/task/$2" 2>/dev/null | jq -r '.state // ""' \
        2>/dev/null || true
}

# wait_state NAME ID STATE SECONDS: waits for the state; fails on "failed"/timeout.
wait_state() {
    local name=$1 id=$2 want=$3 secs=$4 s="" i
    for i in $(seq 1 $((secs * 10))); do
        s=$(task_state "$name" "$id")
        [ "$s" = "$want" ] && return 0
        if [ "$s" = failed ] && [ "$want" != failed ]; then break; fi
        sleep 0.1
    done
    fail "$name: task $id is '$s', want '$want' (after ${secs}s): $(curl -s --max-time 5 \
        "http://${NODE_ADDR[$name]}/v1/task/$id")"
    return 1
}

# make_file PATH KIB: random content.
make_file() {
    head -c $(($2 * 1024)) /dev/urandom > "$1"
}

# seed_file FILE DIR [gen args...]: writes DIR/<name>.seed for FILE, prints the infoHash.
seed_file() {
    local file=$1 dir=$2
    shift 2
    "$P2P_BIN" gen --filePath "$file" --seedPath "$dir" --tracker "$TADDR" "$@" > "$W/gen.out" \
        2>&1 || { cat "$W/gen.out" >&2; die "gen failed"; }
    local seed
    seed="$dir/$(basename "$file").seed"
    jq -r '.infoHash // empty' "$seed"
}

# place_seeded NAME FILE [gen args...]: puts FILE, its seed and .ok in node NAME's download_dir
# (before start), prints the infoHash. Runs in $(...): it only writes files.
place_seeded() {
    local name=$1 file=$2
    shift 2
    local dir="$W/$name/dl"
    [ -f "$W/$name.yaml" ] || node_config "$name"
    cp "$file" "$dir/"
    local ih
    ih=$(seed_file "$dir/$(basename "$file")" "$dir" "$@")
    : > "$dir/$(basename "$file").ok"
    printf '%s\n' "$ih"
}

# metric NAME KEY: prints a counter value from /metrics (0 if absent).
metric() {
    curl -s --max-time 5 "http://${NODE_ADDR[$1]}/metrics" | awk -v k="$2" '$1==k {print $2; f=1} END {if (!f) print 0}'
}

# popcount FILE: number of set bits in a file (a saved .bitfield).
popcount() {
    od -An -v -tu1 "$1" | awk '{for (i = 1; i <= NF; i++) { v = $i; while (v) { c += v % 2; v = int(v / 2) } }} END {print c + 0}'
}

# pieces_done NAME ID: prints piecesDone (0 if unknown).
pieces_done() {
    curl -s --max-time 5 "http://${NODE_ADDR[$1]}/v1/task/$2" 2>/dev/null | jq -r '.piecesDone // 0' \
        2>/dev/null || echo 0
}

# wait_pieces NAME ID N SECONDS: waits until piecesDone >= N.
wait_pieces() {
    local i p=0
    for i in $(seq 1 $(($4 * 10))); do
        p=$(pieces_done "$1" "$2")
        [ "$p" -ge "$3" ] && return 0
        sleep 0.1
    done
    fail "$1: only $p pieces after $4 s (want $3)"
    return 1
}

# wait_exit PID SECONDS: waits for a child process to end; sets EXIT_ST to its exit status (or
# "timeout"). Not in $(...): only this shell can wait for its children.
wait_exit() {
    local i
    EXIT_ST=timeout
    for i in $(seq 1 $(($2 * 10))); do
        if ! kill -0 "$1" 2>/dev/null; then
            EXIT_ST=0
            wait "$1" 2>/dev/null || EXIT_ST=$?
            return 0
        fi
        sleep 0.1
    done
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
}
