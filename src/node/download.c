/* Node download engine: peers from every tracker, rarest-first piece picking, bounded requests
 * per task and per peer, hash check + write on the thread pool, backoff/ban, endgame. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bitfield.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "node/node_int.h"

/* Peer refresh while downloading (and while nothing can be requested). A fresh piece reaches
 * the swarm hop by hop, and each hop waits until the next downloaders learn of its new holder:
 * 100 ms instead of 250 took bench/swarm S3 (64 nodes) from 22.8 to 22.4 s for ~1 % more of a
 * core at the tracker. */
#define PEERS_PERIOD_MS 100
#define PEERS_IDLE_MS 100
#define FETCH_TIMEOUT_MS 60000
#define PROBE_STALE_MS 1000       /* no peer list for this long: probe idle peers ... */
#define PROBE_EVERY_MS 500        /* ... whose view is older than this */

void p2p_node_peer_free(struct p2p_node_peer *p)
{
    if (!p)
        return;
    free(p->node_id);
    free(p->addr);
    p2p_bitfield_cleanup(&p->bf);
    free(p);
}

/* ---- piece buffers: reused, so a steady download does not fault in fresh pages per piece ---- */

uint8_t *p2p_node_buf_get(struct p2p_node *n, size_t len, size_t *cap)
{
    for (size_t i = n->nspare; i-- > 0;) {
        if (n->spare[i].cap < len)
            continue;
        uint8_t *p = n->spare[i].p;
        *cap = n->spare[i].cap;
        n->spare[i] = n->spare[--n->nspare];
        return p;
    }
    /* aligned for O_DIRECT piece writes (verify_work) */
    *cap = len ? len : 1;
    void *p = NULL;
    if (posix_memalign(&p, P2P_NODE_DIRECT_ALIGN, *cap) != 0)
        p = p2p_xmalloc(*cap); /* aborts: out of memory */
    return p;
}

void p2p_node_buf_put(struct p2p_node *n, uint8_t *buf, size_t cap)
{
    if (!buf)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < n->nspare; i++)
        kept += n->spare[i].cap;
    /* spares never hold more than the in-flight budget (huge pieces are not kept) */
    if (n->nspare < P2P_NODE_SPARE_BUFS && kept + cap <= P2P_NODE_PIECE_MEM && !n->stopping) {
        n->spare[n->nspare].p = buf;
        n->spare[n->nspare].cap = cap;
        n->nspare++;
        return;
    }
    free(buf);
}

void p2p_node_buf_drain(struct p2p_node *n)
{
    while (n->nspare > 0)
        free(n->spare[--n->nspare].p);
}

/* A fetch or verification ended: its piece no longer counts against P2P_NODE_PIECE_MEM. Files
 * that stopped scheduling at the limit are scheduled again. */
static void mem_release(struct p2p_node *n, uint64_t len, const struct p2p_node_file *except)
{
    n->piece_mem = n->piece_mem > len ? n->piece_mem - len : 0;
    if (!n->mem_blocked)
        return;
    n->mem_blocked = false;
    for (struct p2p_node_file *f = n->files; f; f = f->next)
        if (f != except)
            p2p_node_download_schedule(f);
}

int64_t p2p_node_pick(const struct p2p_bitfield *have, const uint8_t *reqs, const uint16_t *avail,
                      const uint16_t *partial, const struct p2p_bitfield *const *peer_bf,
                      const bool *usable, const bool *full, size_t npeers)
{
    uint32_t n = have->nbits;
    if (n == 0)
        return -1;
    int64_t best = -1;
    uint32_t best_avail = UINT32_MAX, ties = 0;
    uint32_t start = p2p_rand_below(n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = start + k < n ? start + k : start + k - n;
        if (reqs[i] || p2p_bitfield_get(have, i) || avail[i] == 0 || avail[i] > best_avail)
            continue;
        /* seed offload: a complete peer counts only for pieces no incomplete peer holds */
        bool seeds_ok = !partial || !full || partial[i] == 0;
        bool held = false;
        for (size_t j = 0; j < npeers && !held; j++)
            held = usable[j] && (seeds_ok || !full[j]) && p2p_bitfield_get(peer_bf[j], i);
        if (!held)
            continue;
        if (avail[i] < best_avail) {
            best_avail = avail[i];
            best = i;
            ties = 1;
        } else if (p2p_rand_below(++ties) == 0) {
            best = i; /* reservoir sampling: uniform among equally rare pieces */
        }
    }
    return best;
}

static bool downloading(const struct p2p_node_file *f)
{
    return f->in_store && f->state == P2P_NODE_DOWNLOADING && !f->finishing && !f->closing &&
           !f->node->stopping;
}

/* A complete peer (a seed): asked only for pieces no incomplete peer holds (seed offload). */
static bool peer_full(const struct p2p_node_file *f, const struct p2p_node_peer *p)
{
    return p->bf.nbits == f->seed.npieces && p->bf.count == p->bf.nbits;
}

