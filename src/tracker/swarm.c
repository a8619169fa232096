/* Tracker state: nodes with an LRU list for O(expired) expiry, files with per-holder bitfields
 * and per-piece holder counts, the v1 pieceID map, and peer selection. */
#include "tracker/swarm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- keys for the hash maps ---- */

static const void *node_key(const void *v, size_t *len)
{
    const struct p2p_swarm_node *n = v;
    *len = n->id_len;
    return n->id;
}

static const void *file_key(const void *v, size_t *len)
{
    *len = P2P_SWARM_HASH_LEN;
    return ((const struct p2p_swarm_file *)v)->hash;
}

static const void *zone_key(const void *v, size_t *len)
{
    const struct p2p_swarm_zone *z = v;
    *len = strlen(z->name);
    return z->name;
}

static const void *v1_key(const void *v, size_t *len)
{
    *len = P2P_SWARM_V1_ID_LEN;
    return ((const struct p2p_swarm_v1piece *)v)->id;
}

/* Grows a pointer array to hold one more element (by half: less slack per pair than doubling). */
static void *grow_ptrs(void *arr, uint32_t n, uint32_t *cap)
{
    if (n < *cap)
        return arr;
    *cap = *cap ? *cap + *cap / 2 : 4;
    return p2p_xrealloc(arr, (size_t)*cap * sizeof(void *));
}

/* Shrinks a pointer array when it is mostly empty, so churn does not pin memory. */
static void *shrink_ptrs(void *arr, uint32_t n, uint32_t *cap)
{
    if (*cap > 16 && n < *cap / 4) {
        *cap /= 2;
        return p2p_xrealloc(arr, (size_t)*cap * sizeof(void *));
    }
    return arr;
}

void p2p_swarm_init(struct p2p_swarm *sw, const struct p2p_swarm_limits *lim)
{
    memset(sw, 0, sizeof *sw);
    sw->lim = *lim;
    p2p_hmap_init(&sw->nodes, node_key);
    p2p_hmap_init(&sw->files, file_key);
    p2p_hmap_init(&sw->v1, v1_key);
    p2p_hmap_init(&sw->zones, zone_key);
}

/* ---- LRU list of nodes, oldest first ---- */

static void lru_unlink(struct p2p_swarm *sw, struct p2p_swarm_node *n)
{
    if (n->lru_prev)
        n->lru_prev->lru_next = n->lru_next;
    else
        sw->lru_head = n->lru_next;
    if (n->lru_next)
        n->lru_next->lru_prev = n->lru_prev;
    else
        sw->lru_tail = n->lru_prev;
    n->lru_prev = n->lru_next = NULL;
}

static void lru_append(struct p2p_swarm *sw, struct p2p_swarm_node *n)
{
    n->lru_prev = sw->lru_tail;
    n->lru_next = NULL;
    if (sw->lru_tail)
        sw->lru_tail->lru_next = n;
    else
        sw->lru_head = n;
    sw->lru_tail = n;
}

static void touch(struct p2p_swarm *sw, struct p2p_swarm_node *n, uint64_t now_ms)
{
    /* Times come from a monotonic clock; never move a node backwards in the list. */
    if (now_ms > n->last_ms)
        n->last_ms = now_ms;
    if (sw->lru_tail != n) {
        lru_unlink(sw, n);
        lru_append(sw, n);
    }
}

static bool is_live(const struct p2p_swarm *sw, const struct p2p_swarm_node *n, uint64_t now_ms)
{
    return now_ms <= n->last_ms || now_ms - n->last_ms <= sw->lim.expire_ms;
}

/* ---- nodes ---- */

/* (Re)builds the node's string block. */
static void set_strings(struct p2p_swarm_node *n, const char *id, const char *addr,
                        const char *zone, const char *src)
{
    size_t il = strlen(id), al = strlen(addr), zl = strlen(zone), sl = strlen(src);
    char *b = p2p_xmalloc(il + al + zl + sl + 4);
    memcpy(b, id, il + 1);
    memcpy(b + il + 1, addr, al + 1);
    memcpy(b + il + al + 2, zone, zl + 1);
    memcpy(b + il + al + zl + 3, src, sl + 1);
    free(n->strs);
    n->strs = b;
    n->id = b;
    n->addr = b + il + 1;
    n->zone = b + il + al + 2;
    n->src = b + il + al + zl + 3;
    n->id_len = (uint16_t)il;
    n->addr_len = (uint16_t)al;
    n->zone_len = (uint16_t)zl;
}

