#!/usr/bin/env bash
# Compatibility with the Go original: a v1 seed (SHA-1, 1 MiB pieces, no version key) seeded the
# original way (file + seed + touched .ok), downloaded by another node, and served by piece
# SHA-1 through GET /v1/pieceData?pieceID=.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/old.bin" 3500            # 4 pieces of 1 MiB, the last one short
node_config seeder
cp "$W/old.bin" "${NODE_DIR[seeder]}/"
"$P2P_BIN" gen --format v1 --filePath "${NODE_DIR[seeder]}/old.bin" --seedPath "${NODE_DIR[seeder]}" --tracker "$TADDR" >/dev/null 2>&1 || die "gen --format v1"
: > "${NODE_DIR[seeder]}/old.bin.ok"
SEED=${NODE_DIR[seeder]}/old.bin.seed
jq -e 'has("version") | not' "$SEED" >/dev/null && ok "seed is v1 (no version key)" || fail "not a v1 seed"
start_node seeder
start_node d1
python_free_sha1() { sha1sum | cut -c1-40; }
api d1 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$(curl -s "http://${NODE_ADDR[seeder]}/v2/seeds" | jq -r '.seeds[0].infoHash')\"}"
expect "d1: v1 task accepted" 200 '.code=="E000" and (.taskId|length==64)'
IH=$(printf '%s' "$BODY" | jq -r .taskId)
wait_state d1 "$IH" seeding 30
cmp -s "$W/old.bin" "${NODE_DIR[d1]}/old.bin" && ok "v1 file byte-identical" || fail "v1 file differs"
api d1 GET "/v1/task/$IH"
expect "v1 task has 4 pieces" 200 '.pieceCount==4 and .piecesDone==4'

P2=$(jq -r '.pieces[2].checksum' "$SEED")
curl -s --max-time 10 -o "$W/p2" "http://${NODE_ADDR[d1]}/v1/pieceData?pieceID=$P2"
[ "$(python_free_sha1 < "$W/p2")" = "$P2" ] && cmp -s "$W/p2" <(dd if="$W/old.bin" bs=1048576 skip=2 count=1 2>/dev/null) && ok "GET /v1/pieceData serves the piece by its SHA-1" || fail "pieceData piece 2 wrong"
api d1 GET "/v1/pieceData?pieceID=$(printf '%040d' 0)"
expect "unknown pieceID is a 404 (the original answered 500)" 404 "$ERRJSON"
api d1 GET "/v1/pieceData?pieceID=xyz"
expect "malformed pieceID is a 400" 400 "$ERRJSON"
# A fresh origin seed super-seeds its own downloaders (503 for a piece it just sent while others
# were never sent), but the Go original's nodes on /v1/pieceData do not understand that: they
# always get the piece.
node_config origin
cp "$W/old.bin" "$SEED" "${NODE_DIR[origin]}/"
: > "${NODE_DIR[origin]}/old.bin.ok"
start_node origin
wait_state origin "$IH" seeding 10
P0=$(jq -r '.pieces[0].checksum' "$SEED")
v2code() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://${NODE_ADDR[origin]}/v2/piece/$IH/0"; }
code=$(v2code)
[ "$code" = 200 ] && ok "origin sends piece 0 on /v2/piece" || fail "/v2/piece/0: $code"
code=$(v2code)
[ "$code" = 503 ] && ok "piece 0 again on /v2/piece is super-seeded (503) while others are unsent" ||
    fail "/v2/piece/0 right after sending it: $code"
for k in 1 2 3; do
    code=$(curl -s --max-time 10 -o "$W/v1p0" -w '%{http_code}' \
        "http://${NODE_ADDR[origin]}/v1/pieceData?pieceID=$P0")
    [ "$code" = 200 ] && [ "$(python_free_sha1 < "$W/v1p0")" = "$P0" ] &&
        ok "but /v1/pieceData always serves it (#$k)" || fail "/v1/pieceData #$k: $code"
done
# the re-serialised seed stays v1 on disk
jq -e 'has("version") | not' "${NODE_DIR[d1]}/old.bin.seed" >/dev/null && ok "downloader keeps the seed in v1 format" || fail "seed rewritten as v2"
finish
