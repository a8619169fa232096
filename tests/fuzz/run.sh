#!/usr/bin/env bash
# Runs the libFuzzer targets of a P2P_FUZZ build, each for FUZZ_SECONDS (default 60), starting
# from the seed corpus in tests/fuzz/corpus/<name>; new inputs go to <build>/fuzz-corpus/<name>,
# crashes to <build>/fuzz-artifacts/<name>/. Prints executions per target; exits 1 on a crash.
# Usage: tests/fuzz/run.sh BUILD_DIR [name...]   (names: util config seed tus http)
set -uo pipefail
build=${1:?usage: run.sh BUILD_DIR [name...]}
shift
secs=${FUZZ_SECONDS:-60}
src=$(cd "$(dirname "$0")" && pwd)
bindir="$build/tests/fuzz"
if [ $# -gt 0 ]; then
    names=("$@")
else
    names=()
    for b in "$bindir"/fuzz_*; do
        [ -x "$b" ] && names+=("$(basename "$b" | sed 's/^fuzz_//')")
    done
fi
[ ${#names[@]} -gt 0 ] || { echo "run.sh: no fuzz targets in $bindir" >&2; exit 2; }

status=0
summary=""
for n in "${names[@]}"; do
    bin="$bindir/fuzz_$n"
    [ -x "$bin" ] || { echo "run.sh: $bin not built" >&2; status=1; continue; }
    work="$build/fuzz-corpus/$n"
    art="$build/fuzz-artifacts/$n"
    log="$build/fuzz-$n.log"
    mkdir -p "$work" "$art"
    args=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
          -artifact_prefix="$art/")
    [ -f "$src/$n.dict" ] && args+=(-dict="$src/$n.dict")
    echo "fuzz $n: ${secs}s (log $log)" >&2
    "$bin" "${args[@]}" "$work" "$src/corpus/$n" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    execs=${execs:-?}
    if [ $rc -ne 0 ]; then
        status=1
        summary+=$(printf '%-8s %12s execs  CRASH (rc %d): see %s and %s\n' "$n" "$execs" "$rc" \
                   "$log" "$art")$'\n'
    else
        summary+=$(printf '%-8s %12s execs  ok\n' "$n" "$execs")$'\n'
    fi
done
printf '\n%s' "$summary"
exit $status
