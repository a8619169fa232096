# shellcheck shell=bash
# BitTorrent baseline for bench/swarm (sourced): Debian's opentracker and aria2c, as in
# /work/shared/BASELINES.md §6.1 (DHT/LPD/PEX off, --max-overall-upload-limit, --seed-ratio=0.0,
# whitelisted info hash, torrent made by mktorrent with 1 MiB pieces), plus a JSON-RPC port per
# aria2c (loopback only) to read the bytes each one uploaded.

# bt_run DIR SRC N U_SEED U_NODE TMAX: one swarm of 1 aria2c seed + N aria2c leechers. SRC is the
# file (its base name is the torrent's name). Sets R_TIMES (finish times, s from the leechers'
# start, space-separated), R_SEEDUP (bytes), R_UPSUM (bytes, all peers), R_BAD (files differing
# from SRC), R_NOTE. Returns 1 if not every leecher finished within TMAX seconds.
bt_run() {
    local dir=$1 src=$2 n=$3 useed=$4 unode=$5 tmax=$6
    local name ot_port ih i p rpc t0 deadline lines rc=0 seed_pid
    local -a rpcs=() lpids=()
    name=$(basename "$src")
    mkdir -p "$dir/seed" "$dir/ot"
    ln "$src" "$dir/seed/$name" 2>/dev/null || cp "$src" "$dir/seed/$name"

    ot_port=$(free_port)
    # mktorrent hashes on 2 threads; -l 20 = 1 MiB pieces (same as our default for these sizes)
    mktorrent -t 2 -l 20 -a "http://127.0.0.1:$ot_port/announce" -o "$dir/f.torrent" \
        "$dir/seed/$name" >/dev/null || die "mktorrent failed"
    ih=$(aria2c -S "$dir/f.torrent" | sed -n 's/^Info Hash: *//p')
    [ -n "$ih" ] || die "no info hash from aria2c -S"
    echo "$ih" > "$dir/ot/whitelist.txt"
    # opentracker chroots into rootdir and drops to nobody: whitelist path is chroot-relative
    cat > "$dir/ot/opentracker.conf" <<EOF
listen.tcp 127.0.0.1:$ot_port
listen.udp 127.0.0.1:$ot_port
access.whitelist /whitelist.txt
tracker.rootdir $dir/ot
EOF
    spawn "$dir/ot.out" "$dir/ot.err" opentracker -f "$dir/ot/opentracker.conf"
    local ot_pid=$SPAWNED
    wait_tcp "$ot_port" 10 || { cat "$dir/ot.err" >&2; die "opentracker did not start"; }
    local ot_cpu0
    ot_cpu0=$(cpu_ticks "$ot_pid")

    cat > "$dir/hook.sh" <<EOF
#!/bin/sh
echo "\$(date +%s.%N) \$3" >> "$dir/done.log"
EOF
    chmod +x "$dir/hook.sh"
    : > "$dir/done.log"
    local -a common=(--enable-dht=false --enable-dht6=false --bt-enable-lpd=false
        --enable-peer-exchange=false --interface=127.0.0.1 --disable-ipv6=true --seed-ratio=0.0
        --file-allocation=none --auto-file-renaming=false --allow-overwrite=true
        --summary-interval=0 --console-log-level=warn --enable-rpc=true --rpc-listen-all=false
        --check-certificate=false)

    p=$(free_port); rpc=$(free_port); rpcs+=("$rpc")
    spawn "$dir/seed.out" "$dir/seed.err" aria2c "${common[@]}" --listen-port="$p" \
        --rpc-listen-port="$rpc" --max-overall-upload-limit="$useed" --bt-seed-unverified=true \
        -d "$dir/seed" "$dir/f.torrent"
    seed_pid=$SPAWNED
    sleep 2     # as in BASELINES §6.1: the seed is up and announced before the leechers start
    kill -0 "$seed_pid" 2>/dev/null || { cat "$dir/seed.err" >&2; die "aria2c seed died"; }

    t0=$(now)
    for i in $(seq 1 "$n"); do
        mkdir -p "$dir/l$i"
        p=$(free_port); rpc=$(free_port); rpcs+=("$rpc")
        spawn "$dir/l$i.out" "$dir/l$i.err" aria2c "${common[@]}" --listen-port="$p" \
            --rpc-listen-port="$rpc" --max-overall-upload-limit="$unode" \
            --on-bt-download-complete="$dir/hook.sh" -d "$dir/l$i" "$dir/f.torrent"
        lpids+=("$SPAWNED")
    done
    deadline=$(( ${t0/./} / 1000 + tmax * 1000 ))
    while :; do
        lines=$(wc -l < "$dir/done.log")
        [ "$lines" -ge "$n" ] && break
        tick
        if ((NOW_MS > deadline)); then
            log "aria2c: only $lines/$n leechers done after ${tmax}s"
            rc=1
            break
        fi
        nap 0.1
    done
    R_TIMES=$(awk -v t0="$t0" '{ printf "%.3f ", $1 - t0 }' "$dir/done.log")
    local ot_cpu
    ot_cpu=$(calc "100 * ($(cpu_ticks "$ot_pid") - $ot_cpu0) / $(getconf CLK_TCK) / ($(now) - $t0)")
    sleep 1     # let in-flight endgame blocks land before reading the counters
    # uploaded bytes per peer over JSON-RPC (aria2.tellActive: the torrent is seeding)
    local up total=0 seedup=0 k=0
    for rpc in "${rpcs[@]}"; do
        up=$(curl -s --max-time 5 -d \
            '{"jsonrpc":"2.0","id":"b","method":"aria2.tellActive","params":[["uploadLength"]]}' \
            "http://127.0.0.1:$rpc/jsonrpc" |
            jq -r '[.result[]?.uploadLength | tonumber] | add // 0')
        up=${up:-0}
        [ $k = 0 ] && seedup=$up
        total=$((total + up))
        k=$((k + 1))
    done
    R_SEEDUP=$seedup
    R_UPSUM=$total
    stop_pids "${lpids[@]}" "$seed_pid" "$ot_pid"
    R_BAD=0
    for i in $(seq 1 "$n"); do
        cmp -s "$src" "$dir/l$i/$name" || R_BAD=$((R_BAD + 1))
    done
    R_NOTE="trk cpu ${ot_cpu}%"
    [ "$R_BAD" -gt 0 ] && R_NOTE+="; $R_BAD files differ"
    rm -rf "$dir"
    return $rc
}

