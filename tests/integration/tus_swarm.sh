#!/usr/bin/env bash
# TUS into the swarm, with the real binary: tracker + node A + node B on 127.0.0.1. Uploads to A
# by curl (P2P-Info-Hash / P2P-Seed-URL on the finishing PATCH) and by tus-js-client (abort +
# resume from a second process, parallelUploads: 4); then B downloads each file through the swarm
# with POST /v1/task {"seedFile": <P2P-Seed-URL>} and the bytes must be identical.
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/node_lib.sh"

start_tracker
start_node a "trackers: [\"$TADDR\"]"
start_node b "trackers: [\"$TADDR\"]"
A=${NODE_ADDR[a]}

curl -s -D "$W/opt.h" -o /dev/null -X OPTIONS "http://$A/files/" || true
grep -qi "^Tus-Version: 1.0.0" "$W/opt.h" || die "node does not serve TUS at /files/ (is p2p_tus wired into src/node/node.c?)"

# 1. curl: creation + one PATCH; the finishing PATCH names the seed.
make_file "$W/curl.bin" 5000
len=$(stat -c %s "$W/curl.bin")
loc=$(curl -s -D - -o /dev/null -X POST -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $len" \
    -H "Upload-Metadata: filename $(printf curl.bin | base64)" "http://$A/files/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
[ -n "$loc" ] || die "creation on node a failed"
case "$loc" in http*) ;; *) loc="http://$A$loc" ;; esac
curl -s -D "$W/patch.h" -o /dev/null -X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' --data-binary @"$W/curl.bin" "$loc"
grep -q '^HTTP/1.1 204' "$W/patch.h" || die "PATCH: $(head -1 "$W/patch.h")"
ih=$(tr -d '\r' < "$W/patch.h" | sed -n 's/^P2P-Info-Hash: //Ip')
seed_url=$(tr -d '\r' < "$W/patch.h" | sed -n 's/^P2P-Seed-URL: //Ip')
[[ "$ih" =~ ^[0-9a-f]{64}$ ]] && [ -n "$seed_url" ] || die "no P2P headers on the finishing PATCH"
ok "curl upload finished: $ih"
[ -f "${NODE_DIR[a]}/curl.bin.ok" ] && cmp -s "$W/curl.bin" "${NODE_DIR[a]}/curl.bin" ||
    fail "node a: curl.bin not in complete_dir"
wait_state a "$ih" seeding 10 && ok "node a seeds the upload"

# 2. tus-js-client against node a (real client, resumed across processes, and parallel).
if command -v npm >/dev/null 2>&1; then
    source "$here/tus/npm_setup.sh"
    export TUS_NPM_DIR TUS_ENDPOINT="http://$A/files/" TUS_COMPLETE_DIR="${NODE_DIR[a]}"
    if timeout 250 node "$here/tus/jsclient.mjs" > "$W/js.out" 2>&1; then
        ok "tus-js-client against the node"
    else
        cat "$W/js.out" >&2
        fail "tus-js-client against the node"
    fi
else
    echo "SKIP: npm not installed; tus-js-client part skipped" >&2
fi

# 3. node b downloads every uploaded file through the swarm, byte-identical.
for name in curl.bin js-resume.bin js-par.bin; do
    seed="${NODE_DIR[a]}/$name.seed"
    [ -f "$seed" ] || { [ "$name" = curl.bin ] && fail "$name: no seed"; continue; }
    fih=$(jq -r .infoHash "$seed")
    url="http://$A/v2/seed/$fih"
    [ "$name" = curl.bin ] && url=$seed_url
    api b POST /v1/task "{\"seedFile\": \"$url\"}"
    expect "node b accepts $name" 200 ".taskId == \"$fih\"" || continue
    wait_state b "$fih" seeding 60 || continue
    if cmp -s "${NODE_DIR[a]}/$name" "${NODE_DIR[b]}/$name"; then
        ok "node b holds $name, byte-identical"
    else
        fail "node b: $name differs"
    fi
done
