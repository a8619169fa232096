/* Open-addressing hash map for the tracker: linear probing at load <= 3/4, backward-shift
 * deletion (no tombstones), SipHash-2-4 with a random per-map key. */
#include "tracker/hmap.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t *v0, uint64_t *v1, uint64_t *v2, uint64_t *v3)
{
    *v0 += *v1;
    *v1 = ROTL(*v1, 13);
    *v1 ^= *v0;
    *v0 = ROTL(*v0, 32);
    *v2 += *v3;
    *v3 = ROTL(*v3, 16);
    *v3 ^= *v2;
    *v0 += *v3;
    *v3 = ROTL(*v3, 21);
    *v3 ^= *v0;
    *v2 += *v1;
    *v1 = ROTL(*v1, 17);
    *v1 ^= *v2;
    *v2 = ROTL(*v2, 32);
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint64_t p2p_hmap_hash(const struct p2p_hmap *m, const void *key, size_t len)
{
    const uint8_t *p = key;
    uint64_t v0 = 0x736f6d6570736575ULL ^ m->k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ m->k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ m->k0;
    uint64_t v3 = 0x7465646279746573ULL ^ m->k1;
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t w = load_le64(p + i);
        v3 ^= w;
        sip_round(&v0, &v1, &v2, &v3);
        sip_round(&v0, &v1, &v2, &v3);
        v0 ^= w;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        last |= (uint64_t)p[full + i] << (8 * i);
    v3 ^= last;
    sip_round(&v0, &v1, &v2, &v3);
    sip_round(&v0, &v1, &v2, &v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(&v0, &v1, &v2, &v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

void p2p_hmap_init(struct p2p_hmap *m, p2p_hmap_key_cb key)
{
    memset(m, 0, sizeof *m);
    m->key = key;
    uint64_t k[2];
    p2p_random_bytes(k, sizeof k);
    m->k0 = k[0];
    m->k1 = k[1];
}

void p2p_hmap_cleanup(struct p2p_hmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

static int same_key(const struct p2p_hmap *m, const void *val, const void *key, size_t len)
{
    size_t klen;
    const void *k = m->key(val, &klen);
    return klen == len && memcmp(k, key, len) == 0;
}

void *p2p_hmap_get(const struct p2p_hmap *m, const void *key, size_t len)
{
    if (m->count == 0)
        return NULL;
    uint64_t h = p2p_hmap_hash(m, key, len);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct p2p_hmap_slot *s = &m->slots[i];
        if (!s->val)
            return NULL;
        if (s->hash == h && same_key(m, s->val, key, len))
            return s->val;
    }
}

static void insert_slot(struct p2p_hmap_slot *slots, size_t cap, uint64_t h, void *val)
{
    size_t mask = cap - 1;
    size_t i = h & mask;
    while (slots[i].val)
        i = (i + 1) & mask;
    slots[i].hash = h;
    slots[i].val = val;
}

static void grow(struct p2p_hmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct p2p_hmap_slot *ns = p2p_xcalloc(ncap, sizeof *ns);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].val)
            insert_slot(ns, ncap, m->slots[i].hash, m->slots[i].val);
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
}

void p2p_hmap_put(struct p2p_hmap *m, void *val)
{
    if ((m->count + 1) * 4 > m->cap * 3)
        grow(m);
    size_t len;
    const void *key = m->key(val, &len);
    insert_slot(m->slots, m->cap, p2p_hmap_hash(m, key, len), val);
    m->count++;
}

void *p2p_hmap_del(struct p2p_hmap *m, const void *key, size_t len)
{
    if (m->count == 0)
        return NULL;
    uint64_t h = p2p_hmap_hash(m, key, len);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    for (;; i = (i + 1) & mask) {
        if (!m->slots[i].val)
            return NULL;
        if (m->slots[i].hash == h && same_key(m, m->slots[i].val, key, len))
            break;
    }
    void *val = m->slots[i].val;
    /* Backward-shift: move later entries of the probe run into the hole when their home slot
     * does not lie cyclically in (hole, j]. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].val; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        int in_between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!in_between) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].val = NULL;
    m->slots[hole].hash = 0;
    m->count--;
    return val;
}

void *p2p_hmap_next(const struct p2p_hmap *m, size_t *pos)
{
    while (*pos < m->cap) {
        void *v = m->slots[(*pos)++].val;
        if (v)
            return v;
    }
    return NULL;
}
