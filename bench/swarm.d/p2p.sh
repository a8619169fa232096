# shellcheck shell=bash
# Our side of bench/swarm (sourced): one p2p-sharer tracker, a seeding node and N downloading
# nodes, all on 127.0.0.1 with the same upload cap; optional chaos (churn, a lying peer, a
# tracker restart). A node "holds a verified file" when its <name>.ok appears (the node writes it
# after every piece was hash-checked, fsync and the move to complete_dir); the .ok mtime is the
# finish time. Counters come from each node's GET /metrics.

# p2p_yaml FILE LISTEN DIR UPLOAD: writes a node config (plus $SWARM_NODE_YAML lines, if set).
p2p_yaml() {
    cat > "$1" <<EOF
web: {listen_address: "$2"}
download_dir: "$3"
upload_rate_limit: $4
log: {level: "${SWARM_LOG_LEVEL:-warn}"}
${SWARM_NODE_YAML:-}
EOF
}

# p2p_start NAME CONFIG: starts a node; sets SPAWNED (pid) and ADDR (host:port).
p2p_start() {
    local name=$1 cfg=$2
    spawn "$PDIR/$name.out" "$PDIR/$name.err" "$BIN" node -c "$cfg"
    ADDR=$(wait_listening "$PDIR/$name.out" "$SPAWNED" 15) || {
        tail -n 20 "$PDIR/$name.err" >&2; die "node $name did not start"; }
}

# p2p_metric ADDR NAME: value of an unlabelled counter from ADDR's /metrics (0 if absent).
p2p_metric() {
    curl -s --max-time 5 "http://$1/metrics" |
        awk -v m="$2" '$1 == m { v = $2 } END { printf "%.0f", v + 0 }'
}

