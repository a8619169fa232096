#!/usr/bin/env bash
# End-to-end: the tracker's guards from review (issue 3 findings 6, 9, 21, 22, 23, 24): memory
# budgets and no file from an empty report, capped probe with incremental figures, a live
# session's address bound to its source IP, pieceCount squatting, web.mode debug, exit codes.
. "$(dirname "$0")/tracker_lib.sh"

IH=75310ef2025a5e77fdc38960577351df973f0c484c8337bc321c11e85621a2e0
IH2=e25983581434c6e4dc8772c2df89a00dd97a7f6d303cb4481dc112fc523ccbd0
IH3=0000000000000000000000000000000000000000000000000000000000000003
# stop WHAT: SIGTERM the current tracker; it must exit 0 (under ASan: no leak, no error).
stop() {
    kill -TERM "$TPID"
    local rc=0
    wait "$TPID" || rc=$?
    [ "$rc" -eq 0 ] && ok "$1: clean exit" || fail "$1: exit status $rc"
}
rep() { # rep NODE HASH PIECECOUNT EXTRA_JSON
    call POST /v2/report "{\"nodeId\":\"$1\",\"infoHash\":\"$2\",\"pieceCount\":$3,$4}"
}

# --- 24: exit codes: --help/-h 0 (usage on stdout), usage errors 2, config errors 1.
rc=0; "$P2P_BIN" tracker --help > "$W/help.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q 'Exit status' "$W/help.out" && ok "--help exits 0" ||
    fail "--help: status $rc"
rc=0; "$P2P_BIN" tracker -h > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 0 ] && ok "-h exits 0" || fail "-h: status $rc"
for args in "--bogus" "extra" "-c" "--config=" "--listen"; do
    rc=0; timeout 10 "$P2P_BIN" tracker $args > /dev/null 2>&1 || rc=$?
    [ "$rc" -eq 2 ] && ok "usage error '$args' exits 2" || fail "usage error '$args': status $rc"
done
rc=0; timeout 10 "$P2P_BIN" tracker -c "$W/missing.yaml" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] && ok "missing config file exits 1" || fail "missing config file: status $rc"
printf 'max_total_pieces: 0\n' > "$W/bad.yaml"
rc=0; timeout 10 "$P2P_BIN" tracker -c "$W/bad.yaml" > /dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] && ok "out-of-range config value exits 1" || fail "bad config value: status $rc"

# --- 23: web.mode debug means debug logging even with log.level error; release does not.
start_tracker dbg 'web:
  mode: debug
log:
  level: error'
hb dbgnode 127.0.0.1:4100
expect "debug mode: heartbeat" 200 "$ACK"
start_tracker rel 'web:
  mode: release
log:
  level: error'
hb relnode 127.0.0.1:4101
expect "release mode: heartbeat" 200 "$ACK"
grep -q 'debug.*dbgnode' "$W/dbg.err" && ok "web.mode debug logs at debug level" ||
    fail "web.mode debug: no debug line in $(cat "$W/dbg.err")"
grep -q 'relnode' "$W/rel.err" && fail "release + log.level error logged debug lines" ||
    ok "release mode keeps log.level"

# --- 6: budgets; an empty report creates nothing; default max_pieces 524288.
start_tracker budget 'session_expire: "300s"
max_pieces: 1000
max_total_pieces: 100
max_holder_bytes: 200'
rep x "$IH" 1000 '"have":[]'
expect "empty have for a new file: no-op ack" 200 "$ACK"
rep x "$IH" 1000 "\"bitfield\":\"$(head -c 125 /dev/zero | base64 -w0)\""
expect "empty bitfield for a new file: no-op ack" 200 "$ACK"
call GET /healthz
expect "empty reports created no file and no node" 200 '.files==0 and .nodes==0'
rep a "$IH" 1000 '"have":[0]'
expect "file beyond max_total_pieces" 503 "$ERRJSON and (.msg|test(\"max_total_pieces\"))"
grep -qi '^Retry-After: [1-9]' < <(curl -s -D - -o /dev/null -X POST --data-binary \
    "{\"nodeId\":\"a\",\"infoHash\":\"$IH\",\"pieceCount\":1000,\"have\":[0]}" "$BASE/v2/report") &&
    ok "503 carries Retry-After" || fail "no Retry-After on 503"
rep a "$IH" 100 '"have":[0]'
expect "file within max_total_pieces" 200 "$ACK"
rep a "$IH2" 1 '"have":[0]'
expect "second file exceeds the piece budget" 503 "$ERRJSON and (.msg|test(\"max_total_pieces\"))"
rep b "$IH" 100 '"have":[1]'
expect "second holder within max_holder_bytes (2 x 77 B)" 200 "$ACK"
rep c "$IH" 100 '"have":[2]'
expect "third holder beyond max_holder_bytes" 503 "$ERRJSON and (.msg|test(\"max_holder_bytes\"))"
call GET /metrics
grep -q '^p2p_tracker_total_pieces 100$' <<<"$BODY" && grep -q '^p2p_tracker_holder_bytes 154$' <<<"$BODY" &&
    ok "budget gauges in metrics" || fail "metrics: $BODY"
