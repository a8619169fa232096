#!/usr/bin/env bash
# End-to-end: every tracker route against the real binary (heartbeat, v2 report full/have/
# stopped, peers ordering, probe and its filter, metrics, healthz, v1 compat, auth, limits,
# the original's shipped config, SIGTERM -> exit 0).
. "$(dirname "$0")/tracker_lib.sh"

IH=75310ef2025a5e77fdc38960577351df973f0c484c8337bc321c11e85621a2e0
IH2=e25983581434c6e4dc8772c2df89a00dd97a7f6d303cb4481dc112fc523ccbd0

# Command line: --help, bad flags, bad config keys, unusable listen address.
"$P2P_BIN" tracker --help | grep -q -- '--config' && ok "--help" || fail "--help"
rc=0; "$P2P_BIN" tracker --bogus 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] && ok "unknown flag exits 2" || fail "unknown flag exit status $rc"
printf 'session_expire: "10s"\nsesion_check_interval: "3s"\n' > "$W/typo.yaml"
rc=0; timeout 10 "$P2P_BIN" tracker -c "$W/typo.yaml" 2> "$W/typo.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'typo.yaml:2.*sesion_check_interval' "$W/typo.err" &&
    ok "unknown config key is an error naming file, line and key" ||
    fail "unknown config key: status $rc, $(cat "$W/typo.err")"
printf 'store: {type: memory}\n' > "$W/ok.yaml"
rc=0; timeout 10 "$P2P_BIN" tracker -c "$W/ok.yaml" --listen 256.1.1.1:0 2> "$W/listen.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q "cannot listen" "$W/listen.err" && ok "bad listen address exits 1" ||
    fail "bad listen address: status $rc, $(cat "$W/listen.err")"

# The Go original's shipped config.tracker.yaml must load unchanged.
start_tracker orig 'web:
  mode: "release"
  listen_address: ":35330"

# 1MB
piece_size: 1048576
session_expire: "10s"
session_check_interval: "3s"'

call GET /healthz
expect "healthz" 200 '.status=="ok"'
hb n0 127.0.0.1:4000
expect "heartbeat interval is session_expire/2" 200 "$ACK and .interval==5 and .intervalMs==5000"
kill "$TPID"

# The rest runs with long sessions, so a slow machine cannot expire nodes mid-test.
start_tracker main 'session_expire: "300s"'
hb n1 127.0.0.1:4001 eu
expect "first heartbeat is known:false" 200 "$ACK and .known==false and .interval==150"
hb n1 127.0.0.1:4001 eu
expect "second heartbeat is known:true" 200 "$ACK and .known==true"
hb n2 127.0.0.1:4002 eu
hb n3 127.0.0.1:4003 us
hb n4 127.0.0.1:4004 eu
hb asker 127.0.0.1:4000 eu
expect "asker heartbeat" 200 "$ACK"

# pieceCount 10: asker holds 0-3; n1 (eu) and n3 (us) hold 4-9; n2 (eu) holds 0-3 only.
call POST /v2/report "{\"nodeId\":\"asker\",\"infoHash\":\"$IH\",\"pieceCount\":10,\"bitfield\":\"8AA=\",\"fileName\":\"hello.txt\"}"
expect "full report" 200 "$ACK"
call POST /v2/report "{\"nodeId\":\"n1\",\"infoHash\":\"$IH\",\"pieceCount\":10,\"bitfield\":\"D8A=\"}"
expect "full report n1" 200 "$ACK"
call POST /v2/report "{\"nodeId\":\"n3\",\"infoHash\":\"$IH\",\"pieceCount\":10,\"bitfield\":\"D8A=\"}"
call POST /v2/report "{\"nodeId\":\"n2\",\"infoHash\":\"$IH\",\"pieceCount\":10,\"have\":[0,1,2,3]}"
expect "have increment" 200 "$ACK"
call POST /v2/report "{\"nodeId\":\"n4\",\"infoHash\":\"$IH\",\"pieceCount\":10,\"bitfield\":\"AAA=\"}"
expect "empty bitfield report" 200 "$ACK"