/* Interned zones: a node holds a reference to its zone, so peer ordering compares pointers
 * instead of strings in other nodes' memory. The empty zone is NULL. */
static struct p2p_swarm_zone *zone_find(const struct p2p_swarm *sw, const char *name)
{
    return name && name[0] ? p2p_hmap_get(&sw->zones, name, strlen(name)) : NULL;
}

static struct p2p_swarm_zone *zone_acquire(struct p2p_swarm *sw, const char *name)
{
    if (!name[0])
        return NULL;
    struct p2p_swarm_zone *z = zone_find(sw, name);
    if (!z) {
        z = p2p_xcalloc(1, sizeof *z);
        z->name = p2p_xstrdup(name);
        p2p_hmap_put(&sw->zones, z);
    }
    z->refs++;
    return z;
}

static void zone_release(struct p2p_swarm *sw, struct p2p_swarm_zone *z)
{
    if (z && --z->refs == 0) {
        p2p_hmap_del(&sw->zones, z->name, strlen(z->name));
        free(z->name);
        free(z);
    }
}

struct p2p_swarm_node *p2p_swarm_node_get(const struct p2p_swarm *sw, const char *id)
{
    return p2p_hmap_get(&sw->nodes, id, strlen(id));
}

static int node_get_or_add(struct p2p_swarm *sw, const char *id, uint64_t now_ms,
                           struct p2p_swarm_node **out)
{
    struct p2p_swarm_node *n = p2p_swarm_node_get(sw, id);
    if (!n) {
        if (sw->lim.max_nodes && sw->nodes.count >= sw->lim.max_nodes)
            return -EUSERS;
        n = p2p_xcalloc(1, sizeof *n);
        set_strings(n, id, "", "", "");
        n->last_ms = now_ms;
        p2p_hmap_put(&sw->nodes, n);
        lru_append(sw, n);
    }
    *out = n;
    return 0;
}

int p2p_swarm_heartbeat(struct p2p_swarm *sw, const char *id, const char *addr, const char *zone,
                        const char *src, uint64_t now_ms, bool *known)
{
    if (!zone)
        zone = "";
    if (!src)
        src = "";
    struct p2p_swarm_node *n = p2p_swarm_node_get(sw, id);
    bool changed = !n || strcmp(n->addr, addr) != 0 || strcmp(n->zone, zone) != 0;
    /* A live session with an address belongs to the IP that set it: anyone may otherwise
     * redirect every peer of a node by heartbeating its id with another address. */
    bool bound = n && n->heartbeated && n->addr_len && is_live(sw, n, now_ms);
    if (changed && bound && n->src[0] && src[0] && strcmp(n->src, src) != 0)
        return -EADDRINUSE;
    *known = n && n->heartbeated;
    if (!n) {
        int rc = node_get_or_add(sw, id, now_ms, &n);
        if (rc < 0)
            return rc;
    }
    n->heartbeated = true;
    /* A new session (first heartbeat, after expiry or after reports only) binds to src; a
     * bound one keeps the IP it was bound to. */
    if (changed || (!bound && strcmp(n->src, src) != 0)) {
        /* The strings are copied from the old block before that block is freed. */
        char *id_copy = p2p_xstrndup(n->id, n->id_len);
        char *src_copy = p2p_xstrdup(bound ? n->src : src);
        set_strings(n, id_copy, addr, zone, src_copy);
        free(id_copy);
        free(src_copy);
        struct p2p_swarm_zone *old = n->zone_ref;
        n->zone_ref = zone_acquire(sw, zone);
        zone_release(sw, old);
    }
    touch(sw, n, now_ms);
    return 0;
}

/* ---- files and holders ---- */

