# Helpers for the node review tests (sourced after node_lib.sh): a scriptable fake tracker
# (FAKE_TRACKER, tests/unit/node_fake_tracker.c) and node configs with chosen session_expire.
: "${FAKE_TRACKER:?FAKE_TRACKER must point at node_fake_tracker}"
declare -A FAKE_ADDR FAKE_PID

# start_fake NAME [args...]: sets FAKE_ADDR[NAME]; requests are logged to $W/NAME.out.
start_fake() {
    local name=$1
    shift
    "$FAKE_TRACKER" "$@" > "$W/$name.out" 2>> "$W/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    FAKE_PID[$name]=$pid
    FAKE_ADDR[$name]=$(wait_line "$W/$name.out" "$pid")
    [ -n "${FAKE_ADDR[$name]}" ] || die "fake tracker $name did not start"
}

# fake_count NAME REGEX: how many logged requests of fake NAME match REGEX.
fake_count() {
    grep -c -E "$2" "$W/$1.out" 2>/dev/null || true
}

# review_node NAME SESSION_EXPIRE [EXTRA_YAML]: writes $W/NAME.yaml (no start).
review_node() {
    local name=$1 expire=$2 extra=${3:-}
    mkdir -p "$W/$name/dl"
    NODE_DIR[$name]="$W/$name/dl"
    cat > "$W/$name.yaml" <<EOC
download_dir: "$W/$name/dl"
session_expire: "$expire"
max_download_concurrency: 8
max_peer_concurrency: 4
log: {level: "debug"}
$extra
EOC
}

# seeded_in NAME FILE TRACKER [gen args...]: FILE + seed (tracker TRACKER) + .ok in NAME's
# download_dir; prints the infoHash.
seeded_in() {
    local name=$1 file=$2 tracker=$3
    shift 3
    local dir=${NODE_DIR[$name]}
    cp "$file" "$dir/"
    "$P2P_BIN" gen --filePath "$dir/$(basename "$file")" --seedPath "$dir" --tracker "$tracker" \
        "$@" > "$W/gen.out" 2>&1 || { cat "$W/gen.out" >&2; die "gen failed"; }
    : > "$dir/$(basename "$file").ok"
    jq -r '.infoHash // empty' "$dir/$(basename "$file").seed"
}
