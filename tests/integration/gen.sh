#!/usr/bin/env bash
# End-to-end test of `p2p-sharer gen`: real binary, random files, every piece checksum and the
# infoHash recomputed with coreutils (split + sha256sum/sha1sum, dd, printf), seed fields read
# with jq, and every bad input refused with the documented exit status and no seed written.
set -euo pipefail

BIN=${P2P_BIN:?P2P_BIN must name the p2p-sharer binary}
command -v jq >/dev/null || { echo "gen.sh: jq is required (scripts/deps.sh installs it)" >&2; exit 1; }
W=$(mktemp -d /tmp/p2p-gen-test.XXXXXX)
cleanup() { chmod -R u+rwx "$W" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

fails=0
checks=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { checks=$((checks + 1)); }
gen() { timeout 60 "$BIN" gen "$@"; }

# verify SEED FILE ALGO PIECELEN VERSION [PRINTED]: checks every field of SEED against FILE, and
# that gen printed PRINTED (default SEED) as the seed path and the right infoHash.
verify() {
    local seed=$1 file=$2 algo=$3 pl=$4 version=$5 printed=${6:-$1}
    local name len n want sumcmd ih_seed
    name=$(basename "$file")
    len=$(stat -c %s "$file")
    n=$(( len == 0 ? 0 : (len + pl - 1) / pl ))
    sumcmd=${algo}sum
    # One jq run for the top-level fields: name|length|count|version|pieceLength|hashAlgo|keys|
    # distinct piece key lists.
    local got
    got=$(jq -r '[.fileName, .length, (.pieces | length), .version, .pieceLength, .hashAlgo,
                  ([keys_unsorted[]] | join(",")),
                  ([(.pieces // [])[] | [keys_unsorted[]] | join(",")] | unique | join(";"))]
                 | map(tostring) | join("|")' "$seed")
    local v2keys=version,fileName,trackerAddr,trackers,length,pieceLength,hashAlgo,pieces,infoHash,createdAt
    local v1keys=fileName,trackerAddr,length,pieces,createdAt
    local pkeys=""
    [ "$n" -gt 0 ] && pkeys=index,length,checksum
    if [ "$version" = 2 ]; then
        [ "$got" = "$name|$len|$n|2|$pl|$algo|$v2keys|$pkeys" ] || fail "$seed: fields $got"
    else
        # v1: exactly the Go original's fields, in its order, tab-indented, nothing else.
        [ "$got" = "$name|$len|$n|null|null|null|$v1keys|$pkeys" ] || fail "$seed: fields $got"
        grep -q '^	"fileName": ' "$seed" || fail "$seed: not tab-indented"
        ! grep -q '^ ' "$seed" || fail "$seed: space indentation"
        [ "$(tail -c 1 "$seed")" = "}" ] || fail "$seed: trailing bytes after }"
    fi
    # Piece i: index i, length min(pl, len - i*pl), checksum of bytes [i*pl, i*pl + length).
    local parts=$W/parts
    rm -rf "$parts" && mkdir "$parts"
    : > "$W/want-sums.txt"
    if [ "$len" -gt 0 ]; then
        split -a 6 -d -b "$pl" "$file" "$parts/p."
        (cd "$parts" && $sumcmd p.*) | cut -d' ' -f1 > "$W/want-sums.txt"
    fi
    awk -v n="$n" -v len="$len" -v pl="$pl" \
        'BEGIN { for (i = 0; i < n; i++) print i, (len - i * pl < pl ? len - i * pl : pl) }' \
        > "$W/want-geom.txt"
    jq -r '.pieces[] | "\(.index) \(.length)"' "$seed" > "$W/geom.txt"
    jq -r '.pieces[].checksum' "$seed" > "$W/sums.txt"
    cmp -s "$W/geom.txt" "$W/want-geom.txt" || fail "$seed: piece indexes/lengths differ"
    cmp -s "$W/sums.txt" "$W/want-sums.txt" || fail "$seed: piece checksums differ"
    [ "$(wc -l < "$W/sums.txt")" = "$n" ] || fail "$seed: $(wc -l < "$W/sums.txt") pieces, want $n"
    # The last piece once more with dd, at its byte offset.
    if [ "$n" -gt 0 ]; then
        got=$(dd if="$file" bs="$pl" skip=$((n - 1)) count=1 status=none | $sumcmd | cut -d' ' -f1)
        [ "$got" = "$(jq -r ".pieces[$((n - 1))].checksum" "$seed")" ] || fail "$seed: last piece (dd)"
    fi
    # infoHash = sha256("p2p-sharer-seed-v2\n" name "\n" length "\n" pieceLength "\n" algo "\n"
    #                   + every checksum + "\n")
    local ih
    ih=$( { printf 'p2p-sharer-seed-v2\n%s\n%s\n%s\n%s\n' "$name" "$len" "$pl" "$algo"
            cat "$W/want-sums.txt"; } | sha256sum | cut -d' ' -f1)
    if [ "$version" = 2 ]; then
        ih_seed=$(jq -r .infoHash "$seed")
        [ "$ih_seed" = "$ih" ] || fail "$seed: infoHash $ih_seed, recomputed $ih"
    fi
    [ "$(sed -n 's/^infoHash: //p' "$W/out")" = "$ih" ] || fail "$seed: printed infoHash"
    [ "$(sed -n 's/^seed: //p' "$W/out")" = "$printed" ] || fail "$seed: printed path"
    ok
}

mkdir -p "$W/in" "$W/seeds"

# --- sizes around piece boundaries, several piece sizes, both formats -------------------------
for pl in 16384 65536 1048576; do
    for size in 0 1 $((pl - 1)) $pl $((pl + 1)) $((3 * pl + 17)); do
        f=$W/in/f-$pl-$size.bin
        head -c "$size" /dev/urandom > "$f"
        if [ "$pl" = 1048576 ]; then
            gen --filePath "$f" --seedPath "$W/seeds" > "$W/out" || fail "gen $f"
        else
            gen --filePath="$f" --seedPath="$W/seeds" --pieceSize "$pl" > "$W/out" || fail "gen $f"
        fi
        verify "$W/seeds/$(basename "$f").seed" "$f" sha256 "$pl" 2
        [ "$pl" = 1048576 ] || continue
        rm -f "$W/seeds/$(basename "$f").seed"
        gen --filePath "$f" --seedPath "$W/seeds" --format v1 --tracker 10.0.0.5:35330 > "$W/out" ||
            fail "gen v1 $f"
        verify "$W/seeds/$(basename "$f").seed" "$f" sha1 1048576 1
        [ "$(jq -r .trackerAddr "$W/seeds/$(basename "$f").seed")" = 10.0.0.5:35330 ] ||
            fail "v1 trackerAddr"
    done
done

# --- ~10 MiB with several piece sizes (the K/M suffixes too) ---------------------------------
big=$W/in/big.bin
head -c $((10 * 1048576 + 12345)) /dev/urandom > "$big"
for ps in 16K 64KiB 1M 4MiB 16777216; do
    case $ps in 16K) pl=16384 ;; 64KiB) pl=65536 ;; 1M) pl=1048576 ;; 4MiB) pl=4194304 ;; *) pl=$ps ;; esac
    gen --filePath "$big" --seedPath "$W/seeds" --pieceSize "$ps" --tracker a.example:1 \
        --trackers b.example:2,c.example:3 > "$W/out" || fail "gen big $ps"
    verify "$W/seeds/big.bin.seed" "$big" sha256 "$pl" 2
