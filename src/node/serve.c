/* Node serving: pieces (v2 and the original's /v1/pieceData), whole files with HEAD and Range,
 * seeds; upload slots and token-bucket rate limits shared by every connection. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "node/node_int.h"

#define RATE_MIN_CHUNK 16384

size_t p2p_node_rate_take(struct p2p_node_rate *r, uint64_t now_ms, size_t want,
                          uint64_t *delay_ms)
{
    return p2p_node_rate_take_prio(r, now_ms, want, true, delay_ms);
}

size_t p2p_node_rate_take_prio(struct p2p_node_rate *r, uint64_t now_ms, size_t want, bool head,
                               uint64_t *delay_ms)
{
    if (!r->rate || want == 0)
        return want;
    if (r->last_ms == 0) {
        r->last_ms = now_ms;
        r->tokens = (double)RATE_MIN_CHUNK;
    }
    if (now_ms > r->last_ms) {
        r->tokens += (double)(now_ms - r->last_ms) * (double)r->rate / 1000.0;
        r->last_ms = now_ms;
    }
    /* grants of at least ~20 ms of the rate: with 1 ms timers, smaller ones would wake every
     * waiting connection (and queue a send job) every millisecond for a few KiB each */
    uint64_t chunk = r->rate / 50 > RATE_MIN_CHUNK ? r->rate / 50 : RATE_MIN_CHUNK;
    /* a small burst keeps many connections smooth: nobody saves up more than ~100 ms */
    double burst = (double)(r->rate / 10 > 2 * chunk ? r->rate / 10 : 2 * chunk);
    if (r->tokens > burst)
        r->tokens = burst;
    double need = (double)(want < chunk ? want : chunk);
    if (!head && need < burst - (double)chunk)
        need = burst - (double)chunk; /* leftovers only: the heads did not take them */
    if (r->tokens < need) {
        uint64_t d = (uint64_t)((need - r->tokens) * 1000.0 / (double)r->rate) + 1;
        *delay_ms = d;
        return 0;
    }
    size_t give = r->tokens < (double)want ? (size_t)r->tokens : want;
    r->tokens -= (double)give;
    return give;
}

struct p2p_node_upload {
    struct p2p_node_upload *prev, *next; /* n->up_first.. (rate-limited uploads only) */
    bool linked;
    struct p2p_node *n;
    uint64_t len;
    bool piece;                  /* a piece (index) rather than a whole-file range */
    uint64_t key;                /* queue order: arrival ms + holders x P2P_NODE_UP_RARITY_MS */
    bool ss;                     /* a piece of an origin seed: super-seeding state to update */
    uint32_t index;
    char info_hash[65];
};

bool p2p_node_superseed_refuse(const struct p2p_node_ss_piece *p, uint32_t unsent,
                               uint64_t now_ms, uint32_t repeats, uint32_t npieces)
{
    if (p->sent == 0)
        return false; /* never sent (or every send was lost) */
    uint64_t hold;
    if (unsent > 0)
        hold = P2P_NODE_SUPERSEED_HOLD_MS; /* first pass: each piece once before any twice */
    else if ((uint64_t)repeats * 100 >= (uint64_t)npieces * P2P_NODE_SUPERSEED_REPEAT_PCT)
        hold = P2P_NODE_SUPERSEED_TAIL_HOLD_MS; /* repeat budget spent */
    else
        return false; /* every piece went out once: the seed helps with the last copies */
    return p->active > 0 || (p->done_ms > 0 && now_ms < (uint64_t)p->done_ms + hold);
}

char *p2p_node_bitfield_header(const struct p2p_node_file *f)
{
    size_t len = P2P_BITFIELD_BYTES(f->got.nbits);
    if (len == 0 || (len + 2) / 3 * 4 > P2P_NODE_BITFIELD_HDR_MAX)
        return NULL;
    return p2p_base64_encode(f->got.bits, len);
}

/* A file this process did not download, seeding: it sends each piece once before any twice. */
static bool origin(const struct p2p_node_file *f)
{
    return f->state == P2P_NODE_SEEDING && !f->downloaded && f->seed.npieces > 0;
}

