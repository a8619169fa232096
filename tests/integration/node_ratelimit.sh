#!/usr/bin/env bash
# upload_rate_limit and download_rate_limit hold: a transfer through a capped node cannot go
# faster than its cap (plus one burst), whether it is a swarm download or a plain curl of
# /v2/file, and with several connections at once. Lower bounds only: how fast an uncapped
# transfer is belongs in bench/, not here.
. "$(dirname "$0")/node_lib.sh"

CAP=$((2 * 1048576))   # 2 MiB/s
SIZE_KIB=8192          # 8 MiB: at least (8 - one second of burst) / 2 = 3 s through the cap
MIN_S=2.9

start_tracker
make_file "$W/f.bin" $SIZE_KIB
IH=$(place_seeded capped "$W/f.bin" --pieceSize 256KiB)
start_node capped "upload_rate_limit: \"2MiB\""
wait_state capped "$IH" seeding 10

# elapsed SECONDS_START: prints seconds since the start stamp
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
atleast() { awk -v x="$1" -v m="$2" 'BEGIN { exit !(x + 0 >= m + 0) }'; }

# 1. upload cap, swarm download: a free node fetches every piece from the capped seeder
start_node free1
T0=$(now)
api free1 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[capped]}/v2/seed/$IH\"}"
expect "task accepted" 200 '.taskId'
wait_state free1 "$IH" seeding 60
E=$(elapsed "$T0")
cmp -s "$W/f.bin" "${NODE_DIR[free1]}/f.bin" && ok "download through the upload cap is correct" ||
    fail "downloaded file differs"
atleast "$E" "$MIN_S" && ok "upload cap holds for a swarm download (${E}s >= ${MIN_S}s)" ||
    fail "8 MiB left a 2 MiB/s seeder in ${E}s"

# 2. upload cap, four parallel curls of /v2/file share it (each gets a quarter)
T0=$(now)
for i in 1 2 3 4; do
    curl -s --max-time 60 -o "$W/c$i.bin" "http://${NODE_ADDR[capped]}/v2/file/$IH" &
    CURLS+=($!)
done
for p in "${CURLS[@]}"; do wait "$p" || true; done
E=$(elapsed "$T0")
good=0
for i in 1 2 3 4; do cmp -s "$W/f.bin" "$W/c$i.bin" && good=$((good + 1)); done
[ $good = 4 ] && ok "four parallel curls got the whole file" || fail "only $good of 4 curls correct"
# 32 MiB through one 2 MiB/s bucket: >= 15 s minus a burst; allow generous slack below
atleast "$E" 12 && ok "the cap is shared by all connections (${E}s for 4 x 8 MiB)" ||
    fail "4 x 8 MiB left a 2 MiB/s node in ${E}s"

# 3. download cap: a capped downloader fetching from an uncapped seeder
IH2=$IH
start_node free2
api free2 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[capped]}/v2/seed/$IH\"}"
wait_state free2 "$IH" seeding 60
start_node slowdl "download_rate_limit: \"2MiB\""
T0=$(now)
api slowdl POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[free2]}/v2/seed/$IH2\"}"
expect "capped downloader task accepted" 200 '.taskId'
wait_state slowdl "$IH2" seeding 60
E=$(elapsed "$T0")
cmp -s "$W/f.bin" "${NODE_DIR[slowdl]}/f.bin" && ok "capped download is correct" ||
    fail "capped download differs"
atleast "$E" "$MIN_S" && ok "download cap holds (${E}s >= ${MIN_S}s)" ||
    fail "a 2 MiB/s downloader fetched 8 MiB in ${E}s"
finish
