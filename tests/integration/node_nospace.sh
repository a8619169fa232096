#!/usr/bin/env bash
# A download that does not fit on its disk is refused at once (507, "No space left on device":
# the data file is preallocated) and leaves nothing behind; the node keeps serving and then takes
# a task that fits, which it could not if the refused one still held its blocks. The
# downloader's download_dir is a 1 MiB tmpfs in a mount namespace of its own (unshare -m); where
# that is not permitted the test is skipped (exit 77).
. "$(dirname "$0")/node_lib.sh"

if ! unshare -m --propagation private true 2>/dev/null; then
    echo "SKIP: unshare -m is not permitted here"
    exit 77
fi

start_tracker
make_file "$W/big.bin" 2048
make_file "$W/small.bin" 512
IHB=$(place_seeded up "$W/big.bin")
IHS=$(place_seeded up "$W/small.bin")
start_node up
wait_state up "$IHB" seeding 10
wait_state up "$IHS" seeding 10

# the downloader, its download_dir a 1 MiB tmpfs seen only by its own process
node_config down
: > "$W/down.out"
unshare -m --propagation private sh -c \
    'mount -t tmpfs -o size=1m p2p-nospace "$1" && exec "$2" node -c "$3" --listen 127.0.0.1:0' \
    sh "$W/down/dl" "$P2P_BIN" "$W/down.yaml" > "$W/down.out" 2>> "$W/down.err" &
pid=$!
PIDS+=("$pid")
NODE_PID[down]=$pid
NODE_ADDR[down]=$(wait_line "$W/down.out" "$pid")
[ -n "${NODE_ADDR[down]}" ] || { cat "$W/down.err" >&2; die "node down did not start"; }

api down POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[up]}/v2/seed/$IHB\"}"
expect "a 2 MiB task on a 1 MiB disk is refused with 507" 507 \
    '.code == "E001" and (.msg | test("No space left on device"))'
api down GET "/v1/task/$IHB"
expect "the refused task is not kept" 404
api down GET /healthz
expect "the node keeps serving" 200 '.status == "ok"'

api down POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[up]}/v2/seed/$IHS\"}"
expect "a 512 KiB task fits after it (the refused one released its blocks)" 200
wait_state down "$IHS" seeding 20 && ok "the small file downloaded and verified"
finish