call GET "/v2/peers?infoHash=$IH&nodeId=asker"
expect "peers: useful same zone, useful other zone, then the rest; never asker or empty" 200 \
    '.pieceCount==10 and ([.peers[].nodeId]==["n1","n3","n2"]) and .peers[0].addr=="127.0.0.1:4001" and .peers[0].zone=="eu" and .peers[0].bitfield=="D8A="'
call GET "/v2/peers?infoHash=$IH&nodeId=asker&zone=us"
expect "peers: explicit zone" 200 '[.peers[].nodeId]==["n3","n1","n2"]'
call GET "/v2/peers?infoHash=$IH&nodeId=asker&max=1"
expect "peers: max" 200 '[.peers[].nodeId]==["n1"]'
call GET "/v2/peers?infoHash=$IH&max=500"
expect "peers: anonymous asker, max above max_peers clamps" 200 '(.peers|length)==4'
call GET "/v2/peers?infoHash=$IH2&nodeId=asker"
expect "peers: unknown infoHash is 404" 404 "$ERRJSON"

# Increment makes n2 useful: it now holds piece 9.
call POST /v2/report "{\"nodeId\":\"n2\",\"infoHash\":\"$IH\",\"pieceCount\":10,\"have\":[9]}"
call GET "/v2/peers?infoHash=$IH&nodeId=asker"
expect "peers after increment" 200 \
    '([.peers[:2][].nodeId]|sort)==["n1","n2"] and .peers[2].nodeId=="n3" and .peers[1].bitfield!=null'
call GET "/v1/probe?infoHash=$IH"
expect "probe filtered" 200 \
    '(.files|length)==1 and .files[0].fileName=="hello.txt" and .files[0].pieceCount==10 and (.files[0].holders|map(select(.nodeId=="n2"))[0].pieces)==5 and (.files[0].holders|map(select(.nodeId=="n2"))[0].progress)==0.5 and (.nodes|length)==5'

# Second file, then stopped removes n1 from the first one.
call POST /v2/report "{\"nodeId\":\"n1\",\"infoHash\":\"$IH2\",\"pieceCount\":3,\"have\":[2]}"
expect "report second file" 200 "$ACK"
call POST /v2/report "{\"nodeId\":\"n1\",\"infoHash\":\"$IH\",\"stopped\":true}"
expect "stopped" 200 "$ACK"
call GET /v1/probe
expect "probe: nodes, files, holders with progress" 200 \
    '(.nodes|length)==5 and (.files|length)==2 and ([.files[]|select(.infoHash=="'$IH'")|.holders[].nodeId]|index("n1"))==null and ([.files[]|select(.infoHash=="'$IH2'")|.holders[0].progress]|.[0]>0.33)'
call GET "/v1/probe?infoHash=$IH"
expect "probe filter after stop" 200 '(.files[0].holders|length)==4'
call GET "/v1/probe?infoHash=0000000000000000000000000000000000000000000000000000000000000000"
expect "probe: unknown infoHash" 404 "$ERRJSON"
call POST /v2/report "{\"nodeId\":\"n1\",\"infoHash\":\"$IH2\",\"stopped\":true}"
call GET "/v2/peers?infoHash=$IH2"
expect "last holder stopped: file gone" 404 "$ERRJSON"

# v1 compatibility: progress 0 accepted; nodeList gives at most 5 random live addresses.
P1=22596363b3de40b06f981fb85d82312e8c0ed511
for i in 1 2 3 4 5 6 7; do
    hb "v1node$i" "127.0.0.1:510$i"
    call POST /v1/report "{\"pieceID\":\"$P1\",\"nodeID\":\"v1node$i\",\"progress\":0,\"file\":\"hello.txt\"}"
done
expect "v1 report with progress 0" 200 "$ACK"
call POST /v1/report "{\"pieceID\":\"$P1\",\"nodeID\":\"v1node1\",\"progress\":1.0,\"file\":\"hello.txt\"}"
expect "v1 report repeated" 200 "$ACK"
call GET "/v1/nodeList?pieceID=$P1"
expect "v1 nodeList: 5 distinct addresses" 200 \
    '(.nodes|length)==5 and ((.nodes|unique)|length)==5 and (.nodes|all(test("^127\\.0\\.0\\.1:510[1-7]$")))'
seen=""
for i in $(seq 1 30); do
    call GET "/v1/nodeList?pieceID=$P1"
    seen="$seen $(printf '%s' "$BODY" | jq -r '.nodes[]')"
