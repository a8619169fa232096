-- wrk script for bench/tracker.sh: the same N nodes x K of F files as announces to
-- opentracker (the anchor). An announce is heartbeat + report + peers query in one request.
-- wrk args: MODE NTHREADS (warm: every (node, file) once, in order; mix: random pairs)
local N, F, K = 10000, 100, 10
local mode, nthreads, seq = "mix", 1, 0
local hashes = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local function urlenc_hex(h)
  return (h:gsub("..", "%%%0"))
end

function init(args)
  mode = args[1] or "mix"
  nthreads = tonumber(args[2]) or 1
  seq = tid or 0
  math.randomseed(os.time() + (tid or 0) * 7919)
  for f = 0, F - 1 do
    hashes[f] = urlenc_hex(string.format("%08x", f) .. string.rep("ab", 16))
  end
end

local function file_of(n, k) return (n + k * (F / K)) % F end

local function announce(n, f)
  return wrk.format("GET", string.format(
    "/announce?info_hash=%s&peer_id=-WR0001-%012d&port=%d&uploaded=0&downloaded=0&left=%d" ..
    "&compact=1&numwant=50", hashes[f], n, 10000 + n, (n % 2) * 1048576))
end

function request()
  local s = seq
  seq = seq + nthreads
  if mode == "warm" then
    local j = s % (N * K)
    return announce(math.floor(j / K), file_of(math.floor(j / K), j % K))
  end
  local n = math.random(0, N - 1)
  return announce(n, file_of(n, math.random(0, K - 1)))
end

function done(summary, latency, requests)
  -- Socket "read" errors are expected from servers that close after every answer (opentracker).
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d " ..
    "sock_errors=%d\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.status + e.timeout, e.connect + e.read + e.write))
end