static void recount_avail(struct p2p_node_file *f)
{
    uint32_t n = f->seed.npieces;
    memset(f->avail, 0, n * sizeof *f->avail);
    memset(f->partial, 0, n * sizeof *f->partial);
    for (size_t j = 0; j < f->npeers; j++) {
        const struct p2p_node_peer *p = f->peers[j];
        if (p->banned || p->bf.nbits != n)
            continue;
        bool full = peer_full(f, p);
        for (uint32_t b = 0; b < P2P_BITFIELD_BYTES(n); b++) {
            if (!p->bf.bits[b])
                continue;
            for (uint32_t i = b * 8; i < b * 8 + 8 && i < n; i++) {
                if (!p2p_bitfield_get(&p->bf, i))
                    continue;
                if (f->avail[i] < UINT16_MAX)
                    f->avail[i]++;
                if (!full && f->partial[i] < UINT16_MAX)
                    f->partial[i]++;
            }
        }
    }
}

/* Adds (d = 1) or removes (d = -1) one peer's share of avail/partial, as recount_avail counts
 * it: O(pieces) around a change of one peer's view instead of a recount over every peer, which
 * was 3.5 % of a node's CPU in bench/swarm S3 (each piece answer carries a fresh bitfield).
 * Counts never wrap: at most P2P_NODE_MAX_PEERS peers add to them. */
static void avail_apply(struct p2p_node_file *f, const struct p2p_node_peer *p, int d)
{
    uint32_t n = f->seed.npieces;
    if (p->banned || p->bf.nbits != n)
        return;
    bool full = peer_full(f, p);
    for (uint32_t b = 0; b < P2P_BITFIELD_BYTES(n); b++) {
        if (!p->bf.bits[b])
            continue;
        for (uint32_t i = b * 8; i < b * 8 + 8 && i < n; i++) {
            if (!p2p_bitfield_get(&p->bf, i))
                continue;
            f->avail[i] = (uint16_t)(f->avail[i] + d);
            if (!full)
                f->partial[i] = (uint16_t)(f->partial[i] + d);
        }
    }
}

bool p2p_node_peer_fault(struct p2p_node_peer *p, bool bad)
{
    p->faults++;
    if (bad)
        p->bad_pieces++;
    return !p->banned && (p->faults >= P2P_NODE_BAN_FAULTS || p->bad_pieces >= P2P_NODE_BAN_BAD);
}

void p2p_node_peer_good(struct p2p_node_peer *p)
{
    /* forgives a transport error, never a bad piece: a peer that lies about 1 piece in 10 is
     * still banned at its second bad piece */
    if (p->faults > p->bad_pieces)
        p->faults--;
}

static void fetch_cancel(struct p2p_node_file *f, struct p2p_node_fetch *fe);

static void fault(struct p2p_node_file *f, struct p2p_node_peer *p, uint64_t backoff_ms,
                  bool bad, const char *why)
{
    bool ban = p2p_node_peer_fault(p, bad);
    uint32_t sh = p->faults < 6 ? p->faults : 6;
    uint64_t b = backoff_ms ? backoff_ms : 250ull << sh;
    p->backoff_until_ms = p2p_now_ms() + b;
    if (f->next_schedule_ms == 0 || f->next_schedule_ms > p->backoff_until_ms)
        f->next_schedule_ms = p->backoff_until_ms;
    p2p_debug("%s: peer %s fault %u: %s", f->seed.file_name, p->addr, p->faults, why);
    if (ban) {
        avail_apply(f, p, -1); /* banned peers count for nothing */
        p->banned = true;
        p2p_warn("%s: banning peer %s (%s) after %u faults, %u bad pieces (last: %s)",
                 f->seed.file_name, p->addr, p->node_id, p->faults, p->bad_pieces, why);
        /* nothing more from it: its requests in flight are dropped too */
        for (struct p2p_node_fetch *fe = f->fetches, *next; fe; fe = next) {
            next = fe->next;
            if (fe->peer == p && fe->call)
                fetch_cancel(f, fe);
        }
    }
}

/* ---- piece fetches ---- */

static void fetch_unlink(struct p2p_node_file *f, struct p2p_node_fetch *fe)
{
    for (struct p2p_node_fetch **pp = &f->fetches; *pp; pp = &(*pp)->next) {
        if (*pp == fe) {
            *pp = fe->next;
            break;
        }
    }
    f->nfetch--;
    fe->peer->inflight--;
}

static void fetch_cancel(struct p2p_node_file *f, struct p2p_node_fetch *fe)
{
    fetch_unlink(f, fe);
    if (fe->call)
        p2p_httpc_cancel(fe->call);
    f->reqs[fe->index]--;
    p2p_node_buf_put(f->node, fe->buf, fe->cap);
    mem_release(f->node, fe->len, f);
    free(fe);
}

