#!/usr/bin/env bash
# The main job, end to end on one machine: a tracker and three nodes on 127.0.0.1, a 256 MiB file
# seeded by node 1 and downloaded by nodes 2 and 3 with live progress, hashes checked.
# Stops everything on Ctrl-C or when done. Usage: scripts/demo.sh [SIZE_MIB]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${P2P_BIN:-$ROOT/build/p2p-sharer}
SIZE_MIB=${1:-256}
[ -x "$BIN" ] || { echo "demo: $BIN not built; run 'make' first" >&2; exit 1; }
command -v jq >/dev/null || { echo "demo: jq missing; run scripts/deps.sh" >&2; exit 1; }

W=$(mktemp -d /tmp/p2p-demo.XXXXXX)
PIDS=()
cleanup() {
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, stopping"; exit 130' INT TERM

# start NAME ARGS...: runs the binary in the background, waits for its LISTENING line,
# and sets PORT.
start() {
    local name=$1; shift
    "$BIN" "$@" >"$W/$name.out" 2>"$W/$name.log" &
    PIDS+=($!)
    local pid=$! i
    for i in $(seq 1 100); do
        PORT=$(sed -n 's/^LISTENING .*:\([0-9]*\)$/\1/p' "$W/$name.out" | head -n1)
        [ -n "$PORT" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "demo: $name did not start; its log:" >&2
    cat "$W/$name.log" >&2
    exit 1
}

echo "== p2p-sharer demo in $W"
cat >"$W/tracker.yaml" <<EOF
web: {listen_address: "127.0.0.1:0"}
session_expire: "10s"
session_check_interval: "3s"
EOF
start tracker tracker -c "$W/tracker.yaml"
TRACKER="127.0.0.1:$PORT"
echo "tracker   http://$TRACKER"

for i in 1 2 3; do
    mkdir -p "$W/node$i"
    cat >"$W/node$i.yaml" <<EOF
web: {listen_address: "127.0.0.1:0"}
download_dir: "$W/node$i"
trackers: ["$TRACKER"]
EOF
done

echo "making a ${SIZE_MIB} MiB file and its seed"
head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$W/node1/demo.bin"
"$BIN" gen --tracker "$TRACKER" --filePath "$W/node1/demo.bin" --seedPath "$W/node1" >/dev/null
: >"$W/node1/demo.bin.ok"
WANT=$(sha256sum "$W/node1/demo.bin" | cut -d' ' -f1)

declare -A NODE
for i in 1 2 3; do
    start "node$i" node -c "$W/node$i.yaml"
    NODE[$i]="127.0.0.1:$PORT"
    echo "node$i     http://${NODE[$i]}"
done

HASH=$(jq -r .infoHash "$W/node1/demo.bin.seed")
SEED_URL="http://${NODE[1]}/v2/seed/$HASH"
T0=$(date +%s.%N)
for i in 2 3; do
    curl -fsS -X POST -H 'Content-Type: application/json' \
        -d "{\"seedFile\":\"$SEED_URL\"}" "http://${NODE[$i]}/v1/task" >/dev/null
done
echo "task $HASH started on node2 and node3"

deadline=$(( $(date +%s) + 300 ))
while :; do
    line="" done_all=1
    for i in 2 3; do
        t=$(curl -fsS "http://${NODE[$i]}/v1/task/$HASH" || echo '{}')
        st=$(jq -r '.state // "?"' <<<"$t")
        pd=$(jq -r '.piecesDone // 0' <<<"$t")
        pc=$(jq -r '.pieceCount // 0' <<<"$t")
        sp=$(jq -r '(.speed // 0) / 1048576 | floor' <<<"$t")
        line+=$(printf "  node%s %-11s %4s/%-4s pieces %5s MiB/s" "$i" "$st" "$pd" "$pc" "$sp")
        [ "$st" = seeding ] || done_all=0
        [ "$st" = failed ] && { echo; echo "demo: node$i failed: $t" >&2; exit 1; }
    done
    printf '\r%s' "$line"
    [ $done_all = 1 ] && break
    [ "$(date +%s)" -lt $deadline ] || { echo; echo "demo: timed out" >&2; exit 1; }
    sleep 0.2
done
T1=$(date +%s.%N)
echo
for i in 2 3; do
    got=$(sha256sum "$W/node$i/demo.bin" | cut -d' ' -f1)
    if [ "$got" = "$WANT" ]; then echo "node$i sha256 ok ($got)"; else
        echo "node$i sha256 MISMATCH: $got != $WANT" >&2; exit 1; fi
done
awk -v a="$T0" -v b="$T1" -v m="$SIZE_MIB" \
    'BEGIN { printf "both downloads done in %.2f s (%.0f MiB/s per node)\n", b-a, m/(b-a) }'
echo "stopping"
