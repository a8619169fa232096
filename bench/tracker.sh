#!/usr/bin/env bash
# Tracker load benchmark (issue 3): wrk drives heartbeat + report + peers for 10,000 simulated
# nodes over 100 files of 1,000 pieces (each node in 10 files) against p2p-sharer's tracker, and
# announces for the same (node, file) pairs against Debian's opentracker as the anchor, in the
# same run. Prints req/s, p50/p99 latency, tracker CPU per request, RSS, and the ratios.
# Env: P2P_BIN (default build/p2p-sharer), DURATION (10s), THREADS (2), CONNS (50).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
P2P_DEPS_EXTRA="wrk opentracker" "$ROOT/scripts/deps.sh"
BIN=${P2P_BIN:-$ROOT/build/p2p-sharer}
if [ ! -x "$BIN" ]; then (cd "$ROOT" && make build >/dev/null); fi
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
PAIRS=100000            # 10,000 nodes x 10 files each
PIECES=1000
TCK=$(getconf CLK_TCK)
LOAD=$(cut -d' ' -f1 /proc/loadavg)

W=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# run_wrk SCRIPT URL MODE DURATION: prints the RESULT line's fields as shell assignments.
run_wrk() {
    if ! wrk -t"$THREADS" -c"$CONNS" -d"$4" --latency -s "$1" "$2" -- "$3" "$THREADS" \
            > "$W/wrk.out" 2>&1; then
        cat "$W/wrk.out" >&2
        return 1
    fi
    sed -n 's/^RESULT //p' "$W/wrk.out" | tr ' ' '\n'
}

# measure NAME PID SCRIPT URL: the timed "mix" run; sets REQ, RPS, P50, P99, CPU_US, RSS_MB, ERR.
measure() {
    local c0 c1 requests duration_us p50_us p99_us errors sock_errors
    c0=$(cpu_ticks "$2")
    eval "$(run_wrk "$3" "$4" mix "$DURATION")"
    c1=$(cpu_ticks "$2")
    REQ=$requests
    ERR=$errors
    SOCK=$sock_errors
    RPS=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN {printf "%.0f", r / (d / 1e6)}')
    P50=$(awk -v v="$p50_us" 'BEGIN {printf "%.2f", v / 1000}')
    P99=$(awk -v v="$p99_us" 'BEGIN {printf "%.2f", v / 1000}')
    CPU_US=$(awk -v c=$((c1 - c0)) -v t="$TCK" -v r="$requests" \
        'BEGIN {printf "%.2f", c / t / r * 1e6}')
    CPU_PCT=$(awk -v c=$((c1 - c0)) -v t="$TCK" -v d="$duration_us" \
        'BEGIN {printf "%.0f", c / t / (d / 1e6) * 100}')
    RSS_MB=$(awk -v k="$(rss_kb "$2")" 'BEGIN {printf "%.1f", k / 1024}')
    echo "  $1: $REQ requests, $RPS req/s, p50 $P50 ms, p99 $P99 ms," \
         "$CPU_US us CPU/req ($CPU_PCT% of a core), RSS $RSS_MB MiB," \
         "$ERR HTTP errors/timeouts, $SOCK socket errors/closes" >&2
}

echo "== p2p-sharer tracker ($BIN)" >&2
cat > "$W/tracker.yaml" <<CFG
session_expire: "600s"
session_check_interval: "10s"
max_peers: 50
log: {level: "warn"}
CFG
"$BIN" tracker -c "$W/tracker.yaml" --listen 127.0.0.1:0 > "$W/tracker.out" 2> "$W/tracker.err" &
TPID=$!
PIDS+=("$TPID")
for _ in $(seq 1 100); do grep -qs "^LISTENING " "$W/tracker.out" && break; sleep 0.05; done
TURL="http://$(sed -n 's/^LISTENING //p' "$W/tracker.out")"
[ "$TURL" != "http://" ] || { cat "$W/tracker.err" >&2; exit 1; }
RSS0=$(rss_kb "$TPID")
heap() { curl -s "$TURL/metrics" | awk '/^p2p_tracker_heap_inuse_bytes / {print $2}'; }
HEAP0=$(heap)
holders=0
for _ in 1 2 3 4; do
    run_wrk "$HERE/tracker.lua" "$TURL" warm 8s > /dev/null
    holders=$(curl -s "$TURL/metrics" | awk '/^p2p_tracker_holders / {print $2}')
    [ "$holders" -ge "$PAIRS" ] && break
