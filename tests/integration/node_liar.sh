#!/usr/bin/env bash
# A lying peer: a node that claims the whole file (a garbage file of the right size with the
# right seed and .ok, accepted by verify_on_scan: size) and serves garbage for every piece.
# The downloaders still end with the right bytes, and ban the liar.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/big.bin" 4096            # 64 pieces
node_config seeder 'upload_rate_limit: "1MiB"'
IH=$(place_seeded seeder "$W/big.bin" --pieceSize 64KiB)
node_config liar
cp "${NODE_DIR[seeder]}/big.bin.seed" "${NODE_DIR[liar]}/"
make_file "${NODE_DIR[liar]}/big.bin" 4096
: > "${NODE_DIR[liar]}/big.bin.ok"
start_node seeder
start_node liar
wait_state seeder "$IH" seeding 10
wait_state liar "$IH" seeding 10
LIAR_ID=$(curl -s "http://${NODE_ADDR[liar]}/v1/probe" | jq -r .nodeId)

# the same garbage under verify_on_scan: full is re-hashed at the scan and not registered
node_config strict 'verify_on_scan: "full"'
cp "${NODE_DIR[liar]}/big.bin" "${NODE_DIR[liar]}/big.bin.seed" "${NODE_DIR[liar]}/big.bin.ok" "$W/strict/dl/"
start_node strict
sleep 1
api strict GET "/v1/task/$IH"
expect "verify_on_scan: full skips a file whose content does not match" 404 "$ERRJSON"
grep -q 'content does not match its seed' "$W/strict.err" && ok "mismatch logged" || fail "no mismatch in the log"

for d in d1 d2; do
    start_node "$d"
    api "$d" POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
    expect "$d: task created" 200 ".taskId==\"$IH\""
done
for d in d1 d2; do
    wait_state "$d" "$IH" seeding 60 || continue
    cmp -s "$W/big.bin" "${NODE_DIR[$d]}/big.bin" && ok "$d: file correct despite the liar" || fail "$d: file differs"
    f=$(metric "$d" p2p_node_pieces_failed_total)
    [ "$f" -ge 1 ] && ok "$d: $f bad pieces rejected" || fail "$d: no bad piece seen (liar never asked?)"
    curl -s "http://${NODE_ADDR[$d]}/v1/probe" > "$W/probe.json"
    if jq -e --arg id "$LIAR_ID" '[.peers[] | select(.nodeId == $id and .banned)] | length == 1' "$W/probe.json" >/dev/null; then
        ok "$d: liar banned"
    else
        fail "$d: liar not banned: $(jq -c .peers "$W/probe.json")"
    fi
    grep -q "banning peer ${NODE_ADDR[liar]}" "$W/$d.err" && ok "$d: ban logged" || fail "$d: no ban in the log"
done
finish
