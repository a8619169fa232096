#!/usr/bin/env bash
# Benchmark `p2p-sharer gen` against sha256sum and `openssl dgst -sha256` on one page-cached file
# (default 1 GiB), best of N runs each, in the same run. Prints seconds, GB/s (10^9 B/s) and
# ratios. Usage: bench/gen.sh [BIN] (default build/p2p-sharer); env SIZE_MIB (1024), RUNS (3),
# BENCH_DIR (a temp dir, removed afterwards), PIECE (gen --pieceSize; default: gen's own).
set -euo pipefail

BIN=${1:-${P2P_BIN:-build/p2p-sharer}}
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
[ -x "$BIN" ] || { echo "bench/gen.sh: no binary at $BIN (build first or pass its path)" >&2; exit 1; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
own_dir=0
if [ -z "${BENCH_DIR:-}" ]; then
    BENCH_DIR=$(mktemp -d /tmp/p2p-bench-gen.XXXXXX)
    own_dir=1
fi
cleanup() { [ "$own_dir" = 1 ] && rm -rf "$BENCH_DIR"; true; }
trap cleanup EXIT

f=$BENCH_DIR/bench.bin
if [ ! -f "$f" ] || [ "$(stat -c %s "$f")" != $((SIZE_MIB * 1048576)) ]; then
    head -c $((SIZE_MIB * 1048576)) /dev/urandom > "$f"
fi
cat "$f" > /dev/null # page cache
bytes=$(stat -c %s "$f")
piece_args=()
[ -n "${PIECE:-}" ] && piece_args=(--pieceSize "$PIECE")

# best CMD...: best wall-clock seconds of RUNS runs.
best() {
    local b="" t0 t1 t
    for _ in $(seq "$RUNS"); do
        t0=$(date +%s.%N)
        "$@" > /dev/null
        t1=$(date +%s.%N)
        t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
        if [ -z "$b" ] || awk -v t="$t" -v b="$b" 'BEGIN { exit !(t < b) }'; then b=$t; fi
    done
    echo "$b"
}

echo "file: $SIZE_MIB MiB ($bytes bytes), page-cached; $(nproc) CPUs; best of $RUNS"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A secs
secs[gen]=$(best "$BIN" gen --filePath "$f" --seedPath "$BENCH_DIR" "${piece_args[@]}")
secs[gen_mmap]=$(best env P2P_GEN_IO=mmap "$BIN" gen --filePath "$f" --seedPath "$BENCH_DIR" "${piece_args[@]}")
secs[gen_1thread]=$(best taskset -c 0 "$BIN" gen --filePath "$f" --seedPath "$BENCH_DIR" "${piece_args[@]}")
secs[gen_v1_sha1]=$(best "$BIN" gen --filePath "$f" --seedPath "$BENCH_DIR" --format v1)
secs[openssl]=$(best openssl dgst -sha256 "$f")
secs[sha256sum]=$(best sha256sum "$f")

printf '%-34s %8s %8s %14s\n' "command" "seconds" "GB/s" "vs gen"
for k in gen gen_mmap gen_1thread gen_v1_sha1 openssl sha256sum; do
    case $k in
        gen) label="p2p-sharer gen (v2 sha256, pread)" ;;
        gen_mmap) label="p2p-sharer gen, P2P_GEN_IO=mmap" ;;
        gen_1thread) label="p2p-sharer gen on 1 CPU (taskset)" ;;
        gen_v1_sha1) label="p2p-sharer gen --format v1 (sha1)" ;;
        openssl) label="openssl dgst -sha256" ;;
        sha256sum) label="sha256sum" ;;
    esac
    s=${secs[$k]}
    awk -v l="$label" -v s="$s" -v n="$bytes" -v g="${secs[gen]}" \
        'BEGIN { printf "%-34s %8.3f %8.2f %13.2fx\n", l, s, n / s / 1e9, s / g }'
done
echo "(vs gen = that command's time / gen's time: above 1 means gen is faster)"