# ngx_run DIR SRC N U_SERVER TMAX: a central nginx (sendfile, limit_rate U_SERVER/N per
# connection) serving SRC to N parallel curl clients. Sets R_TIMES, R_SEEDUP, R_UPSUM, R_BAD,
# R_NOTE like bt_run.
ngx_run() {
    local dir=$1 src=$2 n=$3 userver=$4 tmax=$5
    local name port rate t0 i rc=0 ngx_pid
    local -a cpids=()
    name=$(basename "$src")
    mkdir -p "$dir/www" "$dir/tmp" "$dir/c"
    ln "$src" "$dir/www/$name" 2>/dev/null || cp "$src" "$dir/www/$name"
    port=$(free_port)
    rate=$((userver / n))
    # as root, workers would switch to nobody and could not read our 0700 mktemp dir
    local user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    cat > "$dir/nginx.conf" <<EOF
$user
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    sendfile on;
    server {
        listen 127.0.0.1:$port;
        root $dir/www;
        location / { limit_rate $rate; }
    }
}
EOF
    spawn "$dir/ngx.out" "$dir/ngx.err" nginx -e "$dir/error.log" -c "$dir/nginx.conf" \
        -g 'daemon off;'
    ngx_pid=$SPAWNED
    wait_tcp "$port" 10 || { cat "$dir/ngx.err" "$dir/error.log" >&2; die "nginx did not start"; }
    t0=$(now)
    for i in $(seq 1 "$n"); do
        ( curl -s --max-time "$tmax" -o "$dir/c/$i.bin" "http://127.0.0.1:$port/$name" &&
              echo "$EPOCHREALTIME" > "$dir/c/$i.done" ) &
        cpids+=($!)
        PIDS+=($!)
    done
    for i in "${cpids[@]}"; do wait "$i" 2>/dev/null || rc=1; done
    forget_pids "${cpids[@]}"
    R_TIMES=""
    R_BAD=0
    for i in $(seq 1 "$n"); do
        if [ -f "$dir/c/$i.done" ]; then
            R_TIMES+="$(calc "$(cat "$dir/c/$i.done") - $t0" ) "
        fi
        cmp -s "$src" "$dir/c/$i.bin" || R_BAD=$((R_BAD + 1))
    done
    local fbytes
    fbytes=$(stat -c %s "$src")
    R_SEEDUP=$((n * fbytes))
    R_UPSUM=$R_SEEDUP
    R_NOTE="limit_rate $rate/conn"
    [ "$R_BAD" -gt 0 ] && R_NOTE+="; $R_BAD files differ"
    stop_pids "$ngx_pid"
    rm -rf "$dir"
    return $rc
}
