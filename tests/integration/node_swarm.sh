#!/usr/bin/env bash
# Main job end to end: a tracker, one seeder and three downloaders on 127.0.0.1. The seeder's
# upload is rate-limited so the downloaders must also fetch from each other. Every result must
# be byte-identical, land in complete_dir with .seed and .ok, and keep being served.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/big.bin" 6144           # 6 MiB in 64 KiB pieces = 96 pieces
node_config seeder 'upload_rate_limit: "3MiB"'
IH=$(place_seeded seeder "$W/big.bin" --pieceSize 64KiB)
[ ${#IH} -eq 64 ] || die "no infoHash from gen"
start_node seeder
wait_state seeder "$IH" seeding 10 && ok "seeder registered its file from the start-up scan"

for d in d1 d2 d3; do
    node_config "$d" "complete_dir: \"$W/$d/done\""
    start_node "$d"
done

# d1 and d2 get the seed URL (served by the seeder), d3 the inline seed.
api d1 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
expect "d1: POST /v1/task with seedFile" 200 ".code==\"E000\" and .msg==\"success\" and .taskId==\"$IH\""
api d2 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
expect "d2: POST /v1/task with seedFile" 200 ".taskId==\"$IH\""
api d3 POST /v1/task "$(jq -c '{seed: .}' "${NODE_DIR[seeder]}/big.bin.seed")"
expect "d3: POST /v1/task with an inline seed" 200 ".taskId==\"$IH\""
# the same task again is idempotent
api d1 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
expect "d1: same task again answers the same id" 200 ".taskId==\"$IH\""

# live progress while downloading
api d1 GET "/v1/task/$IH"
expect "d1: task status has every field" 200 \
    '(.taskId|type=="string") and (.fileName=="big.bin") and (.state|IN("pending","downloading","seeding")) and (.piecesDone|type=="number") and .pieceCount==96 and (.bytesDone|type=="number") and .length==6291456 and (.speed|type=="number") and (.peers|type=="number")'

for d in d1 d2 d3; do
    wait_state "$d" "$IH" seeding 60 || continue
    if cmp -s "$W/big.bin" "$W/$d/done/big.bin"; then
        ok "$d: file is byte-identical"
    else
        fail "$d: file differs"
    fi
    [ -f "$W/$d/done/big.bin.ok" ] && [ -f "$W/$d/done/big.bin.seed" ] && ok "$d: .ok and .seed in complete_dir" || fail "$d: .ok/.seed missing"
    [ ! -e "$W/$d/dl/big.bin.bitfield" ] && [ ! -e "$W/$d/dl/big.bin" ] && ok "$d: download_dir cleaned up" || fail "$d: leftovers in download_dir: $(ls "$W/$d/dl")"
done

api d2 GET /v1/tasks
expect "d2: GET /v1/tasks lists the task" 200 ".tasks|length==1 and .[0].state==\"seeding\" and .[0].piecesDone==96"
api d2 GET /v1/probe
expect "d2: probe shows node id, address, files" 200 \
    "(.nodeId|length>0) and .addr==\"${NODE_ADDR[d2]}\" and (.files[0].infoHash==\"$IH\") and .files[0].progress==1"

# downloaders served each other (the seeder alone was capped at 3 MiB/s)
up=0
for d in d1 d2 d3; do
    b=$(metric "$d" p2p_node_bytes_up_total)
    up=$((up + b))
done
[ "$up" -gt 0 ] && ok "downloaders uploaded $up bytes to each other" || fail "no downloader uploaded anything"
[ "$(metric d1 p2p_node_pieces_verified_total)" -eq 96 ] && ok "d1 verified 96 pieces" || fail "d1 verified $(metric d1 p2p_node_pieces_verified_total) pieces"

# a finished downloader serves the file and pieces to anyone
curl -s --max-time 10 -o "$W/via_d3" "http://${NODE_ADDR[d3]}/v2/file/$IH"
cmp -s "$W/big.bin" "$W/via_d3" && ok "GET /v2/file from a downloader" || fail "GET /v2/file differs"
curl -s --max-time 10 -o "$W/piece5" "http://${NODE_ADDR[d2]}/v2/piece/$IH/5"
cmp -s "$W/piece5" <(dd if="$W/big.bin" bs=65536 skip=5 count=1 2>/dev/null) && ok "GET /v2/piece/5 from a downloader" || fail "piece 5 differs"
api d2 GET "/v2/piece/$IH/96"
expect "piece index out of range is 404" 404 "$ERRJSON"
api d2 GET /v2/seeds
expect "GET /v2/seeds lists the file" 200 ".seeds[0].infoHash==\"$IH\" and .seeds[0].state==\"seeding\""
api d2 GET /healthz
expect "GET /healthz" 200 '.status=="ok"'

# the tracker knows every node holds every piece
curl -s --max-time 5 "http://$TADDR/v2/peers?infoHash=$IH&nodeId=someone-else" > "$W/peers.json"
n=$(jq '[.peers[] | select(.bitfield != null)] | length' "$W/peers.json")
[ "$n" -eq 4 ] && ok "tracker lists 4 holders" || fail "tracker lists $n holders: $(cat "$W/peers.json")"

finish
