#!/usr/bin/env bash
# A rate-limited node serves piece requests in order of rarity, not only of arrival: a request
# whose P2P-Holders header says few nodes hold the piece overtakes queued requests for common
# pieces (docs/PROTOCOL.md, "Upload queue"). Five 256 KiB pieces through a 1 MiB/s cap (two
# requests are sent at a time): four common requests first, then one rare 0.2 s later; in
# arrival order the rare one would finish last, about 0.25 s after pieces 2 and 3.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/f.bin" 1536
IH=$(place_seeded up "$W/f.bin" --pieceSize 256KiB)
start_node up "upload_rate_limit: \"1MiB\""
wait_state up "$IH" seeding 10
URL="http://${NODE_ADDR[up]}/v2/piece/$IH"

# get I HOLDERS: fetches piece I with P2P-Holders: HOLDERS ("-" = no header) in the background;
# writes its end time (ns) to $W/end.I and its status to $W/code.I
get() {
    local hdr=()
    [ "$2" != - ] && hdr=(-H "P2P-Holders: $2")
    ( code=$(curl -s --max-time 30 "${hdr[@]}" -o "$W/p$1.bin" -w '%{http_code}' "$URL/$1")
      date +%s%N > "$W/end.$1"; echo "$code" > "$W/code.$1" ) &
    GETS+=($!)
}

GETS=()
get 0 16; get 1 16; get 2 -; get 3 16
sleep 0.2
get 4 1
for p in "${GETS[@]}"; do wait "$p" || true; done
good=0
for i in 0 1 2 3 4; do
    [ "$(cat "$W/code.$i")" = 200 ] && cmp -s "$W/p$i.bin" \
        <(dd if="$W/f.bin" bs=262144 skip="$i" count=1 status=none) && good=$((good + 1))
done
[ $good = 5 ] && ok "all five pieces served and correct" || fail "only $good of 5 pieces correct"
e4=$(cat "$W/end.4")
later=0
for i in 0 1 2 3; do [ "$(cat "$W/end.$i")" -gt "$e4" ] && later=$((later + 1)); done
# two of the common ones were being sent when it came (the heads); the other two were queued
# and must finish after it (in arrival order none would, and the full queue would refuse it)
[ "$(cat "$W/code.4")" = 200 ] && [ "$later" -ge 2 ] && ok "the rare piece overtook the queued common ones ($later finished after it)" ||
    fail "the rare piece was refused or served in arrival order (status $(cat "$W/code.4")," \
         "$later finished after it): ends" \
         "$(cat "$W"/end.[0-4] | tr '\n' ' ')"

# a bad header is treated as no header (common): it does not fail the request (piece 5 was never
# sent: this origin seed refuses a piece it sent moments ago while another was never sent)
code=$(curl -s --max-time 30 -H 'P2P-Holders: -5x' -o /dev/null -w '%{http_code}' "$URL/5")
[ "$code" = 200 ] && ok "a malformed P2P-Holders header is ignored" ||
    fail "malformed P2P-Holders answered $code"
finish