struct p2p_swarm_file *p2p_swarm_file_get(const struct p2p_swarm *sw, const uint8_t hash[32])
{
    return p2p_hmap_get(&sw->files, hash, P2P_SWARM_HASH_LEN);
}

struct p2p_swarm_holder *p2p_swarm_holder_get(const struct p2p_swarm_node *node,
                                              const struct p2p_swarm_file *file)
{
    /* A node holds few files; scanning its list beats a per-pair index in memory. */
    for (uint32_t i = 0; i < node->nholders; i++)
        if (node->holders[i]->file == file)
            return node->holders[i];
    return NULL;
}

static void file_free(struct p2p_swarm *sw, struct p2p_swarm_file *f)
{
    p2p_hmap_del(&sw->files, f->hash, P2P_SWARM_HASH_LEN);
    sw->total_pieces -= f->npieces;
    free(f->name);
    free(f->piece_holders);
    free(f->hist);
    free(f->holders);
    free(f);
}

static uint64_t holder_cost(uint32_t npieces)
{
    return P2P_SWARM_HOLDER_COST + P2P_BITFIELD_BYTES(npieces);
}

/* Makes room for hist[0..need). Entries beyond the largest count are zero. */
static void hist_reserve(struct p2p_swarm_file *f, uint32_t need)
{
    if (need <= f->hist_cap)
        return;
    uint32_t cap = f->hist_cap ? f->hist_cap : 4;
    while (cap < need)
        cap *= 2;
    f->hist = p2p_xrealloc(f->hist, (size_t)cap * sizeof *f->hist);
    memset(f->hist + f->hist_cap, 0, (size_t)(cap - f->hist_cap) * sizeof *f->hist);
    f->hist_cap = cap;
}

/* Counts never exceed nholders: a histogram much longer than that is halved. */
static void hist_trim(struct p2p_swarm_file *f)
{
    if (f->hist_cap > 16 && f->nholders + 1 < f->hist_cap / 4) {
        f->hist_cap /= 2;
        f->hist = p2p_xrealloc(f->hist, (size_t)f->hist_cap * sizeof *f->hist);
    }
}

/* One more holder of piece p, keeping the histogram and the rarest count. */
static inline void piece_inc(struct p2p_swarm_file *f, size_t p)
{
    uint32_t c = f->piece_holders[p]++;
    f->hist[c]--;
    f->hist[c + 1]++;
    if (c == f->rarest && f->hist[c] == 0)
        f->rarest = c + 1;
}

static inline void piece_dec(struct p2p_swarm_file *f, size_t p)
{
    uint32_t c = f->piece_holders[p]--;
    f->hist[c]--;
    f->hist[c - 1]++;
    if (c - 1 < f->rarest)
        f->rarest = c - 1;
}

/* Adds (sign 1) or removes (-1) a holder with count pieces to the file's seeder and active
 * holder figures. */
static void account(struct p2p_swarm_file *f, uint32_t count, int sign)
{
    if (count == f->npieces)
        f->nseeders += (uint32_t)sign;
    if (count > 0 || f->npieces == 0)
        f->nactive += (uint32_t)sign;
}

/* Adds delta (+1 or -1) to the holder count of every piece whose bit is set in byte b (byte
 * index i). */
static void count_byte(struct p2p_swarm_file *f, size_t i, uint8_t b, int delta)
{
    while (b) {
        int bit = __builtin_clz((unsigned)b) - 24; /* 0 = high bit = piece 8i */
        if (delta > 0)
            piece_inc(f, i * 8 + (size_t)bit);
        else
            piece_dec(f, i * 8 + (size_t)bit);
        b &= (uint8_t)~(0x80u >> bit);
    }
}

static void count_bits(struct p2p_swarm_file *f, const uint8_t *bits, size_t len, int delta)
{
    for (size_t i = 0; i < len; i++)
        if (bits[i])
            count_byte(f, i, bits[i], delta);
}