static uint32_t ss_now(const struct p2p_node_file *f)
{
    uint64_t d = p2p_now_ms() - f->ss_base_ms + 1; /* never 0: 0 means "not sent" */
    return d < UINT32_MAX ? (uint32_t)d : UINT32_MAX;
}

static size_t up_pace(void *ud, size_t want, uint64_t *delay_ms)
{
    struct p2p_node_upload *u = ud;
    bool head = !u->linked; /* whole-file responses share the rate with the head pieces */
    struct p2p_node_upload *h = u->n->up_first;
    for (int k = 0; h && k < P2P_NODE_UP_HEADS && !head; k++, h = h->next)
        head = h == u;
    return p2p_node_rate_take_prio(&u->n->up_rate, p2p_now_ms(), want, head, delay_ms);
}

static void upload_done(void *ud, int status)
{
    struct p2p_node_upload *u = ud;
    u->n->uploads--;
    if (u->linked) {
        u->n->up_queued -= u->n->up_queued > u->len ? u->len : u->n->up_queued;
        if (u->prev)
            u->prev->next = u->next;
        else
            u->n->up_first = u->next;
        if (u->next)
            u->next->prev = u->prev;
        else
            u->n->up_last = u->prev;
    }
    if (status == 0)
        u->n->m.bytes_up += u->len;
    if (u->piece)
        p2p_debug("upload of piece %u %s", u->index, status == 0 ? "done" : "cut off");
    struct p2p_node_file *f = u->ss ? p2p_node_find(u->n, u->info_hash) : NULL;
    if (f && f->ss && u->index < f->seed.npieces) {
        struct p2p_node_ss_piece *p = &f->ss[u->index];
        if (p->active)
            p->active--;
        if (status == 0) {
            p->done_ms = ss_now(f);
        } else if (p->sent && p->sent < UINT8_MAX && --p->sent == 0) {
            f->ss_unsent++; /* cut off: as if never sent */
        } else if (p->sent && f->ss_repeats) {
            f->ss_repeats--; /* a cut-off repeat does not count */
        }
    }
    free(u);
}

static bool held(const struct p2p_node_file *f)
{
    return f && f->in_store &&
           (f->state == P2P_NODE_DOWNLOADING || f->state == P2P_NODE_SEEDING) && !f->closing;
}

/* piece_len: a rate-limited piece upload of this length, queued at key (upload_key), is refused
 * while the uploads queued ahead of it would take more than P2P_NODE_UP_QUEUE_MS (or
 * P2P_NODE_UP_QUEUE_SOLE_MS when the downloader knows no other holder: holders <= 1); the 503
 * says when the queue will have room. 0 = no such check. */
static bool take_slot(struct p2p_node *n, struct p2p_httpd_req *req, uint64_t piece_len,
                      uint64_t key, uint64_t holders)
{
    if (n->stopping) {
        p2p_httpd_add_header(req, "Retry-After", "1");
        p2p_httpd_respond_error(req, 503, "E001", "node is stopping");
        return false;
    }
    if (n->cfg.max_upload_slots && n->uploads >= n->cfg.max_upload_slots) {
        p2p_httpd_add_header(req, "Retry-After", "1");
        p2p_httpd_respond_error(req, 503, "E001", "all %u upload slots are busy", n->uploads);
        return false;
    }
    uint64_t rate = n->up_rate.rate, ahead = 0;
    if (piece_len && rate)
        for (const struct p2p_node_upload *u = n->up_first; u && u->key <= key; u = u->next)
            ahead += u->len;
    uint64_t cap = rate * (holders <= 1 ? P2P_NODE_UP_QUEUE_SOLE_MS : P2P_NODE_UP_QUEUE_MS) / 1000;
    if (ahead > 0 && ahead + piece_len > cap) {
        uint64_t wait = (ahead + piece_len - cap) * 1000 / rate + 1;
        if (wait < P2P_NODE_UP_RETRY_MIN_MS)
            wait = P2P_NODE_UP_RETRY_MIN_MS;
        if (wait > P2P_NODE_UP_RETRY_MAX_MS)
            wait = P2P_NODE_UP_RETRY_MAX_MS;
        p2p_httpd_add_header(req, "Retry-After", "1");
        p2p_httpd_add_headerf(req, "P2P-Retry-After-Ms", "%llu", (unsigned long long)wait);
        p2p_httpd_respond_error(req, 503, "E001", "upload queue full (%llu bytes)",
                                (unsigned long long)n->up_queued);
        return false;
    }
    return true;
}

