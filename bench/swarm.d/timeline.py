#!/usr/bin/env python3
"""Reads one run's logs kept by bench/swarm (SWARM_LOG_LEVEL=debug SWARM_KEEP_LOGS=DIR) and prints
where the time went: the seed's upload rate per second, when each piece first reached the swarm
and how long it took to reach every node (propagation), the delivery backlog and the swarm's
upload rate per half second, and the delay between a piece's last byte and its hash check.

usage: bench/swarm.d/timeline.py DIR/<scenario>-<run>"""
import collections
import datetime
import glob
import os
import re
import sys

if len(sys.argv) != 2 or not os.path.isfile(os.path.join(sys.argv[1], "t0")):
    sys.exit(__doc__)
run = sys.argv[1]
t0 = float(open(os.path.join(run, "t0")).read())


def ts(line):
    t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() - t0


PIECE = re.compile(r"piece (\d+) from (\S+) (received|verified)")
first, last, copies, node_end, recv_lat = {}, {}, {}, {}, []
verified, uploads, seed_up = [], collections.Counter(), collections.Counter()
for path in glob.glob(os.path.join(run, "n*.err")):
    node = os.path.basename(path)[:-4]
    received = {}
    for line in open(path, errors="replace"):
        if not line.startswith("20"):
            continue
        m = PIECE.search(line)
        if m:
            t, i, key = ts(line), int(m.group(1)), (m.group(1), m.group(2))
            if m.group(3) == "received":
                received[key] = t
                continue
            verified.append(t)
            first[i] = min(first.get(i, t), t)
            last[i] = max(last.get(i, t), t)
            copies[i] = copies.get(i, 0) + 1
            node_end[node] = max(node_end.get(node, t), t)
            if key in received:
                recv_lat.append(t - received[key])
        elif "upload of piece" in line and " done " in line:
            t = ts(line)
            uploads[int(t * 2)] += 1
            if node == "n0":
                seed_up[int(t)] += 1
if not first:
    sys.exit("no piece events: were the nodes run with SWARM_LOG_LEVEL=debug?")


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


nodes = len(node_end)
print(f"{len(first)} pieces, {nodes} downloaders; last node done at {max(node_end.values()):.2f} s")
print("seed uploads per second:", " ".join(f"{s}:{seed_up[s]}" for s in sorted(seed_up)))
spread = [last[i] - first[i] for i in first]
print(f"propagation (first copy to last): median {pct(spread, .5):.2f} s, p90 "
      f"{pct(spread, .9):.2f} s, max {max(spread):.2f} s")
if recv_lat:
    print(f"last byte to hash-checked: median {1000 * pct(recv_lat, .5):.0f} ms, p90 "
          f"{1000 * pct(recv_lat, .9):.0f} ms, p99 {1000 * pct(recv_lat, .99):.0f} ms")
print("latest pieces: " + ", ".join(
    f"{i} {first[i]:.2f}->{last[i]:.2f}" for i in sorted(first, key=first.get)[-5:]))
print("  t(s)  released  delivered  backlog  uploads/s")
fs, vs = sorted(first.values()), sorted(verified)
end = int(2 * max(node_end.values())) + 2
for h in range(1, end):
    t = h / 2
    rel = sum(1 for x in fs if x <= t)
    dlv = sum(1 for x in vs if x <= t)
    print(f"{t:6.1f}  {rel:8d}  {dlv:9d}  {rel * nodes - dlv:7d}  {2 * uploads[h - 1]:9d}")