/* Removes h from its file (and, if from_node, from its node's list); the file stays. */
static void holder_unlink(struct p2p_swarm *sw, struct p2p_swarm_holder *h, bool from_node)
{
    struct p2p_swarm_file *f = h->file;
    struct p2p_swarm_node *n = h->node;
    count_bits(f, h->bits, P2P_BITFIELD_BYTES(f->npieces), -1);
    account(f, h->count, -1);
    struct p2p_swarm_holder *last = f->holders[--f->nholders];
    f->holders[h->file_pos] = last;
    last->file_pos = h->file_pos;
    f->holders = shrink_ptrs(f->holders, f->nholders, &f->capholders);
    if (from_node) {
        /* A node holds few files: find its slot by scanning rather than storing it. */
        for (uint32_t i = 0; i < n->nholders; i++) {
            if (n->holders[i] == h) {
                n->holders[i] = n->holders[--n->nholders];
                break;
            }
        }
        n->holders = shrink_ptrs(n->holders, n->nholders, &n->capholders);
    }
    sw->nholders--;
    sw->holder_bytes -= holder_cost(f->npieces);
    free(h);
    hist_trim(f);
}

/* A file lives while one of its holders holds a piece: when the last such holder goes (or
 * reports an empty bitfield), the file goes with its remaining empty holders, so the piece
 * count of an infoHash can be established anew. */
static void file_check(struct p2p_swarm *sw, struct p2p_swarm_file *f)
{
    if (f->nactive > 0)
        return;
    while (f->nholders)
        holder_unlink(sw, f->holders[f->nholders - 1], true);
    file_free(sw, f);
}

static void holder_remove(struct p2p_swarm *sw, struct p2p_swarm_holder *h, bool from_node)
{
    struct p2p_swarm_file *f = h->file;
    holder_unlink(sw, h, from_node);
    file_check(sw, f);
}

/* Finds or creates the node, the file and the holder for a report. Every limit is checked
 * before anything is created. A report holding nothing (empty) does not create a file: then
 * *out is NULL and 0 is returned. */
static int holder_get_or_add(struct p2p_swarm *sw, const char *id, const uint8_t hash[32],
                             uint32_t npieces, const char *name, bool empty, uint64_t now_ms,
                             struct p2p_swarm_holder **out)
{
    *out = NULL;
    if (npieces > sw->lim.max_pieces)
        return -EFBIG;
    struct p2p_swarm_file *f = p2p_swarm_file_get(sw, hash);
    if (f && f->npieces != npieces)
        return -EEXIST;
    struct p2p_swarm_node *n = p2p_swarm_node_get(sw, id);
    if (!f && empty && npieces > 0) {
        if (n)
            touch(sw, n, now_ms);
        return 0;
    }
    if (!f && sw->lim.max_files && sw->files.count >= sw->lim.max_files)
        return -ENFILE;
    if (!f && sw->lim.max_total_pieces && sw->total_pieces + npieces > sw->lim.max_total_pieces)
        return -ENOBUFS;
    struct p2p_swarm_holder *h = n && f ? p2p_swarm_holder_get(n, f) : NULL;
    if (!h && sw->lim.max_holder_bytes &&
        sw->holder_bytes + holder_cost(npieces) > sw->lim.max_holder_bytes)
        return -EDQUOT;
    int rc = node_get_or_add(sw, id, now_ms, &n);
    if (rc < 0)
        return rc;
    touch(sw, n, now_ms);
    if (!f) {
        f = p2p_xcalloc(1, sizeof *f);
        memcpy(f->hash, hash, P2P_SWARM_HASH_LEN);
        p2p_hex_encode(hash, P2P_SWARM_HASH_LEN, f->hex);
        f->name = p2p_xstrdup(name ? name : "");
        f->npieces = npieces;
        f->piece_holders = p2p_xcalloc(npieces ? npieces : 1, sizeof *f->piece_holders);
        hist_reserve(f, 2);
        f->hist[0] = npieces;
        p2p_hmap_put(&sw->files, f);
        sw->total_pieces += npieces;
    } else if (name && name[0] && !f->name[0]) {
        free(f->name);
        f->name = p2p_xstrdup(name);
    }
    if (!h) {
        size_t nbytes = P2P_BITFIELD_BYTES(npieces);
        h = p2p_xcalloc(1, offsetof(struct p2p_swarm_holder, bits) + nbytes);
        h->node = n;
        h->file = f;
        f->holders = grow_ptrs(f->holders, f->nholders, &f->capholders);
        h->file_pos = f->nholders;
        f->holders[f->nholders++] = h;
        hist_reserve(f, f->nholders + 1);
        account(f, 0, 1);
        n->holders = grow_ptrs(n->holders, n->nholders, &n->capholders);
        n->holders[n->nholders++] = h;
        sw->nholders++;
        sw->holder_bytes += holder_cost(npieces);
    }
    *out = h;
    return 0;
}

