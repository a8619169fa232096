#!/usr/bin/env bash
# Storage races and refusals (review fixes):
#  - exit status 1 for a bad config (as the tracker), 2 for a usage error;
#  - a task whose name is taken in complete_dir is refused up front with 409, nothing written;
#  - DELETE of a task whose file is complete on disk (unregistered) while its create job waits
#    in the pool never removes the finished file or its seed (pool of 1 thread kept busy by
#    full-verify scans of a 512 MiB sparse file);
#  - DELETE while the file is being finished (fsync + copy to complete_dir on another
#    filesystem) leaves it canceled, not a seeding zombie; piece requests meanwhile get 503 +
#    Retry-After, not 500.
. "$(dirname "$0")/node_lib.sh"
. "$(dirname "$0")/node_review_lib.sh"

SHM=""
if [ -d /dev/shm ] && [ -w /dev/shm ]; then SHM=$(mktemp -d /dev/shm/p2p-review.XXXXXX); fi
trap 'rm -rf "${SHM:-/nonexistent}"; cleanup' EXIT

# ---- exit statuses
review_node bad 2s 'zone: "two words"'
st=0; "$P2P_BIN" node -c "$W/bad.yaml" --listen 127.0.0.1:0 > /dev/null 2> "$W/bad.err" || st=$?
[ "$st" = 1 ] && grep -q zone "$W/bad.err" && ok "bad config (zone) exits 1 naming the key" ||
    fail "bad config: exit $st: $(cat "$W/bad.err")"
: > "$W/bad.err"
st=0; "$P2P_BIN" node --no-such-flag > /dev/null 2>&1 || st=$?
[ "$st" = 2 ] && ok "usage error exits 2" || fail "usage error: exit $st"

# ---- name taken in complete_dir: 409 up front
review_node r 4s "complete_dir: \"$W/r/done\""
mkdir -p "$W/r/done"
make_file "$W/dup.bin" 64
"$P2P_BIN" gen --filePath "$W/dup.bin" --seedPath "$W" --tracker 127.0.0.1:9 >/dev/null 2>&1 || die gen
echo "someone else's file" > "$W/r/done/dup.bin"
start_node r
api r POST /v1/task "{\"seed\":$(cat "$W/dup.bin.seed")}"
expect "name taken in complete_dir: 409 at once" 409 "$ERRJSON"
[ ! -e "${NODE_DIR[r]}/dup.bin" ] && [ ! -e "${NODE_DIR[r]}/dup.bin.seed" ] &&
    ok "nothing written for the refused task" || fail "files written for a refused task"
[ "$(cat "$W/r/done/dup.bin")" = "someone else's file" ] && ok "the other file is untouched" ||
    fail "the file in complete_dir changed"

# ---- DELETE while the create job of a complete file waits: the file survives
review_node p 4s 'verify_on_scan: "full"'
truncate -s 512M "${NODE_DIR[p]}/big.bin"
"$P2P_BIN" gen --filePath "${NODE_DIR[p]}/big.bin" --seedPath "${NODE_DIR[p]}" --tracker 127.0.0.1:9 \
    >/dev/null 2>&1 || die "gen big"