static int fetch_data(const char *data, size_t len, void *ud)
{
    struct p2p_node_fetch *fe = ud;
    if (len > fe->len - fe->got)
        return -1; /* more than the piece: never buffer beyond it */
    if (!fe->buf) {
        /* sized for any piece of the file, so the buffer can be reused for the next one */
        struct p2p_node_file *f = fe->f;
        size_t want = fe->len > f->seed.piece_length ? fe->len : f->seed.piece_length;
        fe->buf = p2p_node_buf_get(f->node, want, &fe->cap);
    }
    memcpy(fe->buf + fe->got, data, len);
    fe->got += len;
    return 0;
}

struct verify_job {
    struct p2p_node_file *f;
    struct p2p_node_peer *peer;
    uint32_t index;
    uint8_t *buf;
    size_t cap;
    uint64_t len;
    int rc;              /* 0, -EBADMSG (hash mismatch), or a write error */
};

static void verify_work(void *arg)
{
    struct verify_job *j = arg;
    const struct p2p_seed *s = &j->f->seed;
    if (!p2p_seed_verify_piece(s, j->index, j->buf, j->len)) {
        j->rc = -EBADMSG;
        return;
    }
    uint64_t off = (uint64_t)j->index * s->piece_length, done = 0;
    /* Whole blocks go through the O_DIRECT descriptor (no page-cache copy, see open_direct in
     * store.c); the file's short last piece, odd piece lengths and filesystems that refuse it
     * take the buffered one. */
    const uint64_t al = P2P_NODE_DIRECT_ALIGN;
    bool direct = j->f->dfd >= 0 && off % al == 0 && j->len % al == 0 &&
                  (uintptr_t)j->buf % al == 0;
    bool buffered = false;
    while (done < j->len) {
        int fd = direct ? j->f->dfd : j->f->fd;
        buffered |= !direct;
        ssize_t w = pwrite(fd, j->buf + done, j->len - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EINVAL && direct) {
            direct = false; /* the device wants a larger alignment */
            continue;
        }
        if (w <= 0) {
            j->rc = w < 0 ? -errno : -EIO;
            return;
        }
        done += (uint64_t)w;
        if (done % al != 0)
            direct = false; /* a short direct write: the rest is not aligned any more */
    }
    /* Start writeback of a buffered piece now (asynchronous; errors surface at the final fsync),
     * so finishing does not have to flush the whole file at once: with many nodes finishing
     * together that fsync storm was most of the gap to the bound in bench/swarm S2. A direct
     * write is on the device already. */
    if (buffered)
        (void)sync_file_range(j->f->fd, (off64_t)off, (off64_t)j->len, SYNC_FILE_RANGE_WRITE);
}

static void verify_after(void *arg)
{
    struct verify_job *j = arg;
    struct p2p_node_file *f = j->f;
    struct p2p_node *n = f->node;
    f->busy--;
    f->verifying--;
    f->reqs[j->index]--;
    j->peer->jobs--;
    if (j->rc == 0) {
        p2p_debug("%s: piece %u from %s verified", f->seed.file_name, j->index, j->peer->addr);
        p2p_node_peer_good(j->peer);
        p2p_node_store_piece_done(f, j->index);
        /* endgame: the losers of a duplicated piece are cancelled */
        for (struct p2p_node_fetch *fe = f->fetches, *next; fe; fe = next) {
            next = fe->next;
            if (fe->index == j->index)
                fetch_cancel(f, fe);
        }
    } else if (j->rc == -EBADMSG) {
        n->m.pieces_failed++;
        fault(f, j->peer, 0, true, "piece hash mismatch");
    } else if (f->state == P2P_NODE_DOWNLOADING) {
        char msg[256];
        snprintf(msg, sizeof msg, "writing piece %u: %s", j->index, strerror(-j->rc));
        p2p_error("%s: %s", f->seed.file_name, msg);
        free(f->error);
        f->error = p2p_xstrdup(msg);
        f->state = P2P_NODE_FAILED;
        p2p_node_store_close(f, false);
    }
    p2p_node_buf_put(n, j->buf, j->cap);
    mem_release(n, j->len, f);
    free(j);
    p2p_node_store_idle(f);
    p2p_node_download_schedule(f);
    if (n->stopping)
        p2p_node_stop_check(n);
}

/* A peer's answer carries its current pieces (P2P-Bitfield): fresher than the tracker's list,
 * and known even while the tracker is down. Returns true if p's view was replaced. */
static bool peer_bits_update(struct p2p_node_file *f, struct p2p_node_peer *p,
                             const struct p2p_httpc_resp *resp)
{
    const char *b64 = p2p_httpc_resp_header(resp, "P2P-Bitfield");
    size_t want = P2P_BITFIELD_BYTES(f->seed.npieces);
    if (!b64 || p->banned || strlen(b64) > (want + 2) / 3 * 4 + 4)
        return false;
    size_t rawlen = 0;
    uint8_t *raw = p2p_base64_decode(b64, strlen(b64), &rawlen);
    bool ok = raw && rawlen == want && p->bf.nbits == f->seed.npieces;
    if (ok) {
        avail_apply(f, p, -1);
        ok = p2p_bitfield_load(&p->bf, raw, rawlen) == 0;
        avail_apply(f, p, 1);
    }
    free(raw);
    if (ok)
        p->bits_ms = p2p_now_ms();
    return ok;
}