done
distinct=$(printf '%s\n' $seen | sort -u | wc -l)
[ "$distinct" -eq 7 ] && ok "v1 nodeList is random ($distinct addresses seen)" ||
    fail "v1 nodeList randomness: $distinct of 7 addresses seen"
call GET "/v1/nodeList?pieceID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
expect "v1 nodeList unknown piece" 200 '.nodes==[]'
call GET "/v1/nodeList"
expect "v1 nodeList without pieceID" 400 "$ERRJSON"

call GET /metrics
if [ "$CODE" = 200 ] &&
   grep -q '^p2p_tracker_nodes_alive 12$' <<<"$BODY" &&
   grep -q '^p2p_tracker_files 1$' <<<"$BODY" &&
   grep -q '^p2p_tracker_expired_nodes_total 0$' <<<"$BODY" &&
   grep -q '^p2p_tracker_v1_pieces 1$' <<<"$BODY" &&
   grep -q '^p2p_tracker_requests_total{route="/v1/heartBeat",status="200"} 13$' <<<"$BODY" &&
   grep -q '^p2p_tracker_requests_total{route="/v2/peers",status="404"} 2$' <<<"$BODY" &&
   grep -q '^# TYPE p2p_tracker_requests_total counter$' <<<"$BODY"; then
    ok "metrics"
else
    fail "metrics: $CODE $BODY"
fi

# SIGTERM: graceful stop, exit status 0.
kill -TERM "$TPID"
rc=0
wait "$TPID" || rc=$?
[ "$rc" -eq 0 ] && ok "SIGTERM exits 0" || fail "SIGTERM exit status $rc; $(cat "$W/main.err")"

# auth_token: heartbeat and reports need the Bearer token; reads do not.
start_tracker auth 'auth_token: "s3cret"'
hb a 127.0.0.1:1
expect "auth: heartbeat without token" 401 "$ERRJSON"
call POST /v1/heartBeat '{"nodeId":"a","addr":"127.0.0.1:1"}' -H 'Authorization: Bearer wrong'
expect "auth: wrong token" 401 "$ERRJSON"
call POST /v1/heartBeat '{"nodeId":"a","addr":"127.0.0.1:1"}' -H 'Authorization: Bearer s3cret'
expect "auth: right token" 200 "$ACK"
call POST /v2/report "{\"nodeId\":\"a\",\"infoHash\":\"$IH\",\"pieceCount\":1,\"have\":[0]}"
expect "auth: report without token" 401 "$ERRJSON"
call POST /v2/report "{\"nodeId\":\"a\",\"infoHash\":\"$IH\",\"pieceCount\":1,\"have\":[0]}" \
    -H 'Authorization: Bearer s3cret'
expect "auth: report with token" 200 "$ACK"
call POST /v1/report "{\"pieceID\":\"$P1\",\"nodeID\":\"a\",\"progress\":0}"
expect "auth: v1 report without token" 401 "$ERRJSON"
call GET "/v2/peers?infoHash=$IH"
expect "auth: peers is open" 200 '.pieceCount==1'

# Limits: 503 with a JSON body instead of growing without bound.
start_tracker limits 'max_nodes: 2
max_files: 1
max_pieces: 16'
hb a 127.0.0.1:1
hb b 127.0.0.1:2
hb c 127.0.0.1:3
expect "limits: max_nodes" 503 "$ERRJSON and (.msg|test(\"max_nodes\"))"
call POST /v2/report "{\"nodeId\":\"a\",\"infoHash\":\"$IH\",\"pieceCount\":16,\"have\":[0]}"
expect "limits: first file" 200 "$ACK"
call POST /v2/report "{\"nodeId\":\"a\",\"infoHash\":\"$IH2\",\"pieceCount\":16,\"have\":[0]}"
expect "limits: max_files" 503 "$ERRJSON and (.msg|test(\"max_files\"))"
call POST /v2/report "{\"nodeId\":\"b\",\"infoHash\":\"$IH\",\"pieceCount\":17,\"have\":[0]}"
expect "limits: max_pieces" 400 "$ERRJSON and (.msg|test(\"max_pieces\"))"
call GET /healthz
expect "limits: still serving" 200 '.nodes==2 and .files==1'

finish
