#!/usr/bin/env bash
# SIGTERM mid-download: the node exits 0, its bitfield on disk holds every reported piece, the
# tracker is told (stopped) so it no longer lists the node, and a restart finishes the file.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/big.bin" 8192
node_config seeder 'upload_rate_limit: "1MiB"'
IH=$(place_seeded seeder "$W/big.bin" --pieceSize 64KiB)
start_node seeder
wait_state seeder "$IH" seeding 10
start_node d1
api d1 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
expect "d1: task created" 200 ".taskId==\"$IH\""
wait_pieces d1 "$IH" 20 30 || finish
D1ID=$(curl -s "http://${NODE_ADDR[d1]}/v1/probe" | jq -r .nodeId)
P=$(pieces_done d1 "$IH")
kill -TERM "${NODE_PID[d1]}"
wait_exit "${NODE_PID[d1]}" 15
[ "$EXIT_ST" = 0 ] && ok "SIGTERM: exit status 0" || fail "SIGTERM: exit status $EXIT_ST"
B=$(popcount "${NODE_DIR[d1]}/big.bin.bitfield")
[ "$B" -ge "$P" ] && [ "$B" -lt 128 ] && ok "bitfield saved with $B pieces (>= $P reported)" || fail "bitfield has $B pieces, $P reported"
grep -q 'stopping: saving bitfields' "$W/d1.err" && ok "graceful stop logged" || fail "no graceful stop in the log"
curl -s --max-time 5 "http://$TADDR/v2/peers?infoHash=$IH&nodeId=probe" > "$W/peers.json"
if jq -e --arg id "$D1ID" '[.peers[] | select(.nodeId == $id)] | length == 0' "$W/peers.json" >/dev/null; then
    ok "tracker no longer lists the stopped node"
else
    fail "tracker still lists d1: $(cat "$W/peers.json")"
fi

start_node d1
wait_state d1 "$IH" seeding 40
cmp -s "$W/big.bin" "${NODE_DIR[d1]}/big.bin" && ok "restarted node finished the file" || fail "file differs"
[ "$(curl -s "http://${NODE_ADDR[d1]}/v1/probe" | jq -r .nodeId)" = "$D1ID" ] && ok "node id kept across restarts (.node-id)" || fail "node id changed"

kill -TERM "${NODE_PID[seeder]}"
wait_exit "${NODE_PID[seeder]}" 15
[ "$EXIT_ST" = 0 ] && ok "seeder: SIGTERM exit status 0" || fail "seeder: exit status $EXIT_ST"
finish
