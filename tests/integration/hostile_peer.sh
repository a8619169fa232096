#!/usr/bin/env bash
# Fake peers against a real downloading node (issue 6, item 4): six tiny HTTP servers
# (tests/unit/hostile_peer.c) are registered at the real tracker as holding every piece, each
# answering GET /v2/piece/{h}/{i} wrongly in its own way: more bytes than the piece under a lying
# Content-Length, more bytes through chunked encoding, half the bytes then a close, a complete
# but short response, a trickle, a correct response followed by a smuggled second one. A real
# node downloading the file from them and one genuine (rate-limited) seeder must finish with the
# right bytes, ban the peers that sent wrong lengths, keep serving, stay ASan-clean and exit 0
# on SIGTERM.
. "$(dirname "$0")/node_lib.sh"

# reap PID: waits for a child we started and drops it from PIDS (so the exit trap never signals
# a recycled PID); returns its exit status.
reap() {
    local rc=0 p keep=()
    wait "$1" || rc=$?
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
    return "$rc"
}

HP=${HOSTILE_PEER:-${P2P_BIN%/*}/tests/hostile_peer}
[ -x "$HP" ] || die "hostile_peer not found at $HP (build the hostile_peer target)"
command -v sha256sum >/dev/null || die "sha256sum is required"

# A tracker whose sessions outlive the test, so the fake peers need no heartbeat loop.
cat > "$W/tracker.yaml" <<EOF
session_expire: "120s"
session_check_interval: "1s"
log: {level: "debug"}
EOF
"$P2P_BIN" tracker -c "$W/tracker.yaml" --listen 127.0.0.1:0 > "$W/tracker.out" 2>> "$W/tracker.err" &
TPID=$!
PIDS+=("$TPID")
TADDR=$(wait_line "$W/tracker.out" "$TPID")
[ -n "$TADDR" ] || die "tracker did not start: $(cat "$W/tracker.err")"

PLEN=65536
make_file "$W/src.bin" 4096 # 64 pieces of 64 KiB
NP=64
node_config seeder 'upload_rate_limit: "768KiB"' # slow enough for every fake peer to be tried
IH=$(place_seeded seeder "$W/src.bin" --pieceSize 64KiB)
start_node seeder
wait_state seeder "$IH" seeding 10 || die "seeder not seeding"

# allbits N: base64 of a bitfield holding all N pieces (spare bits zero).
allbits() {
    local n=$1 i r
    {
        for ((i = 0; i < n / 8; i++)); do printf '\377'; done
        r=$((n % 8))
        [ "$r" -eq 0 ] || printf "\\$(printf '%03o' $(((0xff << (8 - r)) & 0xff)))"
    } | base64 -w0
}
BF=$(allbits "$NP")

tracker_post() { # tracker_post PATH BODY: must be a 200
    local code
    code=$(curl -s -o "$W/tbody" -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
        --data-binary "$2" "http://$TADDR$1") || code=curl-error
    [ "$code" = 200 ] || die "tracker $1: $code $(cat "$W/tbody" 2>/dev/null)"
}

LIARS="long-cl long-chunked short-close short-cl"
declare -A FAKE_ADDR
# fake MODE: starts a fake peer and registers it at the tracker as holding every piece.
fake() {
    local m=$1 pid
    "$HP" "$m" "$W/src.bin" "$PLEN" 150 > "$W/fake-$m.out" 2> "$W/fake-$m.err" &
    pid=$!
    PIDS+=("$pid")
    FAKE_ADDR[$m]=$(wait_line "$W/fake-$m.out" "$pid")
    [ -n "${FAKE_ADDR[$m]}" ] || die "fake peer $m did not start: $(cat "$W/fake-$m.err")"
    tracker_post /v1/heartBeat "{\"nodeId\":\"fake-$m\",\"addr\":\"${FAKE_ADDR[$m]}\"}"
    tracker_post /v2/report "{\"nodeId\":\"fake-$m\",\"infoHash\":\"$IH\",\"pieceCount\":$NP,
        \"fileName\":\"src.bin\",\"bitfield\":\"$BF\"}"
}
# asked MODE: the fake peer must have been asked for a piece, or the test proves nothing.
asked() {
    local n
    n=$(grep -c '^REQ ' "$W/fake-$1.out" || true)
    [ "$n" -ge 1 ] && ok "fake peer $1 was asked for $n piece(s)" ||
        fail "fake peer $1 was never asked for a piece"
}
# faults NODE MODE: informative, how the node judged a fake peer.
faults() {
    echo "$1: faults of $2: $(grep -c "peer ${FAKE_ADDR[$2]} fault" "$W/$1.err" || true)" \
        "$(grep "peer ${FAKE_ADDR[$2]} fault" "$W/$1.err" | head -n 2 | sed 's/.*peer /peer /')"
}
# download NAME: a new node downloads the file; it must end with the right bytes.
download() {
    local a b
    start_node "$1"
    api "$1" POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
    expect "$1: download task created" 200 ".taskId==\"$IH\"" || die "no task"
    wait_state "$1" "$IH" seeding 90 || return 0
    a=$(sha256sum < "$W/src.bin")
    b=$(sha256sum < "${NODE_DIR[$1]}/src.bin")
    [ "$a" = "$b" ] && ok "$1: downloaded file has the right sha256" || fail "$1: sha256 differs"
}
# serves NAME: the node still serves the whole file, a piece and its health.
serves() {
    local code
    code=$(curl -s -o "$W/again.bin" -w '%{http_code}' --max-time 20 \
        "http://${NODE_ADDR[$1]}/v2/file/$IH") || code=curl-error
    [ "$code" = 200 ] && cmp -s "$W/src.bin" "$W/again.bin" && ok "$1 serves the whole file" ||
        fail "$1: /v2/file: $code"
    code=$(curl -s -o "$W/piece.bin" -w '%{http_code}' --max-time 10 \
        "http://${NODE_ADDR[$1]}/v2/piece/$IH/3") || code=curl-error
    head -c $((4 * PLEN)) "$W/src.bin" | tail -c "$PLEN" > "$W/piece3.want"
    [ "$code" = 200 ] && cmp -s "$W/piece.bin" "$W/piece3.want" && ok "$1 serves piece 3" ||
        fail "$1: /v2/piece/3: $code"
    api "$1" GET /healthz
    expect "$1 healthy" 200 '.status=="ok"'
}
# stop NAME: alive, then exit 0 on SIGTERM.
stop() {
    local pid=${NODE_PID[$1]}
    kill -0 "$pid" 2>/dev/null && ok "$1: alive at the end" || fail "$1: died"
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" 20
    [ "$EXIT_ST" = timeout ] || reap "$pid" 2>/dev/null || true
    [ "$EXIT_ST" = 0 ] && ok "$1: exit 0 on SIGTERM" || fail "$1: SIGTERM exit status $EXIT_ST"
}

# ---- phase 1: peers that send the wrong number of bytes, and a slow one. The seeder's 768 KiB/s
# makes the download last ~5 s, long enough for the backoffs (0.5 s, 1 s) before each ban ----
for m in $LIARS slow; do fake "$m"; done
peers=$(curl -s --max-time 5 "http://$TADDR/v2/peers?infoHash=$IH&nodeId=probe" |
    jq '.peers|length') || true
[ "$peers" = 6 ] && ok "tracker lists the seeder and 5 fake peers as holders" ||
    fail "tracker lists $peers holders, want 6"
download d
curl -s --max-time 5 "http://${NODE_ADDR[d]}/v1/probe" > "$W/probe.json" || true
for m in $LIARS slow; do asked "$m"; done
for m in $LIARS; do
    st=$(jq -c --arg id "fake-$m" '[.peers[] | select(.nodeId == $id) | {faults, banned, bytes}]' \
        "$W/probe.json")
    if jq -e --arg id "fake-$m" \
        '[.peers[] | select(.nodeId == $id and .banned and .bytes == 0)] | length == 1' \
        "$W/probe.json" >/dev/null; then
        ok "fake peer $m banned, nothing taken from it: $st"
    else
        fail "fake peer $m not banned: $st"
    fi
    grep -q "banning peer ${FAKE_ADDR[$m]}" "$W/d.err" && ok "ban of $m logged" ||
        fail "no ban of $m in the log"
done
faults d slow
echo "d: peers: $(jq -c '[.peers[] | {nodeId, faults, banned, bytes}]' "$W/probe.json")"
serves d
stop d

# ---- phase 2: a peer that follows each correct response with a smuggled second response of
# junk on the same connection (a client that reused it would take the junk for its next piece) ----
fake excess
download d2
asked excess
faults d2 excess
serves d2
stop d2

# the seeder and the tracker: alive, then a clean exit on SIGTERM
stop seeder
kill -TERM "$TPID" 2>/dev/null || true
wait_exit "$TPID" 20
[ "$EXIT_ST" = timeout ] || reap "$TPID" 2>/dev/null || true
[ "$EXIT_ST" = 0 ] && ok "tracker: exit 0 on SIGTERM" || fail "tracker: SIGTERM exit status $EXIT_ST"
san=$(grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$W"/*.err 2>/dev/null || true)
[ -z "$san" ] && ok "no sanitizer report in any log" || fail "sanitizer report in: $san"
finish