/* ss: the file whose piece index this is (for an origin seed its super-seeding state is
 * updated now and when the send ends), or NULL for a whole-file response. */
static void send_range(struct p2p_node *n, struct p2p_httpd_req *req, int status,
                       const char *path, uint64_t off, uint64_t len, struct p2p_node_file *ss,
                       uint32_t index, uint64_t key)
{
    struct p2p_node_upload *u = p2p_xcalloc(1, sizeof *u);
    u->n = n;
    u->key = key;
    if (ss)
        p2p_debug("upload of piece %u queued behind %llu bytes", index,
                  (unsigned long long)n->up_queued);
    u->len = p2p_httpd_is_head(req) ? 0 : len;
    u->piece = ss != NULL;
    u->index = index;
    if (ss && ss->ss && index < ss->seed.npieces && !p2p_httpd_is_head(req)) {
        /* an origin seed's piece: super-seeding bookkeeping */
        struct p2p_node_ss_piece *p = &ss->ss[index];
        u->ss = true;
        memcpy(u->info_hash, ss->seed.info_hash, sizeof u->info_hash);
        if (p->sent == 0 && ss->ss_unsent && --ss->ss_unsent == 0) {
            uint64_t sends = 0;
            for (uint32_t k = 0; k < ss->seed.npieces; k++)
                sends += ss->ss[k].sent;
            p2p_info("%s: super-seeding: every piece is out after %llu ms, %llu sends of %u "
                     "pieces", ss->seed.file_name,
                     (unsigned long long)(p2p_now_ms() - ss->ss_base_ms),
                     (unsigned long long)sends + 1, ss->seed.npieces);
        }
        if (p->sent > 0)
            ss->ss_repeats++;
        if (p->sent < UINT8_MAX)
            p->sent++;
        if (p->active < UINT8_MAX)
            p->active++;
    }
    n->uploads++;
    struct p2p_httpd_file file = {
        .path = path,
        .offset = off,
        .length = len,
        .content_type = "application/octet-stream",
        .pace = n->up_rate.rate ? up_pace : NULL,
        .pace_ud = u,
        .done = upload_done,
        .done_ud = u,
    };
    if (n->up_rate.rate && ss && !p2p_httpd_is_head(req)) {
        /* pieces are served in key order (p2p_node_rate_take_prio): after every upload with a
         * key not above ours */
        u->linked = true;
        n->up_queued += len;
        struct p2p_node_upload *after = n->up_last;
        while (after && after->key > key)
            after = after->prev;
        u->prev = after;
        u->next = after ? after->next : n->up_first;
        if (u->next)
            u->next->prev = u;
        else
            n->up_last = u;
        if (after)
            after->next = u;
        else
            n->up_first = u;
    }
    p2p_httpd_respond_file(req, status, &file); /* done may run at once */
}

/* A piece upload's place in the queue: now plus P2P_NODE_UP_RARITY_MS for each holder the
 * downloader knows of (its P2P-Holders header, 1..65535; absent or malformed:
 * P2P_NODE_UP_HOLDERS_DEFAULT), which goes to *hp. */
static uint64_t upload_key(struct p2p_httpd_req *req, uint64_t *hp)
{
    const char *h = p2p_httpd_header(req, "P2P-Holders");
    uint64_t holders = 0;
    if (!h || p2p_parse_u64(h, strlen(h), &holders) < 0 || holders == 0 || holders > 65535)
        holders = P2P_NODE_UP_HOLDERS_DEFAULT;
    *hp = holders;
    return p2p_now_ms() + holders * P2P_NODE_UP_RARITY_MS;
}

