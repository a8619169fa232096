#!/usr/bin/env bash
# End-to-end: session expiry timing and known:false. With session_expire 2s and a 200ms check,
# a silent node and all its pieces leave the map within expire + interval, a heartbeating node
# stays, and the silent node's next heartbeat answers known:false.
. "$(dirname "$0")/tracker_lib.sh"

IH=75310ef2025a5e77fdc38960577351df973f0c484c8337bc321c11e85621a2e0
start_tracker expiry 'session_expire: "2s"
session_check_interval: "200ms"'

hb silent 127.0.0.1:7001
expect "silent: first heartbeat" 200 '.known==false and .interval==1 and .intervalMs==1000'
hb alive 127.0.0.1:7002
call POST /v2/report "{\"nodeId\":\"silent\",\"infoHash\":\"$IH\",\"pieceCount\":4,\"bitfield\":\"8A==\"}"
expect "silent: report" 200 "$ACK"
call POST /v2/report "{\"nodeId\":\"alive\",\"infoHash\":\"$IH\",\"pieceCount\":4,\"have\":[0]}"
T0=$(date +%s%N)

call GET "/v2/peers?infoHash=$IH&nodeId=alive"
expect "silent node is a peer before expiry" 200 '[.peers[].nodeId]==["silent"]'

# Keep "alive" heartbeating every 300 ms for 3.6 s; "silent" says nothing. It must be gone
# 2 s (expire) + 0.2 s (sweep) after its last message.
for i in $(seq 1 12); do
    sleep 0.3
    hb alive 127.0.0.1:7002
    [ "$CODE" = 200 ] || fail "alive heartbeat $i: $CODE"
done
T1=$(date +%s%N)
elapsed=$(( (T1 - T0) / 1000000 ))
[ "$elapsed" -ge 2400 ] || fail "timing: only ${elapsed}ms elapsed"

call GET /v1/probe
expect "silent node expired, alive node kept" 200 \
    '([.nodes[].nodeId])==["alive"] and (.files[0].holders|length)==1 and .files[0].rarestPieceHolders==0'
call GET "/v2/peers?infoHash=$IH&nodeId=alive"
expect "expired node's pieces left the map" 200 '.peers==[]'
call GET /metrics
grep -q '^p2p_tracker_expired_nodes_total 1$' <<<"$BODY" && ok "expiry counted in metrics" ||
    fail "metrics: $BODY"
hb silent 127.0.0.1:7001
expect "heartbeat after expiry: known:false" 200 "$ACK and .known==false"
hb silent 127.0.0.1:7001
expect "then known:true" 200 ".known==true"

# Everything silent: nodes and the file go.
sleep 2.8
call GET /healthz
expect "all expired" 200 '.nodes==0 and .files==0'
call GET "/v2/peers?infoHash=$IH"
expect "file gone with its last holder" 404 "$ERRJSON"

finish