static void fetch_done(const struct p2p_httpc_resp *resp, void *ud)
{
    struct p2p_node_fetch *fe = ud;
    struct p2p_node_file *f = fe->f;
    struct p2p_node_peer *p = fe->peer;
    fe->call = NULL;
    fetch_unlink(f, fe);
    bool ok = resp->err == 0 && resp->status == 200 && fe->got == fe->len;
    if (ok && !p2p_bitfield_get(&f->got, fe->index) && downloading(f)) {
        p2p_debug("%s: piece %u from %s received", f->seed.file_name, fe->index, p->addr);
        p->bytes += fe->len;
        f->node->m.bytes_down += fe->len;
        struct verify_job *j = p2p_xcalloc(1, sizeof *j);
        j->f = f;
        j->peer = p;
        p->jobs++; /* the peer outlives the job (merge_peers never evicts it meanwhile) */
        j->index = fe->index;
        j->buf = fe->buf;
        j->cap = fe->cap;
        j->len = fe->len;
        if (!j->buf) /* zero-length pieces do not exist, but stay safe */
            j->buf = p2p_node_buf_get(f->node, 1, &j->cap);
        fe->buf = NULL; /* the piece stays counted in piece_mem until verify_after */
        f->busy++;
        f->verifying++;
        free(fe);
        p2p_node_job(f->node, verify_work, verify_after, j); /* reqs stays counted */
        p2p_node_download_schedule(f);
        return;
    }
    f->reqs[fe->index]--;
    bool fresh = resp->err == 0 && peer_bits_update(f, p, resp);
    if (!ok && resp->err == 0 && resp->status == 503 &&
        p2p_httpc_resp_header(resp, "P2P-Superseed")) {
        /* an origin seed sent this piece to another peer moments ago: get it from that peer
         * (counted as an incomplete holder until the next peer list names it), and ask this
         * seed only for pieces nobody else holds for a while; no backoff, no fault */
        p2p_debug("%s: piece %u: %s super-seeding, sent it elsewhere", f->seed.file_name,
                  fe->index, p->addr);
        if (f->partial[fe->index] == 0)
            f->partial[fe->index] = 1; /* only zero or not matters; a recount resets it */
        p->superseed_until_ms = p2p_now_ms() + P2P_NODE_SUPERSEED_AVOID_MS;
    } else if (!ok) {
        if (resp->err == 0 && resp->status >= 500 && resp->status < 600) {
            /* busy, stopping, finishing or a server error: back off, no fault */
            const char *ra = p2p_httpc_resp_header(resp, "Retry-After");
            const char *ms = p2p_httpc_resp_header(resp, "P2P-Retry-After-Ms");
            uint64_t secs = 1, wait_ms = 0;
            if (ra && (p2p_parse_u64(ra, strlen(ra), &secs) < 0 || secs > 60))
                secs = 1;
            /* our peers say how long in ms (a full upload queue drains quickly) */
            if (!ms || p2p_parse_u64(ms, strlen(ms), &wait_ms) < 0 || wait_ms == 0 ||
                wait_ms > 60000)
                wait_ms = secs * 1000;
            p->backoff_until_ms = p2p_now_ms() + wait_ms;
            if (f->next_schedule_ms == 0 || f->next_schedule_ms > p->backoff_until_ms)
                f->next_schedule_ms = p->backoff_until_ms;
        } else if (resp->err == 0 && resp->status == 404 && fe->probe) {
            /* a probe: they do not have it yet, and told us what they have (fresh) */
        } else if (resp->err == 0 && resp->status == 404) {
            /* they do not have it (any more): forget it until the next peer list */
            if (!fresh && p2p_bitfield_get(&p->bf, fe->index)) {
                avail_apply(f, p, -1);
                p2p_bitfield_clear(&p->bf, fe->index);
                avail_apply(f, p, 1);
            }
            fault(f, p, 500, false, "404 for a piece it announced");
        } else {
            char why[160];
            if (resp->err)
                snprintf(why, sizeof why, "%s", resp->errmsg ? resp->errmsg : "transport error");
            else
                snprintf(why, sizeof why, "status %ld, %llu of %llu bytes", resp->status,
                         (unsigned long long)fe->got, (unsigned long long)fe->len);
            fault(f, p, 0, false, why);
        }
    }
    p2p_node_buf_put(f->node, fe->buf, fe->cap);
    mem_release(f->node, fe->len, f);
    free(fe);
    p2p_node_download_schedule(f);
}