/* Origin seed: refuses a piece sent (or being sent) moments ago while some piece was never
 * sent or once its repeat budget is spent; the refusal names nobody, the downloader gets the
 * piece from the holders it knows or finds in its next peer list. */
static bool superseed_refused(struct p2p_httpd_req *req, struct p2p_node_file *f, uint32_t i)
{
    if (!origin(f))
        return false;
    if (!f->ss) {
        f->ss = p2p_xcalloc(f->seed.npieces, sizeof *f->ss);
        f->ss_unsent = f->seed.npieces;
        f->ss_base_ms = p2p_now_ms();
    }
    if (!p2p_node_superseed_refuse(&f->ss[i], f->ss_unsent, ss_now(f), f->ss_repeats,
                                   f->seed.npieces))
        return false;
    p2p_httpd_add_header(req, "Retry-After", "1");
    p2p_httpd_add_header(req, "P2P-Superseed", "1");
    p2p_httpd_respond_error(req, 503, "E001",
                            "piece %u was just sent to another peer: fetch it from there", i);
    return true;
}

/* Every piece answer tells the downloader which pieces we serve (fresher than the tracker). */
static void add_bitfield(struct p2p_httpd_req *req, const struct p2p_node_file *f)
{
    char *b64 = p2p_node_bitfield_header(f);
    if (b64)
        p2p_httpd_add_header(req, "P2P-Bitfield", b64);
    free(b64);
}


/* superseed: whether the origin may refuse a piece it just sent (our own downloaders understand
 * the 503; the Go original's nodes on /v1/pieceData would just count it as a failure). */
static void send_piece(struct p2p_node *n, struct p2p_httpd_req *req, struct p2p_node_file *f,
                       uint32_t i, bool superseed)
{
    if (f->finishing) {
        /* the data is being moved to complete_dir: come back shortly (not an error) */
        p2p_httpd_add_header(req, "Retry-After", "1");
        p2p_httpd_respond_error(req, 503, "E001", "file is being finished");
        return;
    }
    add_bitfield(req, f);
    uint64_t holders;
    uint64_t key = upload_key(req, &holders);
    if ((superseed && superseed_refused(req, f, i)) ||
        !take_slot(n, req, p2p_seed_piece_len(&f->seed, i), key, holders))
        return;
    uint64_t off = (uint64_t)i * f->seed.piece_length;
    send_range(n, req, 200, f->data_path, off, p2p_seed_piece_len(&f->seed, i), f, i, key);
}

void p2p_node_serve_piece(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    const char *ih = p2p_httpd_param(req, "infoHash");
    const char *is = p2p_httpd_param(req, "index");
    uint64_t i = 0;
    struct p2p_node_file *f = ih ? p2p_node_find(n, ih) : NULL;
    if (!is || p2p_parse_u64(is, strlen(is), &i) < 0) {
        p2p_httpd_respond_error(req, 400, "E001", "bad piece index");
        return;
    }
    if (!held(f) || i >= f->seed.npieces || !p2p_bitfield_get(&f->got, (uint32_t)i)) {
        if (held(f))
            add_bitfield(req, f); /* what we do hold (answers a downloader's probe) */
        p2p_httpd_respond_error(req, 404, "E001", "piece not held");
        return;
    }
    send_piece(n, req, f, (uint32_t)i, true);
}

void p2p_node_serve_piece_v1(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    const char *id = p2p_httpd_query(req, "pieceID");
    uint8_t want[20];
    if (!id || strlen(id) != 40 || p2p_hex_decode(id, 20, want) < 0) {
        p2p_httpd_respond_error(req, 400, "E001", "pieceID must be 40 hex digits (SHA-1)");
        return;
    }
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        if (!held(f) || f->seed.algo != P2P_HASH_SHA1)
            continue;
        if (f->v1_order) { /* pieces sorted by digest: binary search */
            int64_t k = p2p_node_v1_index_find(&f->seed, f->v1_order, want);
            for (; k >= 0 && k < f->seed.npieces &&
                   memcmp(f->seed.pieces[f->v1_order[k]].digest, want, 20) == 0;
                 k++) {
                if (p2p_bitfield_get(&f->got, f->v1_order[k])) {
                    send_piece(n, req, f, f->v1_order[k], false);
                    return;
                }
            }
            continue;
        }
        p2p_node_seed_cache(f); /* builds the index; until then, a scan */
        for (uint32_t i = 0; i < f->seed.npieces; i++) {
            if (memcmp(f->seed.pieces[i].digest, want, 20) == 0 &&
                p2p_bitfield_get(&f->got, i)) {
                send_piece(n, req, f, i, false);
                return;
            }
        }
    }
    p2p_httpd_respond_error(req, 404, "E001", "piece not held");
}

