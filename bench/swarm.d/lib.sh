# shellcheck shell=bash
# Shared helpers for bench/swarm (sourced): process bookkeeping, free ports, timing, arithmetic.
# Every process started here is recorded by PID and killed by PID on exit; nothing else is
# touched. All listeners are on 127.0.0.1.

PIDS=()                 # every background process we started (killed by PID on exit)
declare -A USED_PORTS   # ports handed out by free_port in this run

log() { printf '[swarm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# spawn OUT ERR CMD...: starts CMD in the background, stdout/stderr to OUT/ERR; sets SPAWNED.
spawn() {
    local out=$1 err=$2; shift 2
    "$@" >"$out" 2>"$err" </dev/null &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# forget_pids PID...: drops reaped PIDs from PIDS (a reaped PID may be reused by anyone).
forget_pids() {
    local p q keep=()
    for q in "${PIDS[@]}"; do
        for p in "$@"; do [ "$q" = "$p" ] && continue 2; done
        keep+=("$q")
    done
    PIDS=("${keep[@]}")
}

# stop_pids PID...: SIGTERM, up to 5 s grace, then SIGKILL; reaps and forgets them. Only PIDs
# of our own children that have not been reaped yet.
stop_pids() {
    local p i alive
    [ $# -gt 0 ] || return 0
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for i in $(seq 1 50); do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
    forget_pids "$@"
}

# stop_all: stops every process this run started and forgets them.
stop_all() {
    stop_pids "${PIDS[@]}"
    PIDS=()
}

# now: wall clock in seconds with microseconds (no fork).
now() { printf '%s' "$EPOCHREALTIME"; }

NOW_MS=0
# nap SECONDS: sleeps without a fork (read with a timeout on a FIFO nobody writes to). The wait
# loops poll every 50-100 ms for up to a minute; a `sleep` process per turn was CPU taken from
# the swarm being measured (S3 runs 65 busy processes on 2 cores).
NAP_FD=
nap() {
    if [ -z "$NAP_FD" ]; then
        local f
        f=$(mktemp -u "${TMPDIR:-/tmp}/p2p-nap.XXXXXX")
        mkfifo -m 600 "$f" && exec {NAP_FD}<>"$f"
        rm -f "$f"
    fi
    read -r -t "$1" -u "$NAP_FD" _ || true
}
# tick: sets NOW_MS to the wall clock in ms without a subshell.
tick() { local t=${EPOCHREALTIME/./}; NOW_MS=$((t / 1000)); }

# calc EXPR: floating-point arithmetic through awk, printed with %.Nf (N = CALC_PREC, default 2).
calc() { awk "BEGIN { printf \"%.${CALC_PREC:-2}f\", $1 }"; }

# fmax EXPR EXPR: the larger of two awk expressions, formatted like calc.
fmax() { awk "BEGIN { a = $1; b = $2; printf \"%.${CALC_PREC:-2}f\", (a > b) ? a : b }"; }

# median NUMBERS...: the median (mean of the two middle values for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        if (NR % 2) printf "%.3f", v[(NR + 1) / 2];
        else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# port_busy PORT: true if any TCP or UDP socket on this host uses PORT (local side).
port_busy() {
    [ -n "$(ss -Htanu "( sport = :$1 )" 2>/dev/null)" ]
}

# Ports for listeners come from outside the kernel's ephemeral range, so that outgoing
# connections cannot take one between the check and the bind: below it if there is room.
read -r EPH_LO EPH_HI < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPH_LO=32768
if [ "${EPH_LO:-32768}" -gt 12000 ]; then PORT_BASE=10000; PORT_SPAN=$((EPH_LO - 10000))
else PORT_BASE=$((EPH_HI + 1)); PORT_SPAN=$((65536 - EPH_HI - 1)); fi

# free_port: prints a port that no socket uses now and that this run has not handed out yet.
free_port() {
    local p i
    [ "$PORT_SPAN" -gt 100 ] || die "no port range outside the ephemeral ports"
    for i in $(seq 1 500); do
        p=$((PORT_BASE + (RANDOM * 32768 + RANDOM) % PORT_SPAN))
        [ -n "${USED_PORTS[$p]:-}" ] && continue
        port_busy "$p" && continue
        USED_PORTS[$p]=1
        printf '%s' "$p"
        return 0
    done
    die "no free port found"
}

# wait_tcp PORT TIMEOUT_S: waits until something listens on 127.0.0.1:PORT (TCP).
wait_tcp() {
    local port=$1 t=$2 i
    for i in $(seq 1 $((t * 20))); do
        [ -n "$(ss -Htln "( sport = :$port )" 2>/dev/null)" ] && return 0
        sleep 0.05
    done
    return 1
}

# wait_listening FILE PID TIMEOUT_S: waits for "LISTENING host:port" in FILE; prints host:port.
# Polls every 5 ms with shell builtins only: the harness's own delay is inside every T_last.
wait_listening() {
    local file=$1 pid=$2 t=$3 line deadline=$((EPOCHSECONDS + $3))
    while :; do
        if [ -s "$file" ]; then
            while IFS= read -r line; do
                if [[ $line == "LISTENING "* ]]; then printf '%s' "${line#LISTENING }"; return 0; fi
            done < "$file"
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$EPOCHSECONDS" -le "$deadline" ] || return 1
        sleep 0.005
    done
}

# cpu_ticks PID: utime+stime of PID in clock ticks (0 if gone).
cpu_ticks() {
    local f
    f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    f=${f##*) }    # drop "pid (comm) "; fields now start at field 3
    # shellcheck disable=SC2086
    set -- $f
    echo $(( ${12} + ${13} ))
}

# popcount_file FILE: number of set bits in FILE (a bitfield); 0 if missing.
popcount_file() {
    [ -f "$1" ] || { echo 0; return; }
    od -An -v -tu1 "$1" | awk '{ for (i = 1; i <= NF; i++) { v = $i;
        while (v) { n += v % 2; v = int(v / 2) } } } END { print n + 0 }'
}

# make_blob FILE BYTES: random content (cached per size under the work dir).
make_blob() {
    local file=$1 bytes=$2
    [ -f "$file" ] && [ "$(stat -c %s "$file")" = "$bytes" ] && return 0
    head -c "$bytes" /dev/urandom > "$file"
    sync "$file"
}

# settle: flushes every dirty page (the blob, the previous run's leftovers) so that no
# writeback from before a run competes with the run being timed.
settle() { sync; sleep 0.5; }

# mib_to_bytes N: N MiB/s in bytes/s.
mib_to_bytes() { echo $(( $1 * 1048576 )); }