static bool bits_valid(uint32_t npieces, const uint8_t *bits, size_t len)
{
    if (len != P2P_BITFIELD_BYTES(npieces))
        return false;
    if (npieces % 8 && (bits[len - 1] & (0xffu >> (npieces % 8))))
        return false;
    return true;
}

int p2p_swarm_report_full(struct p2p_swarm *sw, const char *id, const uint8_t hash[32],
                          uint32_t npieces, const char *name, const uint8_t *bits, size_t len,
                          uint64_t now_ms)
{
    if (!bits_valid(npieces, bits, len))
        return -EINVAL;
    bool empty = true;
    for (size_t i = 0; i < len && empty; i++)
        empty = bits[i] == 0;
    struct p2p_swarm_holder *h = NULL;
    int rc = holder_get_or_add(sw, id, hash, npieces, name, empty, now_ms, &h);
    if (rc < 0 || !h)
        return rc;
    struct p2p_swarm_file *f = h->file;
    uint32_t count = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t old = h->bits[i], nb = bits[i];
        if (old != nb) {
            count_byte(f, i, (uint8_t)(nb & ~old), 1);
            count_byte(f, i, (uint8_t)(old & ~nb), -1);
            h->bits[i] = nb;
        }
        count += (uint32_t)__builtin_popcount(nb);
    }
    account(f, h->count, -1);
    account(f, count, 1);
    h->count = count;
    file_check(sw, f);
    return 0;
}

int p2p_swarm_report_have(struct p2p_swarm *sw, const char *id, const uint8_t hash[32],
                          uint32_t npieces, const char *name, const uint32_t *idx, size_t n,
                          uint64_t now_ms)
{
    for (size_t i = 0; i < n; i++)
        if (idx[i] >= npieces)
            return -EINVAL;
    struct p2p_swarm_holder *h = NULL;
    int rc = holder_get_or_add(sw, id, hash, npieces, name, n == 0, now_ms, &h);
    if (rc < 0 || !h)
        return rc;
    struct p2p_swarm_file *f = h->file;
    uint32_t old = h->count;
    for (size_t i = 0; i < n; i++) {
        uint8_t mask = (uint8_t)(0x80u >> (idx[i] & 7));
        uint8_t *b = &h->bits[idx[i] >> 3];
        if (!(*b & mask)) {
            *b |= mask;
            h->count++;
            piece_inc(f, idx[i]);
        }
    }
    account(f, old, -1);
    account(f, h->count, 1);
    return 0;
}

int p2p_swarm_report_stopped(struct p2p_swarm *sw, const char *id, const uint8_t hash[32],
                             uint64_t now_ms)
{
    struct p2p_swarm_node *n = p2p_swarm_node_get(sw, id);
    if (!n)
        return 0;
    touch(sw, n, now_ms);
    struct p2p_swarm_file *f = p2p_swarm_file_get(sw, hash);
    struct p2p_swarm_holder *h = f ? p2p_swarm_holder_get(n, f) : NULL;
    if (h)
        holder_remove(sw, h, true);
    return 0;
}

/* ---- v1 pieceID map ---- */