void p2p_node_serve_file(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    const char *ih = p2p_httpd_param(req, "infoHash");
    struct p2p_node_file *f = ih ? p2p_node_find(n, ih) : NULL;
    if (!held(f) || f->state != P2P_NODE_SEEDING) {
        p2p_httpd_respond_error(req, 404, "E001", "file not held complete");
        return;
    }
    uint64_t size = f->seed.length, off = 0, len = size;
    const char *range = p2p_httpd_header(req, "Range");
    int r = range ? p2p_httpd_parse_range(range, size, &off, &len) : 0;
    p2p_httpd_add_header(req, "Accept-Ranges", "bytes");
    p2p_httpd_add_headerf(req, "ETag", "\"%s\"", f->seed.info_hash);
    const char *name = f->seed.file_name;
    if (!strpbrk(name, "\"\\;%"))
        p2p_httpd_add_headerf(req, "Content-Disposition", "attachment; filename=\"%s\"", name);
    if (r < 0) {
        p2p_httpd_add_headerf(req, "Content-Range", "bytes */%llu", (unsigned long long)size);
        p2p_httpd_respond_error(req, 416, "E001", "range not satisfiable");
        return;
    }
    if (r == 0) {
        off = 0;
        len = size;
    }
    if (r > 0)
        p2p_httpd_add_headerf(req, "Content-Range", "bytes %llu-%llu/%llu",
                              (unsigned long long)off, (unsigned long long)(off + len - 1),
                              (unsigned long long)size);
    if (len == 0) {
        p2p_httpd_respond(req, 200, "application/octet-stream", NULL, 0);
        return;
    }
    if (!take_slot(n, req, 0, 0, 0))
        return;
    send_range(n, req, r > 0 ? 206 : 200, f->data_path, off, len, NULL, 0, 0);
}

void p2p_node_serve_seed(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    const char *ih = p2p_httpd_param(req, "infoHash");
    struct p2p_node_file *f = ih ? p2p_node_find(n, ih) : NULL;
    if (!f || !f->in_store) {
        p2p_httpd_respond_error(req, 404, "E001", "unknown infoHash");
        return;
    }
    if (f->seed_json) { /* serialized once, on the pool */
        p2p_httpd_respond(req, 200, "application/json", f->seed_json, f->seed_json_len);
        return;
    }
    if (held(f))
        p2p_node_seed_cache(f);
    p2p_httpd_add_header(req, "Retry-After", "1");
    p2p_httpd_respond_error(req, 503, "E001", "seed not ready yet");
}

void p2p_node_serve_seeds(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    json_t *arr = json_array();
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        if (!held(f))
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "infoHash", json_string(f->seed.info_hash));
        json_object_set_new(o, "fileName", json_string(f->seed.file_name));
        json_object_set_new(o, "length", json_integer((json_int_t)f->seed.length));
        json_object_set_new(o, "pieceLength", json_integer((json_int_t)f->seed.piece_length));
        json_object_set_new(o, "pieceCount", json_integer(f->seed.npieces));
        json_object_set_new(o, "hashAlgo", json_string(p2p_hash_name(f->seed.algo)));
        json_object_set_new(o, "state", json_string(p2p_node_state_name(f->state)));
        json_object_set_new(o, "seedUrl",
                            json_sprintf("/v2/seed/%s", f->seed.info_hash));
        json_array_append_new(arr, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "seeds", arr);
    p2p_httpd_respond_json(req, 200, o);
}