done
[ "$(jq -c .trackers "$W/seeds/big.bin.seed")" = '["a.example:1","b.example:2","c.example:3"]' ] ||
    fail "trackers list"
[ "$(jq -r .trackerAddr "$W/seeds/big.bin.seed")" = a.example:1 ] || fail "trackerAddr"
gen --filePath "$big" --seedPath "$W/seeds" --format v1 > "$W/out" || fail "gen big v1"
verify "$W/seeds/big.bin.seed" "$big" sha1 1048576 1
[ "$(jq -r .trackerAddr "$W/seeds/big.bin.seed")" = localhost:35330 ] || fail "default tracker"

# Default seedPath is ./ and the default piece length is 1 MiB below 1000 MiB.
(cd "$W/in" && timeout 60 "$BIN" gen --filePath big.bin > "$W/out") || fail "gen in cwd"
verify "$W/in/big.bin.seed" "$big" sha256 1048576 2 ./big.bin.seed
rm -f "$W/in/big.bin.seed"
# No temporary files left behind by the atomic write.
[ -z "$(find "$W/seeds" -name '*.tmp*')" ] || fail "temporary files left in seedPath"

# --help goes to stdout, exit 0.
gen --help > "$W/help" || fail "--help exit status"
grep -q -- '--filePath' "$W/help" || fail "--help text"

