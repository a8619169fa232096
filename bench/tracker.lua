-- wrk script for bench/tracker.sh: simulated nodes against the p2p-sharer tracker.
-- N nodes, F files of P pieces, each node in K files (so F*N*K/F holders per file).
-- wrk args: MODE NTHREADS
--   warm: every node heartbeats and full-reports each of its files (spread over the threads)
--   mix:  a random node's heartbeat, "have" increment and peers query, in turn
local N, F, P, K, ZONES = 10000, 100, 1000, 10, 4
local mode, nthreads, seq = "mix", 1, 0
local hashes, bitfields = {}, {}
local next_tid = 0

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = math.floor(n / 262144) % 64
    local c2 = math.floor(n / 4096) % 64
    local c3 = math.floor(n / 64) % 64
    local c4 = n % 64
    out[#out + 1] = B64:sub(c1 + 1, c1 + 1) .. B64:sub(c2 + 1, c2 + 1) ..
      (b and B64:sub(c3 + 1, c3 + 1) or "=") .. (c and B64:sub(c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function init(args)
  mode = args[1] or "mix"
  nthreads = tonumber(args[2]) or 1
  seq = tid or 0
  math.randomseed(os.time() + (tid or 0) * 7919)
  for f = 0, F - 1 do
    hashes[f] = string.format("%08x", f) .. string.rep("ab", 28)
  end
  for i = 1, 16 do
    local t = {}
    for j = 1, P / 8 do t[j] = string.char(math.random(0, 255)) end
    bitfields[i] = b64(table.concat(t))
  end
end

local function file_of(n, k) return (n + k * (F / K)) % F end
local hdr = { ["Content-Type"] = "application/json" }

local function heartbeat(n)
  return wrk.format("POST", "/v1/heartBeat", hdr, string.format(
    '{"nodeId":"node-%d","addr":"127.0.0.1:%d","zone":"z%d"}', n, 10000 + n, n % ZONES))
end

function request()
  local s = seq
  seq = seq + nthreads
  if mode == "warm" then
    local j = s % (N * (K + 1))
    local n, r = math.floor(j / (K + 1)), j % (K + 1)
    if r == 0 then return heartbeat(n) end
    return wrk.format("POST", "/v2/report", hdr, string.format(
      '{"nodeId":"node-%d","infoHash":"%s","pieceCount":%d,"bitfield":"%s"}',
      n, hashes[file_of(n, r - 1)], P, bitfields[(n * K + r) % 16 + 1]))
  end
  local n = math.random(0, N - 1)
  local f = hashes[file_of(n, math.random(0, K - 1))]
  local r = s % 3
  if r == 0 then return heartbeat(n) end
  if r == 1 then
    return wrk.format("POST", "/v2/report", hdr, string.format(
      '{"nodeId":"node-%d","infoHash":"%s","pieceCount":%d,"have":[%d]}',
      n, f, P, math.random(0, P - 1)))
  end
  return wrk.format("GET", string.format("/v2/peers?infoHash=%s&nodeId=node-%d&max=50", f, n))
end

function done(summary, latency, requests)
  -- Socket "read" errors are expected from servers that close after every answer (opentracker).
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d " ..
    "sock_errors=%d\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.status + e.timeout, e.connect + e.read + e.write))
end
