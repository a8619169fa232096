#!/usr/bin/env bash
# Hostile seeds and requests: each is a 4xx with a JSON reason and no task; nothing is written
# outside the node's directories; the node keeps serving. Also the bearer-token guard and the
# upload-slot limit (503 + Retry-After).
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/a.bin" 256
node_config seeder
IH=$(place_seeded seeder "$W/a.bin" --pieceSize 64KiB)
start_node seeder
wait_state seeder "$IH" seeding 10
mkdir -p "$W/victim"
node_config n "complete_dir: \"$W/n/done\""
start_node n
SEED=$(cat "${NODE_DIR[seeder]}/a.bin.seed")
touch "$W/marker"
sleep 1

post() { api n POST /v1/task "$1"; expect "$2" "$3" "$ERRJSON"; }
post '{"seedFile":"file:///etc/passwd"}' "file:// URL refused" 400
post '{"seedFile":"ftp://127.0.0.1/x.seed"}' "ftp:// URL refused" 400
post '{"seedFile":"gopher://127.0.0.1:70/"}' "gopher:// URL refused" 400
post "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$(printf '%064d' 0)\"}" "404 seed URL refused" 400
post '{"seedFile":"http://127.0.0.1:1/x.seed"}' "unreachable seed URL refused" 400
post "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/healthz\"}" "a URL that is not a seed refused" 400
post '{"seedFile":42}' "seedFile of the wrong type refused" 400
post '{}' "neither seedFile nor seed refused" 400
post "{\"seedFile\":\"http://x/\",\"seed\":$SEED}" "both seedFile and seed refused" 400
post '{"seed":' "malformed JSON refused" 400
post '[1,2]' "non-object body refused" 400
post '{"seed":"x"}' "seed that is not an object refused" 400
for name in '../evil.bin' '../../victim/evil.bin' '/tmp/evil.bin' '.hidden' '..' 'a/b' 'evil\\x.bin'; do
    s=$(printf '%s' "$SEED" | jq -c --arg n "$name" '{seed: (.fileName = $n | del(.infoHash))}')
    post "$s" "traversal fileName '$name' refused" 400
