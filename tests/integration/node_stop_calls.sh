#!/usr/bin/env bash
# SIGTERM with HTTP calls that never answer (a hanging tracker: heartbeat, report, peer list;
# a seedFile URL that never answers): the pending POST /v1/task gets a 503 JSON answer, every
# call is cancelled and freed (an ASan build fails on any leak), and the node exits 0.
. "$(dirname "$0")/node_lib.sh"
. "$(dirname "$0")/node_review_lib.sh"

start_fake hang --hang
review_node n 2s
make_file "$W/x.bin" 100
# an unfinished download (seed only) whose tracker hangs: heartbeat and peer list stay pending
"$P2P_BIN" gen --filePath "$W/x.bin" --seedPath "${NODE_DIR[n]}" --tracker "${FAKE_ADDR[hang]}" \
    >/dev/null 2>&1 || die gen
make_file "$W/y.bin" 100
start_node n
for i in $(seq 1 100); do
    [ "$(fake_count hang '^REQ GET /v2/peers')" -ge 1 ] && [ "$(fake_count hang '^REQ POST /v1/heartBeat')" -ge 1 ] && break
    sleep 0.1
done
[ "$(fake_count hang '^REQ GET /v2/peers')" -ge 1 ] && ok "peer list request pending" || fail "no peer list request"
[ "$(fake_count hang '^REQ POST /v1/heartBeat')" -ge 1 ] && ok "heartbeat pending" || fail "no heartbeat"

curl -s -o "$W/task.body" -w '%{http_code}' --max-time 20 -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"seedFile\":\"http://${FAKE_ADDR[hang]}/hang\"}" \
    "http://${NODE_ADDR[n]}/v1/task" > "$W/task.code" 2>/dev/null &
CURL=$!
for i in $(seq 1 100); do
    [ "$(fake_count hang '^REQ GET /hang')" -ge 1 ] && break
    sleep 0.1
done
[ "$(fake_count hang '^REQ GET /hang')" -ge 1 ] && ok "seed fetch pending" || fail "no seed fetch"

kill -TERM "${NODE_PID[n]}"
wait_exit "${NODE_PID[n]}" 15
[ "$EXIT_ST" = 0 ] && ok "SIGTERM exits 0 with calls pending" || fail "exit status $EXIT_ST after SIGTERM"
wait "$CURL" || true
code=$(cat "$W/task.code" 2>/dev/null || true)
[ "$code" = 503 ] && jq -e "$ERRJSON" "$W/task.body" >/dev/null 2>&1 &&
    ok "the waiting POST /v1/task got a 503 JSON answer" ||
    fail "waiting POST /v1/task got '$code': $(cat "$W/task.body" 2>/dev/null)"
if grep -q -E 'LeakSanitizer|AddressSanitizer' "$W/n.err"; then
    fail "sanitizer report at exit"
else
    ok "no sanitizer report at exit"
fi
finish