done
RSS1=$(rss_kb "$TPID")
HEAP1=$(heap)
nodes=$(curl -s "$TURL/metrics" | awk '/^p2p_tracker_nodes_alive / {print $2}')
echo "  loaded: $nodes nodes, $holders (node, file) pairs" >&2
HEAP_PER_PAIR=$(awk -v a="$HEAP0" -v b="$HEAP1" -v p="$holders" 'BEGIN {printf "%.0f", (b - a) / p}')
BYTES_PER_PAIR=$(awk -v a="$RSS0" -v b="$RSS1" -v p="$holders" \
    'BEGIN {printf "%.0f", (b - a) * 1024 / p}')
measure "p2p-sharer" "$TPID" "$HERE/tracker.lua" "$TURL"
O_REQ=$REQ O_RPS=$RPS O_P50=$P50 O_P99=$P99 O_CPU=$CPU_US O_PCT=$CPU_PCT O_RSS=$RSS_MB
O_ERR=$ERR
kill "$TPID"

echo "== opentracker (anchor)" >&2
mkdir -p "$W/ot"
# The 100 info hashes of opentracker.lua: 8 hex digits of the file number, then "ab" x 16.
AB16=abababababababababababababababab
for f in $(seq 0 99); do printf '%08x%s\n' "$f" "$AB16"; done > "$W/ot/whitelist.txt"
OTPORT=
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then OTPORT=$p; break; fi
done
[ -n "$OTPORT" ] || { echo "no free port for opentracker" >&2; exit 1; }
# opentracker chroots to rootdir and drops privileges, hence the chroot-relative whitelist path.
cat > "$W/ot/opentracker.conf" <<CFG
listen.tcp 127.0.0.1:$OTPORT
access.whitelist /whitelist.txt
tracker.rootdir $W/ot
CFG
opentracker -f "$W/ot/opentracker.conf" > "$W/ot.log" 2>&1 &
OPID=$!
PIDS+=("$OPID")
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$OTPORT") 2>/dev/null && break; sleep 0.05; done
OURL="http://127.0.0.1:$OTPORT"
IH0=$(printf '%08x%s' 0 "$AB16" | sed 's/../%&/g')
probe=$(curl -s "$OURL/announce?info_hash=$IH0&peer_id=-WR0001-999999999999&port=9999&left=1" |
        tr -d '\0')
case "$probe" in *failure*|"") echo "opentracker rejects announces: $probe" >&2; exit 1;; esac
run_wrk "$HERE/opentracker.lua" "$OURL" warm 8s > /dev/null
measure "opentracker" "$OPID" "$HERE/opentracker.lua" "$OURL"
A_REQ=$REQ A_RPS=$RPS A_P50=$P50 A_P99=$P99 A_CPU=$CPU_US A_PCT=$CPU_PCT A_RSS=$RSS_MB
A_ERR=$ERR

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
cat <<TABLE

Tracker load: 10,000 nodes x 10 files (100 files, 1,000 pieces),
wrk -t$THREADS -c$CONNS -d$DURATION, $(nproc) cores, load average before: $LOAD
| tracker | requests | req/s | p50 ms | p99 ms | CPU us/req | CPU % of a core | RSS MiB | errors |
|---|---|---|---|---|---|---|---|---|
| p2p-sharer (heartbeat/report/peers 1:1:1) | $O_REQ | $O_RPS | $O_P50 | $O_P99 | $O_CPU \
| $O_PCT | $O_RSS | $O_ERR |
| opentracker (announce, numwant=50) | $A_REQ | $A_RPS | $A_P50 | $A_P99 | $A_CPU | $A_PCT \
| $A_RSS | $A_ERR |
| ratio p2p-sharer / opentracker | | $(ratio "$O_RPS" "$A_RPS") | $(ratio "$O_P50" "$A_P50") \
| $(ratio "$O_P99" "$A_P99") | $(ratio "$O_CPU" "$A_CPU") | | $(ratio "$O_RSS" "$A_RSS") | |

p2p-sharer memory for $holders (node, file) pairs and $nodes nodes: heap in use grew
$HEAP_PER_PAIR B per pair, RSS $BYTES_PER_PAIR B per pair (target: <= 64 B + $((PIECES / 8)) B of
bitfield = $((64 + PIECES / 8)) B per pair; both figures also carry the nodes, ~20 B per pair here).
Targets: CPU/req <= opentracker's, req/s >= opentracker's, p99 < 5 ms.
TABLE