static void fetch_start(struct p2p_node_file *f, struct p2p_node_peer *p, uint32_t index,
                        bool probe)
{
    struct p2p_node_fetch *fe = p2p_xcalloc(1, sizeof *fe);
    fe->probe = probe;
    fe->f = f;
    fe->peer = p;
    fe->index = index;
    fe->len = p2p_seed_piece_len(&f->seed, index);
    char *url = p2p_xasprintf("http://%s/v2/piece/%s/%u", p->addr, f->seed.info_hash, index);
    /* how rare the piece is as far as we know: the uploader serves rare pieces first */
    char holders[32];
    snprintf(holders, sizeof holders, "P2P-Holders: %u", f->avail[index] ? f->avail[index] : 1);
    const char *hdrs[] = {holders, NULL};
    struct p2p_httpc_opts opts = {
        .url = url,
        .headers = hdrs,
        .max_body = fe->len,
        .connect_timeout_ms = 3000,
        .timeout_ms = FETCH_TIMEOUT_MS,
        .on_data = fetch_data,
    };
    p->inflight++;
    f->reqs[index]++;
    f->nfetch++;
    f->node->piece_mem += fe->len;
    fe->next = f->fetches;
    f->fetches = fe;
    fe->call = p2p_httpc_request(f->node->httpc, &opts, fetch_done, fe);
    free(url);
}

/* Requests a peer may have in flight from us: max_peer_concurrency, and fewer to a complete
 * peer: a seed's upload is split among all its requests, so a few each keeps every piece it
 * sends short (it reaches the swarm sooner) while its link stays busy. */
static uint32_t peer_slots(const struct p2p_node_file *f, const struct p2p_node_peer *p)
{
    uint32_t max = f->node->cfg.max_peer_concurrency;
    if (peer_full(f, p) && max > P2P_NODE_FULL_CONCURRENCY)
        max = P2P_NODE_FULL_CONCURRENCY;
    return max;
}

static bool peer_usable(const struct p2p_node_file *f, const struct p2p_node_peer *p,
                        uint64_t now)
{
    return !p->banned && now >= p->backoff_until_ms && p->bf.nbits == f->seed.npieces &&
           p->inflight < peer_slots(f, p);
}

/* The peer to fetch piece i from: a usable holder not already fetching it; incomplete peers
 * before complete ones, which only count when allow_full (seed offload) and not while they
 * ask us to get their recently sent pieces elsewhere (P2P-Superseed) unless nobody else has
 * the piece; then the least busy, random among equals. */
static struct p2p_node_peer *choose_peer(struct p2p_node_file *f, uint32_t i, uint64_t now,
                                         bool allow_full)
{
    struct p2p_node_peer *best = NULL;
    bool best_full = false;
    uint32_t ties = 0;
    for (size_t j = 0; j < f->npeers; j++) {
        struct p2p_node_peer *p = f->peers[j];
        if (!peer_usable(f, p, now) || !p2p_bitfield_get(&p->bf, i))
            continue;
        bool full = peer_full(f, p);
        if (full && (!allow_full || (f->partial[i] > 0 && p->superseed_until_ms > now)))
            continue;
        bool busy_here = false;
        for (struct p2p_node_fetch *fe = f->fetches; fe && !busy_here; fe = fe->next)
            busy_here = fe->peer == p && fe->index == i;
        if (busy_here || (best && full && !best_full))
            continue;
        if (best && !full && best_full)
            best = NULL; /* an incomplete holder beats any complete one */
        if (!best || p->inflight < best->inflight) {
            best = p;
            best_full = full;
            ties = 1;
        } else if (p->inflight == best->inflight && p2p_rand_below(++ties) == 0) {
            best = p;
        }
    }
    return best;
}

/* Download rate limit: each request is charged its piece length up front. */
static bool rate_allows(struct p2p_node *n, struct p2p_node_file *f, uint64_t len, uint64_t now)
{
    struct p2p_node_rate *r = &n->down_rate;
    if (!r->rate)
        return true;
    if (r->last_ms == 0)
        r->last_ms = now;
    r->tokens += (double)(now - r->last_ms) * (double)r->rate / 1000.0;
    r->last_ms = now;
    double cap = (double)(r->rate / 4 > len ? r->rate / 4 : len);
    if (r->tokens > cap)
        r->tokens = cap;
    if (r->tokens < 0) {
        uint64_t wait = (uint64_t)(-r->tokens * 1000.0 / (double)r->rate) + 1;
        if (f->next_schedule_ms == 0 || f->next_schedule_ms > now + wait)
            f->next_schedule_ms = now + wait;
        return false;
    }
    r->tokens -= (double)len;
    return true;
}

/* An idle, incomplete peer whose view is stale, and a piece we lack, nobody is fetching and it
 * did not have when last seen (random start); NULL if none. The peer counts as probed now. */
static struct p2p_node_peer *probe_target(struct p2p_node_file *f, uint64_t now, int64_t *index)
{
    uint32_t n = f->seed.npieces;
    if (n == 0 || f->npeers == 0)
        return NULL;
    size_t j0 = p2p_rand_below((uint32_t)f->npeers);
    for (size_t k = 0; k < f->npeers; k++) {
        struct p2p_node_peer *p = f->peers[(j0 + k) % f->npeers];
        if (p->banned || p->inflight || now < p->backoff_until_ms || p->bf.nbits != n ||
            peer_full(f, p) || now < p->bits_ms + PROBE_EVERY_MS)
            continue;
        uint32_t start = p2p_rand_below(n);
        for (uint32_t m = 0; m < n; m++) {
            uint32_t i = start + m < n ? start + m : start + m - n;
            if (f->reqs[i] || p2p_bitfield_get(&f->got, i) || p2p_bitfield_get(&p->bf, i))
                continue;
            p->bits_ms = now;
            *index = i;
            return p;
        }
    }
    return NULL;
}

