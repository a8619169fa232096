#!/usr/bin/env bash
# kill -9 of a downloader mid-file, then a restart: it resumes from its saved bitfield without a
# new POST, keeps every piece it had reported verified, fetches only what it lacked, and the
# result is byte-identical.
. "$(dirname "$0")/node_lib.sh"

start_tracker
make_file "$W/big.bin" 8192            # 128 pieces of 64 KiB
node_config seeder 'upload_rate_limit: "1MiB"'
IH=$(place_seeded seeder "$W/big.bin" --pieceSize 64KiB)
start_node seeder
wait_state seeder "$IH" seeding 10

start_node d1
api d1 POST /v1/task "{\"seedFile\":\"http://${NODE_ADDR[seeder]}/v2/seed/$IH\"}"
expect "d1: task created" 200 ".taskId==\"$IH\""
wait_pieces d1 "$IH" 30 30 || finish
P=$(pieces_done d1 "$IH")
kill -9 "${NODE_PID[d1]}"
wait "${NODE_PID[d1]}" 2>/dev/null || true
[ "$P" -lt 128 ] || die "download finished before the kill; the test needs a slower seeder"
ok "d1 killed with -9 after $P reported pieces"

DL=${NODE_DIR[d1]}
[ -f "$DL/big.bin" ] && [ -f "$DL/big.bin.seed" ] && [ -f "$DL/big.bin.bitfield" ] \
    && ok "partial data, .seed and .bitfield are on disk" || fail "partial files missing: $(ls "$DL")"
[ "$(stat -c %s "$DL/big.bin")" -eq 8388608 ] && ok "data file has its full (sparse) size" || fail "data file size $(stat -c %s "$DL/big.bin")"
B=$(popcount "$DL/big.bin.bitfield")
[ "$B" -ge "$P" ] && ok "bitfield keeps every reported piece ($B >= $P)" || fail "bitfield has $B pieces, $P were reported"

# damage one claimed piece (as a power loss could): the resume re-hash must catch it
FIRST=$(od -An -v -tu1 "$DL/big.bin.bitfield" | awk '{for (i = 1; i <= NF; i++) { if ($i > 0 && !done) { b = 7; v = $i; while (v >= 2) { v = int(v / 2); b-- } print (n * 8) + b; done = 1 } n++ }}')
printf 'garbage!' | dd of="$DL/big.bin" bs=1 seek=$((FIRST * 65536 + 100)) conv=notrunc 2>/dev/null
B=$((B - 1))

start_node d1
wait_state d1 "$IH" seeding 40
grep -q "resuming, $B/128 pieces held" "$W/d1.err" && ok "resumed from the bitfield without a new POST" || fail "no resume line for $B pieces"
grep -q "1 pieces of the bitfield did not match" "$W/d1.err" && ok "damaged piece $FIRST caught by the resume re-hash" || fail "damaged piece not detected"
V=$(metric d1 p2p_node_pieces_verified_total)
[ "$V" -eq $((128 - B)) ] && ok "after restart fetched only the $V missing pieces" || fail "after restart verified $V pieces, expected $((128 - B))"
cmp -s "$W/big.bin" "$DL/big.bin" && ok "resumed file is byte-identical" || fail "resumed file differs"
[ ! -e "$DL/big.bin.bitfield" ] && [ -f "$DL/big.bin.ok" ] && ok ".bitfield replaced by .ok" || fail "bad final layout: $(ls "$DL")"
finish