call POST /v2/report "{\"nodeId\":\"a\",\"infoHash\":\"$IH\",\"stopped\":true}"
rep c "$IH" 100 '"have":[2]'
expect "budget returned when a holder stops" 200 "$ACK"
stop "budget tracker"

start_tracker defaults 'session_expire: "300s"'
rep a "$IH" 524289 '"have":[]'
expect "default max_pieces is 524288" 400 "$ERRJSON and (.msg|test(\"max_pieces 524288\"))"
rep a "$IH" 524288 '"have":[]'
expect "pieceCount 524288 accepted" 200 "$ACK"

# --- 22: squatting: a wrong pieceCount lasts only while its reporter holds something.
rep squat "$IH" 5 '"have":[0]'
expect "squatter claims a piece" 200 "$ACK"
rep seed "$IH" 10 '"have":[0,1,2,3,4,5,6,7,8,9]'
expect "conflicting pieceCount is 409" 409 "$ERRJSON and (.msg|test(\"pieceCount\"))"
rep dl "$IH" 5 '"bitfield":"AA=="'
expect "downloader with nothing joins the squatted file" 200 "$ACK"
call POST /v2/report "{\"nodeId\":\"squat\",\"infoHash\":\"$IH\",\"stopped\":true}"
call GET "/v1/probe?infoHash=$IH"
expect "file dropped when its last piece holder stops" 404 "$ERRJSON"
rep seed "$IH" 10 '"have":[0,1,2,3,4,5,6,7,8,9]'
expect "the real pieceCount can then be established" 200 "$ACK"

# --- 9: probe capped by ?limit=, figures kept incrementally.
for i in 1 2 3 4 5; do hb "p$i" "127.0.0.1:420$i"; done
for i in 1 2 3; do rep "p$i" "$IH" 10 '"bitfield":"/8A="'; done
rep p4 "$IH" 10 '"have":[0]'
rep p5 "$IH2" 3 '"have":[0]'
rep p5 "$IH3" 3 '"have":[1]'
call GET "/v1/probe?infoHash=$IH"
expect "probe figures: seeders, rarest, holder count" 200 \
    '.files[0].seeders==4 and .files[0].rarestPieceHolders==4 and .files[0].holderCount==5 and (.files[0].holders|length)==5 and .truncated==false'
rep p4 "$IH" 10 '"have":[1,2,3,4,5,6,7,8,9]'
call GET "/v1/probe?infoHash=$IH"
expect "probe figures follow increments" 200 '.files[0].seeders==5 and .files[0].rarestPieceHolders==5'
call GET "/v1/probe"
expect "probe unlimited below the default cap" 200 \
    '(.nodes|length)==.nodeCount and (.files|length)==3 and .fileCount==3 and .truncated==false'
call GET "/v1/probe?limit=2"
expect "probe ?limit=2 caps nodes, files and holders" 200 \
    '(.nodes|length)==2 and (.files|length)==2 and ([.files[].holders[]]|length)<=2 and .nodeCount>2 and .fileCount==3 and .truncated==true'
call GET "/v1/probe?infoHash=$IH&limit=1"
expect "filtered probe ?limit=1" 200 \
    '(.files[0].holders|length)==1 and .files[0].holderCount==5 and (.nodes|length)==1 and .truncated==true'
for bad in 0 -1 abc 10001; do
    call GET "/v1/probe?limit=$bad"
    expect "probe ?limit=$bad" 400 "$ERRJSON and (.msg|test(\"limit\"))"
done

# --- 21: a live session's address can only be changed from the IP that set it. Both sides
# are loopback: the hijacker connects from 127.0.0.2.
hb victim 127.0.0.1:4300
expect "victim registers" 200 "$ACK"
call POST /v1/heartBeat '{"nodeId":"victim","addr":"127.0.0.2:6666"}' --interface 127.0.0.2
expect "address change from another IP is 409" 409 "$ERRJSON and (.msg|test(\"addr\"))"
call POST /v1/heartBeat '{"nodeId":"victim","addr":"127.0.0.1:4300","zone":"evil"}' --interface 127.0.0.2
expect "zone change from another IP is 409" 409 "$ERRJSON"
call GET "/v1/probe?limit=100"
expect "victim keeps its address and zone" 200 \
    '(.nodes[]|select(.nodeId=="victim")|.addr=="127.0.0.1:4300" and .zone=="")'
call POST /v1/heartBeat '{"nodeId":"victim","addr":"127.0.0.1:4300"}' --interface 127.0.0.2
expect "same address from another IP only refreshes" 200 "$ACK and .known==true"
hb victim 127.0.0.1:4301
expect "the owner may change its address" 200 "$ACK"
call POST /v1/heartBeat '{"nodeId":"newcomer","addr":"127.0.0.2:4400"}' --interface 127.0.0.2
expect "a new node registers from any IP" 200 "$ACK and .known==false"
call GET /healthz
expect "still serving" 200 '.status=="ok"'
stop "tracker"

finish