static void v1_unlink(struct p2p_swarm *sw, struct p2p_swarm_v1piece *p,
                      const struct p2p_swarm_node *n)
{
    for (uint32_t i = 0; i < p->nholders; i++) {
        if (p->holders[i] == n) {
            p->holders[i] = p->holders[--p->nholders];
            break;
        }
    }
    sw->holder_bytes -= P2P_SWARM_V1_PAIR_COST;
    if (p->nholders == 0) {
        p2p_hmap_del(&sw->v1, p->id, P2P_SWARM_V1_ID_LEN);
        free(p->holders);
        free(p);
    } else {
        p->holders = shrink_ptrs(p->holders, p->nholders, &p->capholders);
    }
}

static bool v1_has(const struct p2p_swarm_v1piece *p, const struct p2p_swarm_node *n)
{
    if (n->nv1 < p->nholders) {
        for (uint32_t i = 0; i < n->nv1; i++)
            if (n->v1[i] == p)
                return true;
    } else {
        for (uint32_t i = 0; i < p->nholders; i++)
            if (p->holders[i] == n)
                return true;
    }
    return false;
}

int p2p_swarm_v1_report(struct p2p_swarm *sw, const char *id, const uint8_t pid[20],
                        uint64_t now_ms)
{
    struct p2p_swarm_v1piece *p = p2p_hmap_get(&sw->v1, pid, P2P_SWARM_V1_ID_LEN);
    if (!p && sw->lim.v1_max_pieces && sw->v1.count >= sw->lim.v1_max_pieces)
        return -ENOSPC;
    struct p2p_swarm_node *n = NULL;
    int rc = node_get_or_add(sw, id, now_ms, &n);
    if (rc < 0)
        return rc;
    touch(sw, n, now_ms);
    if (p && v1_has(p, n))
        return 0;
    if (sw->lim.v1_max_pieces && n->nv1 >= sw->lim.v1_max_pieces)
        return -ENOSPC;
    if (sw->lim.max_holder_bytes &&
        sw->holder_bytes + P2P_SWARM_V1_PAIR_COST > sw->lim.max_holder_bytes)
        return -EDQUOT;
    if (!p) {
        p = p2p_xcalloc(1, sizeof *p);
        memcpy(p->id, pid, P2P_SWARM_V1_ID_LEN);
        p2p_hmap_put(&sw->v1, p);
    }
    p->holders = grow_ptrs(p->holders, p->nholders, &p->capholders);
    p->holders[p->nholders++] = n;
    n->v1 = grow_ptrs(n->v1, n->nv1, &n->capv1);
    n->v1[n->nv1++] = p;
    sw->holder_bytes += P2P_SWARM_V1_PAIR_COST;
    return 0;
}

/* ---- random visiting order ---- */

static size_t gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A random start and a random step coprime with n: visits 0..n-1 each once, in an order that
 * differs per call, without allocating a permutation. */
static void random_walk(size_t n, size_t *start, size_t *step)
{
    *start = n > 1 ? p2p_rand_below((uint32_t)n) : 0;
    *step = 1;
    if (n < 3)
        return;
    for (int tries = 0; tries < 8; tries++) {
        size_t s = 1 + p2p_rand_below((uint32_t)(n - 1));
        if (gcd(s, n) == 1) {
            *step = s;
            return;
        }
    }
}

size_t p2p_swarm_v1_nodes(const struct p2p_swarm *sw, const uint8_t pid[20], uint64_t now_ms,
                          struct p2p_swarm_node **out)
{
    const struct p2p_swarm_v1piece *p = p2p_hmap_get(&sw->v1, pid, P2P_SWARM_V1_ID_LEN);
    if (!p)
        return 0;
    size_t start, step, got = 0;
    random_walk(p->nholders, &start, &step);
    for (size_t k = 0, i = start; k < p->nholders && got < P2P_SWARM_V1_LIST; k++) {
        struct p2p_swarm_node *n = p->holders[i];
        if (n->addr_len && is_live(sw, n, now_ms))
            out[got++] = n;
        i = (i + step) % p->nholders;
    }
    return got;
}

/* ---- peers ---- */

/* True if h holds a piece that asker (NULL = holds nothing) lacks. */
static bool has_missing(const struct p2p_swarm_holder *h, const struct p2p_swarm_holder *asker)
{
    if (h->count == 0)
        return false;
    if (!asker || h->count > asker->count)
        return true;
    size_t len = P2P_BITFIELD_BYTES(h->file->npieces);
    for (size_t i = 0; i < len; i++)
        if (h->bits[i] & ~asker->bits[i])
            return true;
    return false;
}