# --- bad input: exit status, message on stderr, no seed -------------------------------------
mkdir -p "$W/bad" "$W/empty"
head -c 1000 /dev/urandom > "$W/bad/ok.bin"
head -c 1000 /dev/urandom > "$W/bad/.hidden"
mkfifo "$W/bad/fifo"
# expect STATUS ARGS...: gen must exit STATUS, say something on stderr, write nothing.
expect() {
    local want=$1 rc=0
    shift
    gen "$@" > "$W/out" 2> "$W/err" || rc=$?
    if [ "$rc" != "$want" ]; then
        fail "gen $* exited $rc, want $want"
    elif [ ! -s "$W/err" ]; then
        fail "gen $* printed no message"
    elif [ -n "$(ls -A "$W/empty")" ]; then
        fail "gen $* wrote $(ls -A "$W/empty")"
    else
        ok
    fi
    rm -rf "${W:?}/empty" && mkdir "$W/empty"
}
F=$W/bad/ok.bin
S=$W/empty
# Usage errors: 2.
expect 2
expect 2 --seedPath "$S"
expect 2 --filePath
expect 2 --filePath "$F" --seedPath
expect 2 --filePath --seedPath "$S"
expect 2 --filePath= --seedPath "$S"
expect 2 --filePath "$F" --seedPath "$S" --bogus 1
expect 2 --filepath "$F" --seedPath "$S"
expect 2 --FilePath "$F" --seedPath "$S"
expect 2 -filePath "$F" --seedPath "$S"
expect 2 --filePath "$F" --seedPath "$S" extra
expect 2 --filePath "$F" --filePath "$F" --seedPath "$S"
expect 2 --filePath "$F" --seedPath "$S" --pieceSize 20000
expect 2 --filePath "$F" --seedPath "$S" --pieceSize 8K
expect 2 --filePath "$F" --seedPath "$S" --pieceSize 128M
expect 2 --filePath "$F" --seedPath "$S" --pieceSize abc
expect 2 --filePath "$F" --seedPath "$S" --pieceSize -1
expect 2 --filePath "$F" --seedPath "$S" --pieceSize 99999999999999999999999
expect 2 --filePath "$F" --seedPath "$S" --format v3
expect 2 --filePath "$F" --seedPath "$S" --format V2
expect 2 --filePath "$F" --seedPath "$S" --format v1 --pieceSize 4M
expect 2 --filePath "$F" --seedPath "$S" --format v1 --trackers a:1,b:2
expect 2 --filePath "$F" --seedPath "$S" --tracker http://h:1
expect 2 --filePath "$F" --seedPath "$S" --tracker h:1/x
expect 2 --filePath "$F" --seedPath "$S" --tracker "h 1:2"
expect 2 --filePath "$F" --seedPath "$S" --tracker h
expect 2 --filePath "$F" --seedPath "$S" --tracker h:0
expect 2 --filePath "$F" --seedPath "$S" --trackers a:1,a:1
expect 2 --filePath "$F" --seedPath "$S" --trackers a:1,,b:2
expect 2 --filePath "$F" --seedPath "$S" --trackers a:1,
expect 2 --filePath "$F" --seedPath "$S" --trackers "$(seq -s, -f 'h:%g' 1 17)"
# Runtime errors: 1.
expect 1 --filePath "$W/bad/missing" --seedPath "$S"
expect 1 --filePath "$W/bad" --seedPath "$S"
expect 1 --filePath "$W/bad/fifo" --seedPath "$S"
expect 1 --filePath "$W/bad/.hidden" --seedPath "$S"
expect 1 --filePath "$F" --seedPath "$W/bad/missing-dir"
expect 1 --filePath "$F" --seedPath "$F"
if [ "$(id -u)" != 0 ]; then
    chmod 000 "$W/bad/ok.bin"
    expect 1 --filePath "$F" --seedPath "$S"
    chmod 644 "$W/bad/ok.bin"
    chmod 555 "$S"
    rc=0
    gen --filePath "$F" --seedPath "$S" > /dev/null 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "read-only seedPath exited $rc"
    chmod 755 "$S"
    [ -z "$(ls -A "$S")" ] || fail "read-only seedPath got files"
fi
# A sparse 1 TiB file at 16 KiB pieces needs a seed over 64 MiB: refused before hashing.
if truncate -s 1T "$W/bad/sparse.bin" 2>/dev/null; then
    expect 1 --filePath "$W/bad/sparse.bin" --seedPath "$S" --pieceSize 16K
fi
# A name too long for "<name>.seed".
long=$W/bad/$(head -c 252 /dev/zero | tr '\0' n)
head -c 10 /dev/urandom > "$long"
expect 1 --filePath "$long" --seedPath "$S"

echo "gen.sh: $checks checks, $fails failures"
[ "$fails" = 0 ]