bool p2p_node_endgame(const struct p2p_bitfield *got, const uint8_t *reqs, uint32_t inflight)
{
    if (got->nbits - got->count > inflight)
        return false; /* more pieces missing than requests in flight */
    for (uint32_t i = 0; i < got->nbits; i++)
        if (!reqs[i] && !p2p_bitfield_get(got, i))
            return false;
    return true;
}

/* The piece-memory cap: P2P_NODE_PIECE_MEM, or 4 pieces of the largest piece length among the
 * downloads (8 MiB+ pieces still have several in flight), at most P2P_NODE_PIECE_MEM_MAX. */
static uint64_t piece_mem_cap(const struct p2p_node *n)
{
    uint64_t cap = P2P_NODE_PIECE_MEM;
    for (const struct p2p_node_file *f = n->files; f; f = f->next)
        if (f->state == P2P_NODE_DOWNLOADING && 4 * f->seed.piece_length > cap)
            cap = 4 * f->seed.piece_length;
    return cap < P2P_NODE_PIECE_MEM_MAX ? cap : P2P_NODE_PIECE_MEM_MAX;
}

void p2p_node_download_schedule(struct p2p_node_file *f)
{
    if (!downloading(f) || !f->avail)
        return;
    struct p2p_node *n = f->node;
    uint64_t now = p2p_now_ms();
    uint32_t max = (uint32_t)n->cfg.max_download_concurrency;
    if (max == 0)
        max = 1;
    if (f->nfetch + f->verifying >= max || f->npeers == 0)
        return;
    uint64_t mem_cap = piece_mem_cap(n);
    bool *usable = p2p_xcalloc(f->npeers, sizeof *usable);
    bool *full = p2p_xcalloc(f->npeers, sizeof *full);
    const struct p2p_bitfield **bfs = p2p_xcalloc(f->npeers, sizeof *bfs);
    for (size_t j = 0; j < f->npeers; j++)
        bfs[j] = &f->peers[j]->bf;
    while (f->nfetch + f->verifying < max) {
        for (size_t j = 0; j < f->npeers; j++) {
            usable[j] = peer_usable(f, f->peers[j], now);
            full[j] = peer_full(f, f->peers[j]);
        }
        /* seed offload: complete peers are asked for pieces no incomplete peer holds */
        int64_t i = p2p_node_pick(&f->got, f->reqs, f->avail, f->partial, bfs, usable, full,
                                  f->npeers);
        bool any_holder = i < 0;
        if (i < 0) {
            /* nothing else to do: complete peers for any piece (finished downloaders are good
             * sources), except a super-seed that lately asked us to get its pieces elsewhere */
            for (size_t j = 0; j < f->npeers; j++)
                if (full[j] && f->peers[j]->superseed_until_ms > now)
                    usable[j] = false;
            i = p2p_node_pick(&f->got, f->reqs, f->avail, NULL, bfs, usable, NULL, f->npeers);
        }
        struct p2p_node_peer *p = NULL;
        if (i >= 0) {
            p = choose_peer(f, (uint32_t)i, now, any_holder || f->partial[i] == 0);
        } else if (p2p_node_endgame(&f->got, f->reqs, f->nfetch + f->verifying)) {
            /* endgame: every missing piece is requested; duplicate the in-flight ones on other
             * peers, and the first good copy cancels the rest */
            for (struct p2p_node_fetch *fe = f->fetches; fe && !p; fe = fe->next) {
                if (f->reqs[fe->index] >= P2P_NODE_MAX_DUP)
                    continue;
                p = choose_peer(f, fe->index, now, true);
                i = fe->index;
            }
        }
        bool probe = false;
        if (!p && now >= f->list_ms + PROBE_STALE_MS) {
            /* no peer list lately (trackers down): ask an idle peer for a piece it did not
             * have; it sends it if it has it now, else its 404 carries its pieces */
            p = probe_target(f, now, &i);
            probe = p != NULL;
        }
        if (!p)
            break;
        uint64_t plen = p2p_seed_piece_len(&f->seed, (uint32_t)i);
        if (n->piece_mem > 0 && n->piece_mem + plen > mem_cap) {
            n->mem_blocked = true; /* scheduled again when a piece buffer is released */
            break;
        }
        if (!rate_allows(n, f, p2p_seed_piece_len(&f->seed, (uint32_t)i), now))
            break;
        fetch_start(f, p, (uint32_t)i, probe);
    }
    free(usable);
    free(full);
    free(bfs);
}

/* ---- peer lists ---- */

