/* Small open-addressing hash map (linear probing, backward-shift delete) with keyed SipHash,
 * used by the tracker for nodes, files and v1 piece ids. Keys live inside the stored values. */
#ifndef P2P_TRACKER_HMAP_H
#define P2P_TRACKER_HMAP_H

#include <stddef.h>
#include <stdint.h>

/** Returns the key bytes of a stored value (borrowed from the value) and their length. */
typedef const void *(*p2p_hmap_key_cb)(const void *val, size_t *len);

struct p2p_hmap_slot {
    uint64_t hash;
    void *val; /* NULL = empty */
};

struct p2p_hmap {
    struct p2p_hmap_slot *slots;
    size_t cap;   /* power of two, or 0 before the first insert */
    size_t count;
    p2p_hmap_key_cb key;
    uint64_t k0, k1; /* SipHash key, random per map (hash-flooding defence) */
};

/** Initialises an empty map whose values expose their key through key. Allocates nothing. */
void p2p_hmap_init(struct p2p_hmap *m, p2p_hmap_key_cb key);
/** Frees the slot array (not the values). Safe on a zeroed or already cleaned map. */
void p2p_hmap_cleanup(struct p2p_hmap *m);

/** Keyed SipHash-2-4 of key[0..len) with the map's key. */
uint64_t p2p_hmap_hash(const struct p2p_hmap *m, const void *key, size_t len);

/** Returns the value stored under key, or NULL. */
void *p2p_hmap_get(const struct p2p_hmap *m, const void *key, size_t len);
/**
 * Inserts val (borrowed; its key must not be present already and must stay unchanged while
 * stored). Grows the table as needed; never fails (OOM aborts).
 */
void p2p_hmap_put(struct p2p_hmap *m, void *val);
/** Removes and returns the value stored under key, or NULL if absent. */
void *p2p_hmap_del(struct p2p_hmap *m, const void *key, size_t len);

/**
 * Iteration: start with *pos = 0; returns the next value or NULL at the end. The map must not
 * be modified during an iteration.
 */
void *p2p_hmap_next(const struct p2p_hmap *m, size_t *pos);

#endif
