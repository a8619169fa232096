#!/usr/bin/env bash
# The tracker is killed with -9 mid-download: downloads go on from the peers already known; the
# tracker restarts on the same port with no state, answers the nodes' next heartbeat with
# known:false, they re-report in full, and everything finishes.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/big.bin" 8192
node_config seeder 'upload_rate_limit: "1MiB"'
IH=$(place_seeded seeder "$W/big.bin" --pieceSize 64KiB)
start_node seeder
wait_state seeder "$IH" seeding 10
for d in d1 d2; do
    start_node "$d"
    api "$d" POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
    expect "$d: task created" 200 ".taskId==\"$IH\""
done
wait_pieces d1 "$IH" 16 30 || finish
kill -9 "$TPID"
wait "$TPID" 2>/dev/null || true
ok "tracker killed with -9"
P1=$(pieces_done d1 "$IH")
sleep 2
P2=$(pieces_done d1 "$IH")
[ "$P2" -gt "$P1" ] && ok "d1 kept downloading without a tracker ($P1 -> $P2)" || fail "d1 stalled without the tracker ($P1 -> $P2)"

TRACKER_LISTEN=$TADDR start_tracker tracker2
ok "tracker restarted on $TADDR"
for d in d1 d2; do
    wait_state "$d" "$IH" seeding 60 || continue
    cmp -s "$W/big.bin" "${NODE_DIR[$d]}/big.bin" && ok "$d: file correct" || fail "$d: file differs"
done
# within a heartbeat or two every node has re-reported its full bitfield to the new tracker
full=0
for i in $(seq 1 80); do
    full=$(curl -s --max-time 5 "http://$TADDR/v2/peers?infoHash=$IH&nodeId=probe" | jq '[.peers[]?] | length' 2>/dev/null || echo 0)
    [ "$full" -ge 3 ] && break
    sleep 0.1
done
[ "$full" -ge 3 ] && ok "restarted tracker knows all 3 holders again" || fail "restarted tracker knows $full holders"
finish