#define PEER_STALE_MS 30000      /* peers absent from every list this long are forgotten */

struct peers_ctx {
    struct p2p_node_pending pend; /* first: drop() gets it back */
    struct p2p_node *n;
    struct p2p_node_tracker *t;
    char info_hash[65];
};

static void peers_drop(struct p2p_node_pending *p)
{
    free(p);
}

static bool evictable(const struct p2p_node_peer *p)
{
    return p->inflight == 0 && p->jobs == 0;
}

static void peer_remove(struct p2p_node_file *f, size_t j)
{
    p2p_node_peer_free(f->peers[j]);
    f->peers[j] = f->peers[--f->npeers];
}

/* Room for a new peer at P2P_NODE_MAX_PEERS: evicts an idle banned peer, else the idle peer
 * listed least recently. Returns false if every peer is busy. */
static bool make_room(struct p2p_node_file *f)
{
    size_t victim = SIZE_MAX;
    for (size_t j = 0; j < f->npeers; j++) {
        const struct p2p_node_peer *p = f->peers[j];
        if (!evictable(p))
            continue;
        if (victim == SIZE_MAX) {
            victim = j;
            continue;
        }
        const struct p2p_node_peer *v = f->peers[victim];
        if ((p->banned && !v->banned) || (p->banned == v->banned && p->seen_ms < v->seen_ms))
            victim = j;
    }
    if (victim == SIZE_MAX)
        return false;
    peer_remove(f, victim);
    return true;
}

/* Forgets idle peers no tracker has listed lately (their bitfields are stale); banned ones are
 * kept so the ban holds, unless room is needed. */
static void prune_peers(struct p2p_node_file *f, uint64_t now)
{
    for (size_t j = f->npeers; j-- > 0;) {
        const struct p2p_node_peer *p = f->peers[j];
        if (!p->banned && evictable(p) && now > p->seen_ms + PEER_STALE_MS)
            peer_remove(f, j);
    }
}

