#!/usr/bin/env bash
# Node ↔ tracker review fixes, against a fake tracker:
#  A. the original's tracker (no /v2/report: 404, no `known`): one refused report and no more
#     (no 100 ms resend loop), and every piece of a SHA-1 (v1) file reported via /v1/report;
#  B. failing reports (503) back off (0.5 s doubling) instead of resending every tick;
#  C. the tracker's heartbeat `interval` is honoured when shorter than session_expire/2;
#  D. an absent `known` counts as known:true (no full re-report after every heartbeat), and a
#     seedFile URL behind a redirect is followed.
. "$(dirname "$0")/node_lib.sh"
. "$(dirname "$0")/node_review_lib.sh"

make_file "$W/v1.bin" 3000            # 3 pieces of 1 MiB (v1)
make_file "$W/v2.bin" 300

start_fake goA --v2-report 404
start_fake goB --v2-report 503 --known true
start_fake goC --interval 1 --known true
make_file "$W/d.bin" 200
"$P2P_BIN" gen --filePath "$W/d.bin" --seedPath "$W" --tracker 127.0.0.1:9 >/dev/null 2>&1 || die gen
start_fake goD --seed "$W/d.bin.seed"

review_node a 2s
review_node b 4s
review_node c 60s
review_node d 2s
IHA=$(seeded_in a "$W/v1.bin" "${FAKE_ADDR[goA]}" --format v1)
seeded_in b "$W/v2.bin" "${FAKE_ADDR[goB]}" >/dev/null
seeded_in c "$W/v2.bin" "${FAKE_ADDR[goC]}" >/dev/null
seeded_in d "$W/v2.bin" "${FAKE_ADDR[goD]}" >/dev/null
start_node a
start_node b
start_node c
start_node d
sleep 4.5

# A
n=$(fake_count goA '^REQ POST /v2/report')
[ "$n" -ge 1 ] && [ "$n" -le 2 ] && ok "A: /v2/report refused with 404 is not retried ($n sent)" ||
    fail "A: $n /v2/report requests to a tracker that answers 404 (want 1-2)"
ids=$(jq -r '.pieces[].checksum' "${NODE_DIR[a]}/v1.bin.seed" | sort)
got=$(awk '$1=="V1REPORT" {print $2}' "$W/goA.out" | sort -u)
[ "$ids" = "$got" ] && ok "A: every piece reported via /v1/report" ||
    fail "A: /v1/report pieceIDs: '$got', want '$ids'"
bad=$(awk -v id="$(curl -s "http://${NODE_ADDR[a]}/v1/probe" | jq -r .nodeId)" \
    '$1=="V1REPORT" && ($3!=id || $4!="v1.bin" || $5<=0)' "$W/goA.out" | wc -l)
[ "$bad" -eq 0 ] && ok "A: /v1/report carries nodeID, file and progress > 0" ||
    fail "A: $bad malformed /v1/report bodies"
hb=$(fake_count goA '^REQ POST /v1/heartBeat')
[ "$hb" -ge 3 ] && ok "A: heartbeats go on ($hb)" || fail "A: only $hb heartbeats in 4.5 s"

# B
n=$(fake_count goB '^REQ POST /v2/report')
[ "$n" -ge 2 ] && [ "$n" -le 8 ] && ok "B: failing reports back off ($n in 4.5 s)" ||
    fail "B: $n /v2/report requests in 4.5 s to a tracker answering 503 (want 2-8)"

# C
hb=$(fake_count goC '^REQ POST /v1/heartBeat')
[ "$hb" -ge 3 ] && ok "C: heartbeats follow the tracker's interval of 1 s ($hb in 4.5 s)" ||
    fail "C: $hb heartbeats in 4.5 s with interval 1 (session_expire 60s)"

# D
full=$(fake_count goD '^REQ POST /v2/report full')
hb=$(fake_count goD '^REQ POST /v1/heartBeat')
[ "$hb" -ge 3 ] && [ "$full" -eq 1 ] && ok "D: absent 'known' = known: one full report, $hb heartbeats" ||
    fail "D: $full full reports over $hb heartbeats without 'known' (want 1)"
api d POST /v1/task "{\"seedFile\":\"http://${FAKE_ADDR[goD]}/redirect\"}"
expect "D: seedFile behind a 302 redirect is followed" 200 '.code=="E000" and (.taskId|length==64)'
[ "$(fake_count goD '^REQ GET /seed.json')" -eq 1 ] && ok "D: the redirect target was fetched" ||
    fail "D: seed not fetched through the redirect"

for n in a b c d; do
    kill -TERM "${NODE_PID[$n]}"
    wait_exit "${NODE_PID[$n]}" 15
    [ "$EXIT_ST" = 0 ] && ok "$n: SIGTERM exits 0" || fail "$n: exit status $EXIT_ST after SIGTERM"
done
finish