: > "${NODE_DIR[p]}/big.bin.ok"
UV_THREADPOOL_SIZE=1 start_node p
for i in $(seq 1 300); do
    [ "$(curl -s --max-time 5 "http://${NODE_ADDR[p]}/v2/seeds" | jq '.seeds|length')" = 1 ] && break
    sleep 0.1
done
make_file "$W/x.bin" 1024
"$P2P_BIN" gen --filePath "$W/x.bin" --seedPath "$W" --tracker 127.0.0.1:9 >/dev/null 2>&1 || die gen
IHX=$(jq -r .infoHash "$W/x.bin.seed")
# complete by name and size (so the create job takes it as complete), but not by content (so
# the full-verify scans skip it and it stays unregistered)
make_file "${NODE_DIR[p]}/x.bin" 1024
cp "$W/x.bin.seed" "${NODE_DIR[p]}/"
: > "${NODE_DIR[p]}/x.bin.ok"
P=${NODE_ADDR[p]}
curl -s -o /dev/null --max-time 30 -X POST "http://$P/v1/scan" &
S1=$!
sleep 0.2
curl -s -o "$W/xpost.body" --max-time 30 -X POST -H 'Content-Type: application/json' \
    --data-binary "{\"seed\":$(cat "$W/x.bin.seed")}" "http://$P/v1/task" &
T1=$!
sleep 0.2
curl -s -o /dev/null --max-time 30 -X POST "http://$P/v1/scan" &
S2=$!
state=""
for i in $(seq 1 400); do
    state=$(task_state p "$IHX")
    [ -n "$state" ] && break
    sleep 0.02
done
api p DELETE "/v1/task/$IHX"
wait "$S1" "$T1" "$S2" || true
if [ "$state" = pending ]; then
    expect "DELETE while its create job waits" 200 '.code=="E000"'
    sleep 0.5
    [ -f "${NODE_DIR[p]}/x.bin" ] && [ -f "${NODE_DIR[p]}/x.bin.seed" ] &&
        ok "the complete file and its seed were not removed" ||
        fail "DELETE during create removed the complete file or its seed"
else
    echo "note: create job window missed (state '$state'); removal check not exercised"
fi

# ---- DELETE while finishing
if [ -n "$SHM" ]; then
    start_tracker
    make_file "$W/f.bin" 262144                # 256 MiB
    node_config s
    IH=$(place_seeded s "$W/f.bin")
    start_node s
    review_node d 4s "complete_dir: \"$SHM/done\""
    start_node d
    api d POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[s]}/v2/seed/$IH\"}"
    expect "download task accepted" 200 '.code=="E000"'
    caught=""; pcode=""
    for i in $(seq 1 3000); do
        t=$(curl -s --max-time 5 "http://${NODE_ADDR[d]}/v1/task/$IH")
        st=$(printf '%s' "$t" | jq -r '.state // ""')
        if [ "$st" = downloading ] && printf '%s' "$t" | jq -e '.piecesDone==.pieceCount' >/dev/null; then
            pcode=$(curl -s -o /dev/null -D "$W/ph" -w '%{http_code}' --max-time 5 "http://${NODE_ADDR[d]}/v2/piece/$IH/0")
            api d DELETE "/v1/task/$IH"
            caught=$(task_state d "$IH")
            break
        fi
        [ "$st" = seeding ] && break
        sleep 0.01
    done
    if [ "$caught" = canceled ]; then
        if [ "$pcode" = 503 ] && grep -qi '^Retry-After:' "$W/ph"; then
            ok "piece request while finishing: 503 + Retry-After"
        elif [ "$pcode" = 200 ]; then
            echo "note: piece request landed before finishing began (200)"
        else
            fail "piece request while finishing: $pcode"
        fi
        sleep 3
        st=$(task_state d "$IH")
        [ "$st" = canceled ] && ok "DELETE while finishing: stays canceled" ||
            fail "DELETE while finishing: state '$st' (a zombie)"
        cmp -s "$W/f.bin" "$SHM/done/f.bin" && ok "the finished file is kept in complete_dir" ||
            fail "finished file missing or wrong after DELETE while finishing"
        api d POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[s]}/v2/seed/$IH\"}"
        expect "POST again after the cancel" 200 '.code=="E000"'
        wait_state d "$IH" seeding 20 && ok "found complete again: seeding"
    else
        echo "note: finishing window missed (state '$st'); zombie check not exercised"
    fi
fi

for n in r p; do
    kill -TERM "${NODE_PID[$n]}"
    wait_exit "${NODE_PID[$n]}" 20
    [ "$EXIT_ST" = 0 ] && ok "$n: SIGTERM exits 0" || fail "$n: exit status $EXIT_ST after SIGTERM"
done
finish