done
s=$(printf '%s' "$SEED" | jq -c '{seed: (.infoHash = ("0" * 64))}')
post "$s" "wrong infoHash refused" 400
s=$(printf '%s' "$SEED" | jq -c '{seed: (.length = 999999999 | del(.infoHash))}')
post "$s" "length not matching the pieces refused" 400
s=$(printf '%s' "$SEED" | jq -c '{seed: (.pieces[0].checksum = "zz" | del(.infoHash))}')
post "$s" "bad checksum refused" 400
s=$(printf '%s' "$SEED" | jq -c '{seed: (.pieces[1].index = 7 | del(.infoHash))}')
post "$s" "out-of-order piece index refused" 400
head -c 2000000 /dev/zero | tr '\0' 'a' > "$W/bigbody"
code=$(curl -s -o "$W/body" -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' --data-binary @"$W/bigbody" "http://${NODE_ADDR[n]}/v1/task") || code=curl-error
[ "$code" = 413 ] && jq -e "$ERRJSON" "$W/body" >/dev/null && ok "2 MB body refused with 413" || fail "2 MB body: $code $(head -c 200 "$W/body")"

api n GET /v1/tasks
expect "no task was created by any of that" 200 '.tasks|length==0'

# same fileName, different content: 409, and the existing file is untouched
api n POST /v1/task "{\"seed\":$SEED}"
expect "a good seed is accepted" 200 ".taskId==\"$IH\""
wait_state n "$IH" seeding 20
make_file "$W/other/a.bin" 128 2>/dev/null || { mkdir -p "$W/other"; make_file "$W/other/a.bin" 128; }
"$P2P_BIN" gen --filePath "$W/other/a.bin" --seedPath "$W/other" --tracker "$TADDR" --pieceSize 64KiB >/dev/null 2>&1
api n POST /v1/task "{\"seed\":$(cat "$W/other/a.bin.seed")}"
expect "same fileName with another infoHash is a 409" 409 "$ERRJSON"
cmp -s "$W/a.bin" "$W/n/done/a.bin" && ok "the held file is untouched" || fail "held file changed"

# hostile paths and parameters on the serving routes
api n GET "/v2/piece/$IH/-1";                      expect "negative piece index" 400 "$ERRJSON"
api n GET "/v2/piece/$IH/99999999999999999999999"; expect "huge piece index" 400 "$ERRJSON"
api n GET "/v2/piece/nothex/0";                    expect "unknown infoHash piece" 404 "$ERRJSON"
api n GET "/v2/file/..%2f..%2fetc%2fpasswd";       expect "encoded traversal in /v2/file" 404 "$ERRJSON"
api n GET "/v2/seed/../../etc/passwd";             expect "traversal in /v2/seed" 404 "$ERRJSON"
api n GET "/v1/task/../../x";                      expect "traversal in /v1/task" 404 "$ERRJSON"
api n GET "/v1/pieceData";                         expect "pieceData without pieceID" 400 "$ERRJSON"
api n GET "/nope";                                 expect "unknown route" 404 "$ERRJSON"

# nothing outside the configured directories
out=$(find "$W" -newer "$W/marker" -type f ! -path "$W/n/*" ! -path "$W/seeder/*" ! -path "$W/other/*" ! -name '*.out' ! -name '*.err' ! -name body ! -name bigbody | head)
[ -z "$out" ] && ok "nothing written outside the node directories" || fail "written outside: $out"
[ -z "$(find "$W" /tmp -maxdepth 3 -name 'evil*.bin' -newer "$W/marker" 2>/dev/null | head -1)" ] && ok "no evil*.bin anywhere" || fail "an evil file exists"
[ -z "$(ls -A "$W/victim")" ] && ok "victim directory untouched" || fail "victim dir: $(ls "$W/victim")"
api n GET /healthz
expect "node still healthy" 200 '.status=="ok"'

# bearer token guard on task, scan and DELETE routes
node_config g 'auth_token: "s3cret"'
start_node g
api g POST /v1/task "{\"seed\":$SEED}";                                  expect "POST /v1/task without token" 401 "$ERRJSON"
api g POST /v1/task "{\"seed\":$SEED}" -H 'Authorization: Bearer nope'; expect "POST /v1/task with a wrong token" 401 "$ERRJSON"
api g POST /v1/scan;                                                    expect "POST /v1/scan without token" 401 "$ERRJSON"
api g DELETE "/v1/task/$IH";                                            expect "DELETE without token" 401 "$ERRJSON"
api g POST /v1/task "{\"seed\":$SEED}" -H 'Authorization: Bearer s3cret'; expect "POST /v1/task with the token" 200 ".taskId==\"$IH\""
api g POST /v1/scan '' -H 'Authorization: Bearer s3cret';               expect "POST /v1/scan with the token" 200 '.code=="E000"'
api g GET "/v1/task/$IH";                                               expect "GET /v1/task needs no token" 200 ".taskId==\"$IH\""

# upload slots: with max_upload_slots 1 and a slow upload in progress, the next gets 503
node_config slot 'max_upload_slots: 1
upload_rate_limit: "64KiB"'
cp "$W/a.bin" "${NODE_DIR[slot]}/" && cp "${NODE_DIR[seeder]}/a.bin.seed" "${NODE_DIR[slot]}/" && : > "${NODE_DIR[slot]}/a.bin.ok"
start_node slot
wait_state slot "$IH" seeding 10
curl -s --max-time 20 -o "$W/slow" "http://${NODE_ADDR[slot]}/v2/file/$IH" &
SLOW=$!
PIDS+=("$SLOW")
for i in $(seq 1 100); do
    [ "$(metric slot p2p_node_upload_slots_busy)" = 1 ] && break
    sleep 0.05
done
code=$(curl -s -o "$W/body" -D "$W/h503" -w '%{http_code}' --max-time 5 "http://${NODE_ADDR[slot]}/v2/piece/$IH/0") || code=curl-error
[ "$code" = 503 ] && grep -qi '^retry-after:' "$W/h503" && ok "upload slots full: 503 with Retry-After" || fail "slots full: $code"
wait "$SLOW" || true
cmp -s "$W/a.bin" "$W/slow" && ok "the rate-limited upload completed intact" || fail "slow upload differs"
finish
