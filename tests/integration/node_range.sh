#!/usr/bin/env bash
# GET /v2/file with HEAD and single Range requests (curl), and 416 for unsatisfiable ranges.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/f.bin" 1500              # 1536000 bytes
SIZE=1536000
IH=$(place_seeded seeder "$W/f.bin" --pieceSize 64KiB)
start_node seeder
wait_state seeder "$IH" seeding 10
URL="http://${NODE_ADDR[seeder]}/v2/file/$IH"

curl -s --max-time 10 -o "$W/full" "$URL"
cmp -s "$W/f.bin" "$W/full" && ok "whole file" || fail "whole file differs"

code=$(curl -s --max-time 10 -o "$W/r1" -D "$W/h1" -w '%{http_code}' -r 100-199 "$URL")
[ "$code" = 206 ] && cmp -s "$W/r1" <(tail -c +101 "$W/f.bin" | head -c 100) && ok "Range 100-199 is a 206 with the right bytes" || fail "Range 100-199: $code"
grep -qi "^content-range: bytes 100-199/$SIZE" "$W/h1" && ok "Content-Range header" || fail "Content-Range: $(grep -i content-range "$W/h1")"
grep -qi '^accept-ranges: bytes' "$W/h1" && ok "Accept-Ranges header" || fail "no Accept-Ranges"

code=$(curl -s --max-time 10 -o "$W/r2" -w '%{http_code}' -r -1000 "$URL")
[ "$code" = 206 ] && cmp -s "$W/r2" <(tail -c 1000 "$W/f.bin") && ok "suffix range -1000" || fail "suffix range: $code"
code=$(curl -s --max-time 10 -o "$W/r3" -w '%{http_code}' -r 1000000- "$URL")
[ "$code" = 206 ] && cmp -s "$W/r3" <(tail -c +1000001 "$W/f.bin") && ok "open range 1000000-" || fail "open range: $code"
# a resumed download: curl -C continues a partial file
head -c 500000 "$W/f.bin" > "$W/partial"
curl -s --max-time 10 -C - -o "$W/partial" "$URL"
cmp -s "$W/f.bin" "$W/partial" && ok "curl -C - resumes a partial download" || fail "curl -C - result differs"

code=$(curl -s --max-time 10 -o "$W/r4" -D "$W/h4" -w '%{http_code}' -r "$SIZE-" "$URL")
[ "$code" = 416 ] && ok "range past the end is 416" || fail "range past the end: $code"
grep -qi "^content-range: bytes \*/$SIZE" "$W/h4" && ok "416 carries Content-Range: bytes */size" || fail "416 headers: $(cat "$W/h4")"
jq -e "$ERRJSON" "$W/r4" >/dev/null && ok "416 body is a JSON error" || fail "416 body: $(cat "$W/r4")"

curl -s --max-time 10 -I -o /dev/null -D "$W/hh" "$URL"
grep -qi "^content-length: $SIZE" "$W/hh" && head -1 "$W/hh" | grep -q ' 200' && ok "HEAD: 200 with Content-Length" || fail "HEAD: $(cat "$W/hh")"

code=$(curl -s --max-time 10 -o "$W/r5" -w '%{http_code}' "http://${NODE_ADDR[seeder]}/v2/file/$(printf '%064d' 0)")
[ "$code" = 404 ] && ok "unknown file is 404" || fail "unknown file: $code"
finish