# p2p_poll ADDR...: one curl for all nodes' task views; prints "ADDR STATE PIECES_DONE" lines
# (STATE "none" if the node answered without a task, "down" if it did not answer).
p2p_poll() {
    local urls=() a
    for a in "$@"; do urls+=("http://$a/v1/task/$IH"); done
    curl -s --max-time 3 -w '{"@url":"%{url_effective}"}\n' "${urls[@]}" 2>/dev/null |
        jq -rn 'foreach inputs as $x ({b: null, o: null};
                  if ($x | type) == "object" and ($x | has("@url"))
                  then {b: null, o: {u: $x["@url"], b: .b}} else {b: $x, o: null} end;
                  .o | select(. != null)
                  | "\(.u | sub("^http://"; "") | sub("/.*"; "")) \(
                       if .b == null then "down" else (.b.state // "none") end) \(
                       .b.piecesDone // -1)")' 2>/dev/null || true
}

# p2p_run DIR SRC N U_SEED U_NODE TMAX MODE: MODE is plain, churn (S6: 4 nodes killed -9 at
# 50 % of their pieces and restarted on the same address), liar (S7: one more node serving bad
# bytes for 10 % of pieces) or trackerkill (S8: tracker killed -9 at 3 s, restarted on the same
# port at 8 s). Sets R_TIMES, R_SEEDUP, R_UPSUM (bytes_up of every node, seed and liar
# included), R_DOWNSUM, R_NEED (N·F), R_BAD, R_NOTE; returns 1 if not every node finished.
p2p_run() {
    local dir=$1 src=$2 n=$3 useed=$4 unode=$5 tmax=$6 mode=$7
    local name tport t0 deadline i rc=0 pc pl fbytes tr_pid tcpu0 tcpu1 tstart
    PDIR=$dir
    name=$(basename "$src")
    fbytes=$(stat -c %s "$src")
    mkdir -p "$dir/n0"

    # tracker on a fixed free port (S8 restarts it on the same one; seeds name it)
    tport=$(free_port)
    cat > "$dir/tracker.yaml" <<EOF
web: {listen_address: "127.0.0.1:$tport"}
log: {level: "warn"}
EOF
    spawn "$dir/tracker.out" "$dir/tracker.err" "$BIN" tracker -c "$dir/tracker.yaml"
    tr_pid=$SPAWNED
    wait_listening "$dir/tracker.out" "$tr_pid" 15 >/dev/null || {
        cat "$dir/tracker.err" >&2; die "tracker did not start"; }
    tcpu0=$(cpu_ticks "$tr_pid")

    # seeder: data, seed and an empty .ok in its download_dir before it starts
    ln "$src" "$dir/n0/$name" 2>/dev/null || cp "$src" "$dir/n0/$name"
    "$BIN" gen --tracker "127.0.0.1:$tport" --filePath "$dir/n0/$name" --seedPath "$dir/n0" \
        > "$dir/gen.out" 2>&1 || { cat "$dir/gen.out" >&2; die "gen failed"; }
    IH=$(jq -r .infoHash "$dir/n0/$name.seed")
    pc=$(jq -r '.pieces | length' "$dir/n0/$name.seed")
    pl=$(jq -r '.pieceLength // 1048576' "$dir/n0/$name.seed")
    : > "$dir/n0/$name.ok"
    p2p_yaml "$dir/n0.yaml" "127.0.0.1:0" "$dir/n0" "$useed"
    p2p_start n0 "$dir/n0.yaml"
    local seed_addr=$ADDR
    local -a pids=("$SPAWNED")

    # S7: the liar holds a copy with 10 % of its pieces corrupted, with the genuine seed and .ok
    local liar_addr=""
    if [ "$mode" = liar ]; then
        mkdir -p "$dir/bad"
        cp "$src" "$dir/bad/$name"
        cp "$dir/n0/$name.seed" "$dir/bad/"
        : > "$dir/bad/$name.ok"
        local nbad=0
        for ((i = 5; i < pc; i += 10)); do
            head -c 64 /dev/urandom | dd of="$dir/bad/$name" bs=1 seek=$((i * pl + 4096)) \
                conv=notrunc status=none
            nbad=$((nbad + 1))
        done
        p2p_yaml "$dir/bad.yaml" "127.0.0.1:0" "$dir/bad" "$unode"
        p2p_start bad "$dir/bad.yaml"
        liar_addr=$ADDR
        pids+=("$SPAWNED")
    fi

    # ready = the seed is served and the tracker lists a holder (aria2c gets a fixed 2 s instead)
    local ready=0
    for i in $(seq 1 100); do
        if curl -sf --max-time 2 -o /dev/null "http://$seed_addr/v2/seed/$IH" &&
           [ "$(curl -s --max-time 2 "http://127.0.0.1:$tport/v2/peers?infoHash=$IH&nodeId=bench" |
                jq -r '.peers | length' 2>/dev/null || echo 0)" -ge 1 ]; then
            ready=1; break
        fi
        sleep 0.1
    done
    [ $ready = 1 ] || { tail -n 20 "$dir/n0.err" "$dir/tracker.err" >&2; die "seeder not ready"; }

    # downloaders; churn victims (1..4) get fixed ports so a restart keeps their address
    local -a addrs=() cfgs=()
    for i in $(seq 1 "$n"); do
        mkdir -p "$dir/n$i"
        local listen="127.0.0.1:0"
        if [ "$mode" = churn ] && [ "$i" -le 4 ]; then listen="127.0.0.1:$(free_port)"; fi
        p2p_yaml "$dir/n$i.yaml" "$listen" "$dir/n$i" "$unode"
        cfgs[i]="$dir/n$i.yaml"
    done
    t0=$(now)
    echo "$t0" > "$dir/t0"
    tstart=$t0
    # S8: a timer of its own kills the tracker at t0 + 3 s and, at t0 + 8 s, exec's a new tracker
    # with the same config (same port), so its PID becomes the new tracker's
    local old_tr=$tr_pid
    if [ "$mode" = trackerkill ]; then
        (
            sleep "$(fmax "$t0 + 3 - $(now)" 0)"
            cpu_ticks "$old_tr" > "$dir/tracker1.cpu"
            kill -KILL "$old_tr"
            now > "$dir/tracker.killed"
            sleep "$(fmax "$t0 + 8 - $(now)" 0)"
            now > "$dir/tracker.restarted"
            exec "$BIN" tracker -c "$dir/tracker.yaml" > "$dir/tracker2.out" \
                2> "$dir/tracker2.err" < /dev/null
        ) &
        tr_pid=$!
        PIDS+=("$tr_pid")
    fi
    declare -A npid
    for i in $(seq 1 "$n"); do
        spawn "$dir/n$i.out" "$dir/n$i.err" "$BIN" node -c "${cfgs[$i]}"
        npid[$i]=$SPAWNED
        pids+=("$SPAWNED")
    done
    for i in $(seq 1 "$n"); do
        addrs[i]=$(wait_listening "$dir/n$i.out" "${npid[$i]}" 15) || {
            tail -n 20 "$dir/n$i.err" >&2; die "node n$i did not start"; }
    done
    local body="{\"seedFile\":\"http://$seed_addr/v2/seed/$IH\"}"
    # one curl posts every task at once (a curl process per node took ~0.1 s more to start)
    local -a post_args=()
    for i in $(seq 1 "$n"); do
        [ "$i" -gt 1 ] && post_args+=(--next)
        post_args+=(-s --max-time 30 -H 'Content-Type: application/json' -d "$body"
                    -o "$dir/n$i.post" "http://${addrs[i]}/v1/task")
    done
    curl --parallel --parallel-immediate --parallel-max 100 "${post_args[@]}" 2>/dev/null || true
    local t_posted
    t_posted=$(calc "$(now) - $t0")
    for i in $(seq 1 "$n"); do
        jq -e '.code == "E000"' "$dir/n$i.post" >/dev/null 2>&1 ||
            { log "n$i: POST /v1/task answered: $(head -c 300 "$dir/n$i.post")"; rc=1; }
    done

    # wait: .ok files (every 50 ms), task states over HTTP (every 1 s; 0.2 s while churning)
    declare -A fin killed lost
    local ndone=0 nfail=0 next_poll=0 poll_every=1000 line adr st pd t0ms el
    local tk_state=0 tk_down=- tk_up=- repost=0 killed_up=0 k
    # the task states only feed a log line except while churning: every 5 s is enough, and
    # each poll is a curl and a jq process plus 64 answers, CPU taken from the swarm
    if [ "$mode" = churn ]; then poll_every=200; else poll_every=5000; fi
    declare -A idx_of
    for i in $(seq 1 "$n"); do idx_of[${addrs[$i]}]=$i; done
    tick; t0ms=$(( ${t0/./} / 1000 ))
    deadline=$((t0ms + tmax * 1000))
    while [ $ndone -lt "$n" ]; do
        for ((i = 1; i <= n; i++)); do
            if [ -z "${fin[$i]:-}" ] && [ -e "$dir/n$i/$name.ok" ]; then
                fin[$i]=$(calc "$(stat -c %.6Y "$dir/n$i/$name.ok") - $t0")
                ndone=$((ndone + 1))
            fi
        done
        [ $ndone -ge "$n" ] && break
        tick; el=$((NOW_MS - t0ms))
        if ((NOW_MS > deadline)); then
            log "p2p: only $ndone/$n nodes done after ${tmax}s"; rc=1; break
        fi
        # S8: follow the timer's kill (reap the old tracker) and the restart
        if [ "$mode" = trackerkill ]; then
            if [ $tk_state = 0 ] && [ -s "$dir/tracker.killed" ]; then
                { wait "$old_tr"; } 2>/dev/null || true
                forget_pids "$old_tr"
                tk_down=$(calc "$(cat "$dir/tracker.killed") - $t0")
                tk_state=1; log "S8: tracker killed -9 at $tk_down s"
            elif [ $tk_state = 1 ] && grep -q '^LISTENING ' "$dir/tracker2.out" 2>/dev/null; then
                tk_up=$(calc "$(now) - $t0")
                tk_state=2; log "S8: tracker restarted, listening at $tk_up s"
            fi
        fi
        if ((NOW_MS >= next_poll)); then
            next_poll=$((NOW_MS + poll_every))
            nfail=0
            while read -r adr st pd; do
                [ -n "$adr" ] || continue
                i=${idx_of[$adr]:-}
                [ -n "$i" ] || continue
                [ "$st" = failed ] && nfail=$((nfail + 1))
                # S6: kill -9 each victim once it holds half its pieces, restart it at once
                if [ "$mode" = churn ] && [ "$i" -le 4 ] && [ -z "${killed[$i]:-}" ] &&
                   [ "$pd" -ge $((pc / 2)) ]; then
                    # its upload counter, then a fresh piece count, just before the kill
                    local pd2
                    killed_up=$((killed_up + $(p2p_metric "$adr" p2p_node_bytes_up_total)))
                    pd2=$(curl -s --max-time 2 "http://$adr/v1/task/$IH" |
                          jq -r '.piecesDone // empty' 2>/dev/null || true)
                    [ -n "$pd2" ] && pd=$pd2
                    { kill -KILL "${npid[$i]}"; wait "${npid[$i]}"; } 2>/dev/null || true
                    forget_pids "${npid[$i]}"
                    local -a keep=()
                    for k in "${pids[@]}"; do [ "$k" = "${npid[$i]}" ] || keep+=("$k"); done
                    pids=("${keep[@]}")
                    local kept
                    kept=$(popcount_file "$dir/n$i/$name.bitfield")
                    [ -e "$dir/n$i/$name.ok" ] && kept=$pc
                    killed[$i]="$pd/$kept"
                    lost[$i]=$((pd > kept ? pd - kept : 0))
                    log "S6: n$i killed -9 at $(calc "$(now) - $t0") s with $pd pieces;" \
                        "$kept on disk"
                    spawn "$dir/n$i.out2" "$dir/n$i.err2" "$BIN" node -c "${cfgs[$i]}"
                    npid[$i]=$SPAWNED
                    pids+=("$SPAWNED")
                    wait_listening "$dir/n$i.out2" "$SPAWNED" 15 >/dev/null ||
                        { tail -n 20 "$dir/n$i.err2" >&2; die "n$i did not restart"; }
                    # it should resume on its own; if it does not know the task, post it again
                    sleep 0.3
                    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
                            "http://$adr/v1/task/$IH")" = 404 ]; then
                        curl -s --max-time 30 -H 'Content-Type: application/json' -d "$body" \
                            "http://$adr/v1/task" > /dev/null || true
                        repost=$((repost + 1))
                    fi
                fi
            done < <(p2p_poll "${addrs[@]:1}")
            if [ $nfail -gt 0 ]; then log "p2p: $nfail node(s) report state failed"; fi
        fi
        nap 0.05
    done
    local elapsed
    elapsed=$(calc "$(now) - $tstart")
    R_TIMES=""
    for i in $(seq 1 "$n"); do [ -n "${fin[$i]:-}" ] && R_TIMES+="${fin[$i]} "; done

    sleep 1     # let in-flight endgame duplicates land before reading the counters
    local st_fail=0
    while read -r adr st pd; do [ "$st" = seeding ] || st_fail=$((st_fail + 1)); done \
        < <(p2p_poll "${addrs[@]:1}")
    R_SEEDUP=$(p2p_metric "$seed_addr" p2p_node_bytes_up_total)
    # cross-check: bytes the seeder process passed to write(2) (sockets; it writes no files)
    local seed_wchar
    seed_wchar=$(awk '$1 == "wchar:" { print $2 }' "/proc/${pids[0]}/io" 2>/dev/null || echo 0)
    R_UPSUM=$R_SEEDUP
    R_DOWNSUM=0
    local maxfail=0 sumfail=0 f
    for i in $(seq 1 "$n"); do
        R_UPSUM=$((R_UPSUM + $(p2p_metric "${addrs[$i]}" p2p_node_bytes_up_total)))
        R_DOWNSUM=$((R_DOWNSUM + $(p2p_metric "${addrs[$i]}" p2p_node_bytes_down_total)))
        f=$(p2p_metric "${addrs[$i]}" p2p_node_pieces_failed_total)
        sumfail=$((sumfail + f))
        [ "$f" -gt "$maxfail" ] && maxfail=$f
    done
    R_NEED=$((n * fbytes))
    local liar_up=0
    [ -n "$liar_addr" ] && liar_up=$(p2p_metric "$liar_addr" p2p_node_bytes_up_total)
    R_UPSUM=$((R_UPSUM + liar_up + killed_up))
    if [ "$mode" = trackerkill ]; then
        [ "$tk_state" = 2 ] || log "S8: tracker kill/restart did not happen in time"
        # carry the first life's CPU over
        [ -s "$dir/tracker1.cpu" ] && tcpu0=$((tcpu0 - $(cat "$dir/tracker1.cpu")))
    fi
    tcpu1=$(cpu_ticks "$tr_pid")
    local tr_cpu
    tr_cpu=$(calc "100 * ($tcpu1 - $tcpu0) / $(getconf CLK_TCK) / $elapsed" )

    stop_pids "${pids[@]}"
    stop_pids "$tr_pid"
    # the first tracker, if S8's timer killed it but we have not reaped it yet
    [ "$old_tr" != "$tr_pid" ] && [ "$tk_state" = 0 ] && stop_pids "$old_tr"
    R_BAD=0
    for i in $(seq 1 "$n"); do
        cmp -s "$src" "$dir/n$i/$name" || R_BAD=$((R_BAD + 1))
    done

    R_NOTE="seed wrote $(calc "${seed_wchar:-0} / $fbytes") F; all tasks posted at ${t_posted} s"
    R_NOTE+="; trk cpu ${tr_cpu}%"
    [ "$R_BAD" -gt 0 ] && R_NOTE+="; $R_BAD CORRUPT/missing files"
    [ "$st_fail" -gt 0 ] && R_NOTE+="; $st_fail not seeding at end"
    if [ "$mode" = churn ]; then
        local k s="" l=""
        for k in 1 2 3 4; do
            s+="${killed[$k]:-none},"
            l+="${lost[$k]:-?},"
        done
        R_NOTE+="; killed at pieces/kept ${s%,}; verified pieces lost ${l%,}"
        R_NOTE+="; restarted nodes re-POSTed: $repost (0 = resumed by themselves)"
        R_NOTE+="; dup includes refetches after the kills"
    fi
    if [ "$mode" = liar ]; then
        R_NOTE+="; bad pieces rx max/node $maxfail total $sumfail"
        R_NOTE+="; liar sent $((liar_up / pl)) pieces"
        R_NOTE+=" ($nbad of $pc corrupted)"
    elif [ "$sumfail" -gt 0 ]; then
        R_NOTE+="; $sumfail hash failures"
    fi
    [ "$mode" = trackerkill ] && R_NOTE+="; tracker killed at $tk_down s, back at $tk_up s"
    if [ -n "${P2P_KEEP:-}" ]; then   # SWARM_KEEP_LOGS: the processes' logs and the start time
        mkdir -p "$P2P_KEEP"
        cp "$dir"/*.err "$dir"/*.out "$dir/t0" "$P2P_KEEP/" 2>/dev/null || true
    fi
    rm -rf "$dir"
    return $rc
}
