#!/usr/bin/env bash
# A rate-limited node serves piece requests in order of rarity, not only of arrival, and refuses
# what would wait too long (docs/PROTOCOL.md, "Upload queue"). 64 KiB pieces through a 1 MiB/s
# cap (62.5 ms each, one sent at a time):
#  1. six common requests (P2P-Holders: 16, one without the header, which counts as 16), then a
#     rare one (P2P-Holders: 1) 0.05 s later: it overtakes the queued common ones (in arrival
#     order it would finish last);
#  2. twelve common requests at once: the queue takes what 400 ms of the rate holds (6 queued
#     ahead at most), the rest get 503 with P2P-Retry-After-Ms (20..1000 ms);
#  3. eight requests at once from a downloader that knows no other holder (P2P-Holders: 1): up
#     to 1 s may queue, so all are served.
# The seed is an origin seed (super-seeding), so every request asks for a different piece.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/f.bin" 2048
IH=$(place_seeded up "$W/f.bin" --pieceSize 64KiB)
start_node up "upload_rate_limit: \"1MiB\""
wait_state up "$IH" seeding 10
URL="http://${NODE_ADDR[up]}/v2/piece/$IH"
PIECE=65536

# piece_ok I FILE: FILE holds piece I of f.bin
piece_ok() { cmp -s "$2" <(dd if="$W/f.bin" bs=$PIECE skip="$1" count=1 status=none); }

# get I HOLDERS: fetches piece I with P2P-Holders: HOLDERS ("-" = no header) in the background; writes its end
# time (ns) to $W/end.I and its status to $W/code.I
get() {
    local hdr=()
    [ "$2" != - ] && hdr=(-H "P2P-Holders: $2")
    ( code=$(curl -s --max-time 30 "${hdr[@]}" -o "$W/p$1.bin" -w '%{http_code}' "$URL/$1")
      date +%s%N > "$W/end.$1"; echo "$code" > "$W/code.$1" ) &
    GETS+=($!)
}

GETS=()
for i in 0 1 2 3 4 5; do get $i "$([ $i = 2 ] && echo - || echo 16)"; done
sleep 0.05
get 6 1
for p in "${GETS[@]}"; do wait "$p" || true; done
good=0
for i in 0 1 2 3 4 5 6; do
    [ "$(cat "$W/code.$i")" = 200 ] && piece_ok "$i" "$W/p$i.bin" && good=$((good + 1))
done
[ $good = 7 ] && ok "all seven pieces served and correct" || fail "only $good of 7 pieces correct"
e6=$(cat "$W/end.6")
later=0
for i in 0 1 2 3 4 5; do [ "$(cat "$W/end.$i")" -gt "$e6" ] && later=$((later + 1)); done
# at most two common ones were done or being sent when it came; the others were queued and must
# finish after it (in arrival order none would)
[ "$later" -ge 2 ] && ok "the rare piece overtook the queued common ones ($later finished after it)" ||
    fail "the rare piece was served in arrival order ($later finished after it): ends" \
         "$(cat "$W"/end.[0-6] | tr '\n' ' ')"

# burst I0 N HOLDERS: N requests at once (one curl, parallel) for pieces I0..I0+N-1; prints
# "STATUS RETRY_MS" per request
burst() {
    local args=() i
    for ((i = $1; i < $1 + $2; i++)); do args+=(-o "$W/b$i.bin" "$URL/$i"); done
    curl -s --max-time 30 --parallel --parallel-immediate --parallel-max "$2" \
        -H "P2P-Holders: $3" -w '%{http_code} %header{p2p-retry-after-ms}\n' "${args[@]}"
}

out=$(burst 7 12 16)
served=$(grep -c '^200 ' <<< "$out" || true)
refused=$(grep -c '^503 ' <<< "$out" || true)
retry_ok=$(awk '$1 == 503 && $2 ~ /^[0-9]+$/ && $2 >= 20 && $2 <= 1000' <<< "$out" | wc -l)
bad=0
for ((i = 7; i < 19; i++)); do
    [ -s "$W/b$i.bin" ] && grep -q '"code"' "$W/b$i.bin" && continue # a 503's JSON body
    [ -s "$W/b$i.bin" ] && ! piece_ok "$i" "$W/b$i.bin" && bad=$((bad + 1))
done
# (at most 6 can wait; more are served only if others finished before they arrived)
[ "$served" -ge 4 ] && [ "$refused" -ge 1 ] && [ "$refused" = $((12 - served)) ] &&
    [ "$retry_ok" = "$refused" ] && [ $bad = 0 ] &&
    ok "a full queue: $served of 12 common requests served, $refused refused with P2P-Retry-After-Ms" ||
    fail "12 common requests at once: $(tr '\n' ',' <<< "$out") ($bad bad pieces)"

out=$(burst 19 8 1)
served=$(grep -c '^200 ' <<< "$out" || true)
bad=0
for ((i = 19; i < 27; i++)); do piece_ok "$i" "$W/b$i.bin" || bad=$((bad + 1)); done
[ "$served" = 8 ] && [ $bad = 0 ] &&
    ok "requests whose downloader knows no other holder queue up to 1 s: all 8 served" ||
    fail "8 sole-holder requests at once: $(tr '\n' ',' <<< "$out") ($bad bad pieces)"

# a bad header is treated as no header (common): it does not fail the request
code=$(curl -s --max-time 30 -H 'P2P-Holders: -5x' -o /dev/null -w '%{http_code}' "$URL/27")
[ "$code" = 200 ] && ok "a malformed P2P-Holders header is ignored" ||
    fail "malformed P2P-Holders answered $code"
finish
