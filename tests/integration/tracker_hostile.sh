#!/usr/bin/env bash
# End-to-end: hostile input to the tracker. Every bad request gets a 4xx with a JSON
# {"code","msg"} body and the tracker keeps serving.
. "$(dirname "$0")/tracker_lib.sh"

IH=75310ef2025a5e77fdc38960577351df973f0c484c8337bc321c11e85621a2e0
start_tracker hostile 'max_pieces: 1000
session_expire: "300s"'

bad() { # bad WHAT STATUS METHOD PATH [BODY]
    local what=$1 status=$2
    shift 2
    call "$@"
    expect "$what" "$status" "$ERRJSON"
}

bad "malformed JSON" 400 POST /v1/heartBeat '{"nodeId":"a","addr":'
bad "JSON array instead of object" 400 POST /v1/heartBeat '["a"]'
bad "not JSON at all" 400 POST /v2/report 'hello'
bad "empty body" 400 POST /v2/report ''
bad "duplicate keys" 400 POST /v1/heartBeat '{"nodeId":"a","nodeId":"b","addr":"h:1"}'
bad "invalid UTF-8" 400 POST /v1/heartBeat $'{"nodeId":"\xff","addr":"h:1"}'
bad "heartbeat: missing addr" 400 POST /v1/heartBeat '{"nodeId":"a"}'
bad "heartbeat: missing nodeId" 400 POST /v1/heartBeat '{"addr":"h:1"}'
bad "heartbeat: nodeId not a string" 400 POST /v1/heartBeat '{"nodeId":1,"addr":"h:1"}'
bad "heartbeat: addr without port" 400 POST /v1/heartBeat '{"nodeId":"a","addr":"h"}'
bad "heartbeat: zone mistyped" 400 POST /v1/heartBeat '{"nodeId":"a","addr":"h:1","zone":[]}'
LONG=$(head -c 300 /dev/zero | tr '\0' x)
bad "heartbeat: nodeId too long" 400 POST /v1/heartBeat "{\"nodeId\":\"$LONG\",\"addr\":\"h:1\"}"

R="\"nodeId\":\"a\",\"infoHash\":\"$IH\""
bad "report: missing infoHash" 400 POST /v2/report '{"nodeId":"a","pieceCount":10,"have":[1]}'
bad "report: short infoHash" 400 POST /v2/report '{"nodeId":"a","infoHash":"abcd","pieceCount":10,"have":[1]}'
bad "report: missing pieceCount" 400 POST /v2/report "{$R,\"have\":[1]}"
bad "report: pieceCount string" 400 POST /v2/report "{$R,\"pieceCount\":\"10\",\"have\":[1]}"
bad "report: pieceCount negative" 400 POST /v2/report "{$R,\"pieceCount\":-10,\"have\":[1]}"
bad "report: pieceCount above max_pieces" 400 POST /v2/report "{$R,\"pieceCount\":1001,\"have\":[1]}"
bad "report: neither bitfield nor have" 400 POST /v2/report "{$R,\"pieceCount\":10}"
bad "report: both bitfield and have" 400 POST /v2/report "{$R,\"pieceCount\":10,\"have\":[1],\"bitfield\":\"AAA=\"}"
bad "report: bitfield too short" 400 POST /v2/report "{$R,\"pieceCount\":10,\"bitfield\":\"AA==\"}"
bad "report: bitfield too long" 400 POST /v2/report "{$R,\"pieceCount\":10,\"bitfield\":\"AAAA\"}"
bad "report: bitfield spare bits" 400 POST /v2/report "{$R,\"pieceCount\":10,\"bitfield\":\"/+A=\"}"
bad "report: bitfield not base64" 400 POST /v2/report "{$R,\"pieceCount\":10,\"bitfield\":\"%%%=\"}"
bad "report: bitfield mistyped" 400 POST /v2/report "{$R,\"pieceCount\":10,\"bitfield\":[255,192]}"
bad "report: have index out of range" 400 POST /v2/report "{$R,\"pieceCount\":10,\"have\":[10]}"
bad "report: have not an array" 400 POST /v2/report "{$R,\"pieceCount\":10,\"have\":3}"
bad "report: have with strings" 400 POST /v2/report "{$R,\"pieceCount\":10,\"have\":[\"3\"]}"
bad "report: stopped mistyped" 400 POST /v2/report "{$R,\"stopped\":1}"

call POST /v2/report "{$R,\"pieceCount\":10,\"have\":[1]}"
expect "report: valid after the bad ones" 200 "$ACK"
bad "report: pieceCount conflicts with the known file" 409 POST /v2/report "{$R,\"pieceCount\":11,\"have\":[1]}"

bad "peers: no infoHash" 400 GET "/v2/peers"
bad "peers: bad infoHash" 400 GET "/v2/peers?infoHash=xyz"
bad "peers: unknown infoHash" 404 GET "/v2/peers?infoHash=${IH/7/8}"
bad "peers: max=0" 400 GET "/v2/peers?infoHash=$IH&max=0"
bad "peers: max=-1" 400 GET "/v2/peers?infoHash=$IH&max=-1"
bad "peers: max=abc" 400 GET "/v2/peers?infoHash=$IH&max=abc"
bad "peers: max huge" 400 GET "/v2/peers?infoHash=$IH&max=99999999999999999999999"
bad "peers: bad nodeId" 400 GET "/v2/peers?infoHash=$IH&nodeId=a%20b"
bad "probe: bad infoHash" 400 GET "/v1/probe?infoHash=12"
bad "v1 report: progress mistyped" 400 POST /v1/report '{"pieceID":"22596363b3de40b06f981fb85d82312e8c0ed511","nodeID":"a","progress":"0"}'
bad "v1 report: missing nodeID" 400 POST /v1/report '{"pieceID":"22596363b3de40b06f981fb85d82312e8c0ed511","progress":0}'
bad "v1 report: bad pieceID" 400 POST /v1/report '{"pieceID":"zz","nodeID":"a","progress":0}'
bad "v1 nodeList: bad pieceID" 400 GET "/v1/nodeList?pieceID=1234"
bad "unknown route" 404 GET "/v2/nothing"
bad "wrong method" 405 GET "/v1/heartBeat"

# Oversized body (> 1 MiB JSON cap): a 413 JSON answer, also while the client is still sending.
head -c 3000000 /dev/zero | tr '\0' ' ' > "$W/big.json"
call POST /v2/report "@$W/big.json"
expect "oversized body with Content-Length" 413 "$ERRJSON"
CODE=$(curl -s -o "$W/body" -w '%{http_code}' --max-time 20 -X POST -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/json' --data-binary "@$W/big.json" "$BASE/v2/report") || true
BODY=$(cat "$W/body")
expect "oversized chunked body" 413 "$ERRJSON"

# Garbage on a raw connection, then a header flood: the tracker keeps serving.
port=${BASE##*:}
{ printf 'GARBAGE\r\n\r\n'; sleep 0.2; } | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$port" 2>/dev/null || true
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n' "$(head -c 70000 /dev/zero | tr '\0' a)" \
    | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$port" 2>/dev/null || true
call GET /healthz
expect "still serving after hostile input" 200 '.status=="ok" and .nodes==1 and .files==1'
kill -0 "$TPID" && ok "tracker alive" || fail "tracker died"

finish