static bool addr_ok(const char *a)
{
    size_t len = strlen(a);
    if (len == 0 || len > 262 || !strchr(a, ':'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = a[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_'))
            return false;
    }
    return true;
}

static struct p2p_node_ann *ann_of(struct p2p_node_file *f, struct p2p_node_tracker *t)
{
    for (size_t i = 0; i < f->nann; i++)
        if (f->ann[i].t == t)
            return &f->ann[i];
    return NULL;
}

static void merge_peers(struct p2p_node_file *f, json_t *peers)
{
    struct p2p_node *n = f->node;
    uint64_t now = p2p_now_ms();
    size_t idx;
    json_t *e;
    json_array_foreach(peers, idx, e)
    {
        const char *id = NULL, *addr = NULL, *b64 = NULL;
        if (!json_is_object(e) || p2p_json_get_str(e, "nodeId", true, &id, NULL, 0) != 0 ||
            p2p_json_get_str(e, "addr", true, &addr, NULL, 0) != 0 ||
            p2p_json_get_str(e, "bitfield", true, &b64, NULL, 0) != 0)
            continue;
        if (strlen(id) == 0 || strlen(id) > 63 || strcmp(id, n->node_id) == 0 || !addr_ok(addr) ||
            strcmp(addr, n->advertise) == 0)
            continue;
        size_t rawlen = 0;
        uint8_t *raw = p2p_base64_decode(b64, strlen(b64), &rawlen);
        if (!raw)
            continue;
        struct p2p_node_peer *p = NULL;
        for (size_t j = 0; j < f->npeers && !p; j++)
            if (strcmp(f->peers[j]->node_id, id) == 0)
                p = f->peers[j];
        if (!p) {
            if (f->npeers >= P2P_NODE_MAX_PEERS && !make_room(f)) {
                free(raw);
                continue;
            }
            p = p2p_xcalloc(1, sizeof *p);
            p->node_id = p2p_xstrdup(id);
            p2p_bitfield_init(&p->bf, f->seed.npieces);
            f->peers = p2p_xrealloc(f->peers, (f->npeers + 1) * sizeof *f->peers);
            f->peers[f->npeers++] = p;
        }
        if (!p->addr || strcmp(p->addr, addr) != 0) {
            free(p->addr);
            p->addr = p2p_xstrdup(addr);
        }
        p2p_bitfield_load(&p->bf, raw, rawlen); /* wrong size: keeps the old view */
        p->seen_ms = now;
        p->bits_ms = now;
        free(raw);
    }
    f->list_ms = now;
    prune_peers(f, now);
    recount_avail(f);
}

static void peers_done(const struct p2p_httpc_resp *resp, void *ud)
{
    struct peers_ctx *c = ud;
    p2p_node_call_done(c->n, &c->pend);
    struct p2p_node_file *f = p2p_node_find(c->n, c->info_hash);
    struct p2p_node_ann *a = f ? ann_of(f, c->t) : NULL;
    free(c);
    if (!a)
        return;
    a->peers_inflight = false;
    if (!downloading(f))
        return;
    json_t *o = NULL;
    if (resp->err == 0 && resp->status == 200 && resp->body)
        o = p2p_json_parse_object(resp->body, resp->body_len, NULL, 0);
    if (!o) {
        p2p_debug("%s: peer list from %s: %s (status %ld)", f->seed.file_name, a->t->addr,
                  resp->err ? resp->errmsg : "no list", resp->status);
        return; /* keep the peers we know: a tracker outage does not stop the download */
    }
    json_t *peers = json_object_get(o, "peers");
    uint64_t count = 0;
    if (json_is_array(peers) &&
        p2p_json_get_u64(o, "pieceCount", false, UINT32_MAX, &count, NULL, 0) >= 0 &&
        (count == 0 || count == f->seed.npieces))
        merge_peers(f, peers);
    json_decref(o);
    p2p_node_download_schedule(f);
}

static void request_peers(struct p2p_node_file *f, struct p2p_node_ann *a, uint64_t now)
{
    struct p2p_node *n = f->node;
    bool idle = f->nfetch == 0;
    a->peers_next_ms = now + (idle ? PEERS_IDLE_MS : PEERS_PERIOD_MS);
    char *path, *id = p2p_url_escape(n->node_id);
    if (n->cfg.zone && *n->cfg.zone) {
        char *zone = p2p_url_escape(n->cfg.zone);
        path = p2p_xasprintf("/v2/peers?infoHash=%s&nodeId=%s&zone=%s&max=50",
                             f->seed.info_hash, id, zone);
        free(zone);
    } else {
        path = p2p_xasprintf("/v2/peers?infoHash=%s&nodeId=%s&max=50", f->seed.info_hash, id);
    }
    free(id);
    char *url = p2p_node_tracker_url(a->t, path);
    free(path);
    struct peers_ctx *c = p2p_xcalloc(1, sizeof *c);
    c->pend.drop = peers_drop;
    c->n = n;
    c->t = a->t;
    memcpy(c->info_hash, f->seed.info_hash, sizeof c->info_hash);
    uint64_t cap = 64 * 1024 + 50ull * (P2P_BITFIELD_BYTES(f->seed.npieces) * 4 / 3 + 512);
    struct p2p_httpc_opts opts = {
        .url = url,
        .headers = p2p_node_tracker_headers(n),
        .max_body = cap,
        .connect_timeout_ms = 2000,
        .timeout_ms = 5000,
    };
    a->peers_inflight = true;
    p2p_node_call(n, &c->pend, &opts, peers_done, c);
    free(url);
}

/* ---- lifecycle ---- */

void p2p_node_download_start(struct p2p_node_file *f)
{
    uint32_t n = f->seed.npieces;
    if (!f->avail) {
        f->avail = p2p_xcalloc(n ? n : 1, sizeof *f->avail);
        f->partial = p2p_xcalloc(n ? n : 1, sizeof *f->partial);
        f->reqs = p2p_xcalloc(n ? n : 1, sizeof *f->reqs);
    }
    f->downloaded = true; /* not an origin seed once complete: no super-seeding */
    for (size_t i = 0; i < f->npeers; i++) {
        f->peers[i]->banned = false;
        f->peers[i]->faults = 0;
        f->peers[i]->bad_pieces = 0;
    }
    recount_avail(f);
    /* ask every tracker for peers now rather than at the next tick */
    uint64_t now = p2p_now_ms();
    for (size_t i = 0; i < f->nann; i++) {
        f->ann[i].peers_next_ms = 0;
        if (downloading(f) && !f->ann[i].peers_inflight)
            request_peers(f, &f->ann[i], now);
    }
    f->next_schedule_ms = 0;
    p2p_node_download_schedule(f);
}

void p2p_node_download_stop(struct p2p_node_file *f)
{
    while (f->fetches)
        fetch_cancel(f, f->fetches);
}

void p2p_node_download_tick(struct p2p_node *n, uint64_t now)
{
    bool active = false;
    for (struct p2p_node_file *f = n->files; f; f = f->next)
        active = active || downloading(f);
    if (!active && n->piece_mem == 0)
        p2p_node_buf_drain(n); /* spare piece buffers are for downloads in progress */
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        if (now >= f->speed_window_ms + 1000) {
            uint64_t el = f->speed_window_ms ? now - f->speed_window_ms : 1000;
            double inst = (double)f->speed_bytes * 1000.0 / (double)(el ? el : 1);
            f->speed = f->state == P2P_NODE_DOWNLOADING ? 0.5 * f->speed + 0.5 * inst : 0;
            f->speed_bytes = 0;
            f->speed_window_ms = now;
        }
        if (!downloading(f))
            continue;
        for (size_t i = 0; i < f->nann; i++) {
            struct p2p_node_ann *a = &f->ann[i];
            if (!a->peers_inflight && now >= a->peers_next_ms)
                request_peers(f, a, now);
        }
        if (f->next_schedule_ms && now >= f->next_schedule_ms) {
            f->next_schedule_ms = 0;
            p2p_node_download_schedule(f);
        }
    }
}