size_t p2p_swarm_peers(struct p2p_swarm *sw, const struct p2p_swarm_file *file,
                       const char *asker_id, const char *zone, size_t max, uint64_t now_ms,
                       struct p2p_swarm_holder **out)
{
    if (max == 0 || file->nholders == 0)
        return 0;
    const struct p2p_swarm_node *asker = asker_id ? p2p_swarm_node_get(sw, asker_id) : NULL;
    const struct p2p_swarm_holder *mine = asker ? p2p_swarm_holder_get(asker, file) : NULL;
    if ((!zone || !zone[0]) && asker)
        zone = asker->zone;
    bool prefer_zone = zone && zone[0];
    const struct p2p_swarm_zone *want = zone_find(sw, zone); /* NULL: nobody is in it */

    /* Tier 0: useful + same zone, 1: useful, 2: same zone, 3: the rest. Tier 0 goes straight
     * to out; the walk stops as soon as it alone fills max. */
    struct p2p_swarm_holder **tier[4];
    size_t ntier[4] = {0, 0, 0, 0};
    if (sw->spill_cap < 3 * max) {
        /* Reused across queries; the swarm is only ever used from one thread. */
        free(sw->spill);
        sw->spill_cap = 3 * max;
        sw->spill = p2p_xmalloc(sw->spill_cap * sizeof *sw->spill);
    }
    struct p2p_swarm_holder **spill = sw->spill;
    tier[0] = out;
    for (int t = 1; t < 4; t++)
        tier[t] = spill + (size_t)(t - 1) * max;

    size_t start, step, n = file->nholders;
    random_walk(n, &start, &step);
    for (size_t k = 0, i = start; k < n && ntier[0] < max; k++, i = (i + step) % n) {
        struct p2p_swarm_holder *h = file->holders[i];
        const struct p2p_swarm_node *hn = h->node;
        if (hn == asker || h->count == 0 || hn->addr_len == 0 || !is_live(sw, hn, now_ms))
            continue;
        int t = (has_missing(h, mine) ? 0 : 2) +
                (prefer_zone && (!want || hn->zone_ref != want) ? 1 : 0);
        if (ntier[t] < max)
            tier[t][ntier[t]++] = h;
    }
    size_t got = ntier[0];
    for (int t = 1; t < 4 && got < max; t++)
        for (size_t j = 0; j < ntier[t] && got < max; j++)
            out[got++] = tier[t][j];
    return got;
}

/* ---- removal and expiry ---- */

static void node_remove(struct p2p_swarm *sw, struct p2p_swarm_node *n)
{
    for (uint32_t i = 0; i < n->nholders; i++)
        holder_remove(sw, n->holders[i], false);
    for (uint32_t i = 0; i < n->nv1; i++)
        v1_unlink(sw, n->v1[i], n);
    lru_unlink(sw, n);
    zone_release(sw, n->zone_ref);
    p2p_hmap_del(&sw->nodes, n->id, n->id_len);
    free(n->holders);
    free(n->v1);
    free(n->strs);
    free(n);
}

size_t p2p_swarm_expire(struct p2p_swarm *sw, uint64_t now_ms)
{
    size_t gone = 0;
    while (sw->lru_head && !is_live(sw, sw->lru_head, now_ms)) {
        node_remove(sw, sw->lru_head);
        gone++;
    }
    sw->expired_total += gone;
    return gone;
}

void p2p_swarm_cleanup(struct p2p_swarm *sw)
{
    while (sw->lru_head)
        node_remove(sw, sw->lru_head);
    p2p_hmap_cleanup(&sw->nodes);
    p2p_hmap_cleanup(&sw->files);
    p2p_hmap_cleanup(&sw->v1);
    p2p_hmap_cleanup(&sw->zones);
    free(sw->spill);
    sw->spill = NULL;
    sw->spill_cap = 0;
}
