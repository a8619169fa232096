# Helpers for the tracker end-to-end tests (sourced). Needs P2P_BIN, curl and jq.
# Every tracker started here listens on 127.0.0.1:0 and is killed by PID on exit.
set -euo pipefail

: "${P2P_BIN:?P2P_BIN must point at the p2p-sharer binary}"
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required (scripts/deps.sh installs it)" >&2; exit 1; }

W=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

# start_tracker NAME CONFIG_TEXT: runs a tracker, sets TPID and BASE (http://127.0.0.1:port).
start_tracker() {
    local name=$1
    printf '%s\n' "$2" > "$W/$name.yaml"
    # --foreground: timeout must not signal the group too (a second SIGTERM means "exit now").
    timeout --foreground 240 "$P2P_BIN" tracker -c "$W/$name.yaml" --listen 127.0.0.1:0 \
        > "$W/$name.out" 2> "$W/$name.err" &
    TPID=$!
    PIDS+=("$TPID")
    local i
    for i in $(seq 1 200); do
        grep -q '^LISTENING ' "$W/$name.out" 2>/dev/null && break
        kill -0 "$TPID" 2>/dev/null || break
        sleep 0.05
    done
    local addr
    addr=$(sed -n 's/^LISTENING //p' "$W/$name.out")
    if [ -z "$addr" ]; then
        echo "tracker $name did not start:" >&2
        cat "$W/$name.err" >&2
        exit 1
    fi
    BASE="http://$addr"
}

# call METHOD PATH [BODY [curl args...]]: sets CODE and BODY.
call() {
    local m=$1 p=$2
    shift 2
    local args=(-s -o "$W/body" -w '%{http_code}' --max-time 10 -X "$m")
    if [ $# -gt 0 ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$1")
        shift
    fi
    CODE=$(curl "${args[@]}" "$@" "$BASE$p") || CODE="curl-error-$?"
    BODY=$(cat "$W/body" 2>/dev/null || true)
}

# expect WHAT STATUS [JQ_BOOLEAN_FILTER]: checks the last call.
expect() {
    local what=$1 status=$2 filter=${3:-}
    if [ "$CODE" != "$status" ]; then
        fail "$what: status $CODE, want $status; body: $BODY"
        return
    fi
    if [ -n "$filter" ] && ! printf '%s' "$BODY" | jq -e "$filter" >/dev/null 2>&1; then
        fail "$what: body does not satisfy '$filter': $BODY"
        return
    fi
    ok "$what"
}

# An error body must be {"code":"E00x","msg":"..."}.
ERRJSON='(.code|test("^E00[1-9]$")) and (.msg|type=="string" and length>0)'
ACK='.code=="E000" and .msg=="success"'

# hb NODE ADDR [ZONE]: a heartbeat.
hb() {
    local zone=""
    [ $# -ge 3 ] && zone=",\"zone\":\"$3\""
    call POST /v1/heartBeat "{\"nodeId\":\"$1\",\"addr\":\"$2\"$zone}"
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
}
