#!/usr/bin/env bash
# DELETE /v1/task mid-download: state canceled, partial files removed, the file not served; a new
# POST starts it again and it completes.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/big.bin" 8192
node_config seeder 'upload_rate_limit: "1MiB"'
IH=$(place_seeded seeder "$W/big.bin" --pieceSize 64KiB)
start_node seeder
wait_state seeder "$IH" seeding 10
start_node d1
api d1 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
expect "task created" 200 ".taskId==\"$IH\""
wait_pieces d1 "$IH" 8 30 || finish
api d1 DELETE "/v1/task/$IH"
expect "DELETE answers success" 200 ".code==\"E000\" and .taskId==\"$IH\""
wait_state d1 "$IH" canceled 5
gone=0
for i in $(seq 1 50); do
    [ ! -e "${NODE_DIR[d1]}/big.bin" ] && [ ! -e "${NODE_DIR[d1]}/big.bin.bitfield" ] && { gone=1; break; }
    sleep 0.1
done
[ "$gone" = 1 ] && ok "partial files removed" || fail "partial files left: $(ls "${NODE_DIR[d1]}")"
api d1 GET "/v2/piece/$IH/0"
expect "a cancelled file is not served" 404 "$ERRJSON"
api d1 DELETE "/v1/task/$(printf '%064d' 0)"
expect "DELETE of an unknown task is 404" 404 "$ERRJSON"
api d1 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
expect "POST again restarts it" 200 ".taskId==\"$IH\""
wait_state d1 "$IH" seeding 40
cmp -s "$W/big.bin" "${NODE_DIR[d1]}/big.bin" && ok "restarted task completes" || fail "file differs"
# DELETE of a finished file: no longer served, kept on disk; a scan registers it again
api d1 DELETE "/v1/task/$IH"
expect "DELETE of a seeding file" 200 '.code=="E000"'
api d1 GET "/v2/file/$IH"
expect "a deleted file is not served" 404 "$ERRJSON"
[ -f "${NODE_DIR[d1]}/big.bin" ] && ok "the finished file stays on disk" || fail "finished file removed"
api d1 POST /v1/scan
expect "POST /v1/scan" 200 '.code=="E000" and .added==1'
wait_state d1 "$IH" seeding 5
curl -s --max-time 10 -o "$W/again" "http://${NODE_ADDR[d1]}/v2/file/$IH"
cmp -s "$W/big.bin" "$W/again" && ok "served again after the scan" || fail "not served after scan"
finish
