#!/usr/bin/env bash
# SIGTERM during long pool work: a full-verify scan of a 32 GiB sparse file and a resume
# re-hash of another (both take far longer than the stop grace). The hashing loops see the stop
# flag and give up: the node exits 0 promptly, and the resumed file's bitfield is kept as it was.
. "$(dirname "$0")/node_lib.sh"

PL=$((16 * 1024 * 1024))
NP=2048
C=$(head -c "$PL" /dev/zero | sha256sum | cut -c1-64)
# zero_seed NAME: a v2 seed of NP zero pieces (infoHash computed by the reader)
zero_seed() {
    jq -n --arg c "$C" --arg n "$1" --argjson pl "$PL" --argjson np "$NP" \
        '{version:2, fileName:$n, trackerAddr:"127.0.0.1:9", trackers:["127.0.0.1:9"],
          length:($pl*$np), pieceLength:$pl, hashAlgo:"sha256",
          pieces:[range(0;$np)|{index:., length:$pl, checksum:$c}],
          createdAt:"2026-01-01T00:00:00Z"}'
}

# a: complete file, verify_on_scan full
node_config a 'verify_on_scan: "full"'
truncate -s $((PL * NP)) "${NODE_DIR[a]}/z.bin"
zero_seed z.bin > "${NODE_DIR[a]}/z.bin.seed"
: > "${NODE_DIR[a]}/z.bin.ok"
# b: unfinished download whose bitfield claims every piece (re-hashed on resume)
node_config b
truncate -s $((PL * NP)) "${NODE_DIR[b]}/r.bin"
zero_seed r.bin > "${NODE_DIR[b]}/r.bin.seed"
head -c $((NP / 8)) /dev/zero | tr '\0' '\377' > "${NODE_DIR[b]}/r.bin.bitfield"

start_node a
start_node b
sleep 1
for n in a b; do kill -TERM "${NODE_PID[$n]}"; done
for n in a b; do
    wait_exit "${NODE_PID[$n]}" 6
    [ "$EXIT_ST" = 0 ] && ok "$n: SIGTERM during long hashing exits 0 within 6 s" ||
        fail "$n: exit status '$EXIT_ST' (still hashing after 6 s?)"
done
grep -q 'content does not match' "$W/a.err" && fail "a: abandoned scan reported the file as bad" ||
    ok "a: abandoned scan does not call the file bad"
[ "$(popcount "${NODE_DIR[b]}/r.bin.bitfield")" = "$NP" ] && ok "b: bitfield kept intact" ||
    fail "b: bitfield changed by an abandoned re-hash: $(popcount "${NODE_DIR[b]}/r.bin.bitfield")"
finish
