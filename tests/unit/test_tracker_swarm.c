/* Unit tests of the tracker state: piece map and counts, limits, expiry, peer ordering, v1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/bitfield.h"
#include "tracker/swarm.h"

static const struct p2p_swarm_limits LIM = {
    .expire_ms = 10000, .max_nodes = 1000, .max_files = 100, .max_pieces = 4096,
    .v1_max_pieces = 100,
};

static void hash_of(int i, uint8_t h[32])
{
    memset(h, 0, 32);
    h[0] = (uint8_t)i;
    h[31] = 0xab;
}

static void hb(struct p2p_swarm *sw, const char *id, const char *zone, uint64_t now)
{
    bool known;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", 1000 + (int)strlen(id));
    assert_int_equal(p2p_swarm_heartbeat(sw, id, addr, zone, NULL, now, &known), 0);
}

/* Full report from a list of held piece indexes (-1 terminated). */
static int report(struct p2p_swarm *sw, const char *id, int file, uint32_t npieces,
                  const int *held, uint64_t now)
{
    uint8_t h[32];
    hash_of(file, h);
    struct p2p_bitfield bf;
    p2p_bitfield_init(&bf, npieces);
    for (; held && *held >= 0; held++)
        p2p_bitfield_set(&bf, (uint32_t)*held);
    int rc = p2p_swarm_report_full(sw, id, h, npieces, "f.bin", bf.bits,
                                   P2P_BITFIELD_BYTES(npieces), now);
    p2p_bitfield_cleanup(&bf);
    return rc;
}

static struct p2p_swarm_file *file_of(struct p2p_swarm *sw, int i)
{
    uint8_t h[32];
    hash_of(i, h);
    return p2p_swarm_file_get(sw, h);
}

static void check_counts(struct p2p_swarm_file *f)
{
    /* piece_holders must always equal a recount over holders. */
    for (uint32_t p = 0; p < f->npieces; p++) {
        uint32_t c = 0;
        for (uint32_t i = 0; i < f->nholders; i++)
            c += (f->holders[i]->bits[p >> 3] >> (7 - (p & 7))) & 1;
        assert_int_equal(f->piece_holders[p], c);
    }
    uint32_t seeders = 0, active = 0;
    for (uint32_t i = 0; i < f->nholders; i++) {
        assert_int_equal(f->holders[i]->file_pos, i);
        size_t nbytes = P2P_BITFIELD_BYTES(f->npieces);
        assert_int_equal(f->holders[i]->count, p2p_bitfield_popcount(f->holders[i]->bits, nbytes));
        seeders += f->holders[i]->count == f->npieces;
        active += f->holders[i]->count > 0 || f->npieces == 0;
    }
    /* The incremental figures equal a recount: seeders, active holders, histogram, rarest. */
    assert_int_equal(f->nseeders, seeders);
    assert_int_equal(f->nactive, active);
    assert_true(f->nactive > 0);
    assert_true(f->hist_cap >= f->nholders + 1);
    uint32_t rarest = f->npieces ? UINT32_MAX : 0;
    for (uint32_t c = 0; c < f->hist_cap; c++) {
        uint32_t k = 0;
        for (uint32_t p = 0; p < f->npieces; p++)
            k += f->piece_holders[p] == c;
        assert_int_equal(f->hist[c], k);
        if (k && c < rarest)
            rarest = c;
    }
    if (f->npieces)
        assert_int_equal(f->rarest, rarest);
}

static void test_heartbeat_known(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    bool known = true;
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "1.2.3.4:5", NULL, NULL, 100, &known), 0);
    assert_false(known);
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "1.2.3.4:6", "z1", NULL, 200, &known), 0);
    assert_true(known);
    struct p2p_swarm_node *n = p2p_swarm_node_get(&sw, "a");
    assert_string_equal(n->addr, "1.2.3.4:6");
    assert_string_equal(n->zone, "z1");
    /* A node first seen through a report is not "known": it must re-report in full. */
    assert_int_equal(report(&sw, "b", 1, 10, (int[]){1, -1}, 300), 0);
    assert_string_equal(p2p_swarm_node_get(&sw, "b")->addr, "");
    assert_int_equal(p2p_swarm_heartbeat(&sw, "b", "1.2.3.4:7", NULL, NULL, 400, &known), 0);
    assert_false(known);
    assert_int_equal(p2p_swarm_heartbeat(&sw, "b", "1.2.3.4:7", NULL, NULL, 500, &known), 0);
    assert_true(known);
    /* After expiry the node is unknown again. */
    assert_int_equal(p2p_swarm_expire(&sw, 500 + 10001), 2);
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "1.2.3.4:6", NULL, NULL, 20000, &known), 0);
    assert_false(known);
    p2p_swarm_cleanup(&sw);
}

static void test_piece_map(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    assert_true(offsetof(struct p2p_swarm_holder, bits) <= 24);
    hb(&sw, "a", NULL, 1);
    hb(&sw, "b", NULL, 1);
    assert_int_equal(report(&sw, "a", 1, 20, (int[]){0, 1, 2, 19, -1}, 2), 0);
    assert_int_equal(report(&sw, "b", 1, 20, (int[]){2, 3, -1}, 2), 0);
    struct p2p_swarm_file *f = file_of(&sw, 1);
    assert_non_null(f);
    assert_string_equal(f->name, "f.bin");
    assert_int_equal(f->nholders, 2);
    assert_int_equal(f->piece_holders[2], 2);
    assert_int_equal(f->piece_holders[19], 1);
    check_counts(f);
    /* A full report replaces the previous bitfield. */
    assert_int_equal(report(&sw, "a", 1, 20, (int[]){5, 9, 19, -1}, 3), 0);
    assert_int_equal(f->piece_holders[0], 0);
    assert_int_equal(f->piece_holders[2], 1);
    check_counts(f);
    /* Increments, duplicates counted once. */
    uint8_t h[32];
    hash_of(1, h);
    uint32_t have[] = {0, 0, 3, 10};
    assert_int_equal(p2p_swarm_report_have(&sw, "b", h, 20, NULL, have, 4, 4), 0);
    assert_int_equal(f->piece_holders[0], 1);
    assert_int_equal(f->piece_holders[3], 1);
    assert_int_equal(p2p_swarm_holder_get(p2p_swarm_node_get(&sw, "b"), f)->count, 4);
    check_counts(f);
    /* An out-of-range index applies nothing. */
    uint32_t bad[] = {11, 20};
    assert_int_equal(p2p_swarm_report_have(&sw, "b", h, 20, NULL, bad, 2, 5), -EINVAL);
    assert_int_equal(f->piece_holders[11], 0);
    /* Wrong bitfield length, spare bits, piece count mismatch, too many pieces. */
    uint8_t raw[4] = {0xff, 0xff, 0xf0, 0};
    assert_int_equal(p2p_swarm_report_full(&sw, "a", h, 20, NULL, raw, 4, 5), -EINVAL);
    raw[2] = 0xf8;
    assert_int_equal(p2p_swarm_report_full(&sw, "a", h, 20, NULL, raw, 3, 5), -EINVAL);
    raw[2] = 0xf0;
    assert_int_equal(p2p_swarm_report_full(&sw, "a", h, 20, NULL, raw, 3, 5), 0);
    assert_int_equal(p2p_swarm_holder_get(p2p_swarm_node_get(&sw, "a"), f)->count, 20);
    check_counts(f);
    assert_int_equal(report(&sw, "a", 1, 21, NULL, 5), -EEXIST);
    assert_int_equal(report(&sw, "a", 2, 5000, NULL, 5), -EFBIG);
    assert_null(file_of(&sw, 2));
    /* Zero-piece files are accepted. */
    assert_int_equal(p2p_swarm_report_full(&sw, "a", (uint8_t[32]){9}, 0, NULL, raw, 0, 5), 0);
    /* stopped removes the holder; the last holder leaving removes the file. */
    assert_int_equal(p2p_swarm_report_stopped(&sw, "a", h, 6), 0);
    assert_int_equal(f->nholders, 1);
    check_counts(f);
    assert_int_equal(p2p_swarm_report_stopped(&sw, "a", h, 6), 0);
    assert_int_equal(p2p_swarm_report_stopped(&sw, "nobody", h, 6), 0);
    assert_int_equal(p2p_swarm_report_stopped(&sw, "b", h, 6), 0);
    assert_null(file_of(&sw, 1));
    assert_int_equal(p2p_swarm_nfiles(&sw), 1);
    assert_int_equal(sw.nholders, 1);
    p2p_swarm_cleanup(&sw);
}

static void test_limits(void **state)
{
    (void)state;
    struct p2p_swarm_limits lim = LIM;
    lim.max_nodes = 3;
    lim.max_files = 2;
    lim.v1_max_pieces = 2;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &lim);
    bool known;
    hb(&sw, "a", NULL, 1);
    hb(&sw, "b", NULL, 1);
    assert_int_equal(report(&sw, "c", 1, 8, (int[]){0, -1}, 1), 0);
    assert_int_equal(p2p_swarm_heartbeat(&sw, "d", "h:1", NULL, NULL, 1, &known), -EUSERS);
    assert_int_equal(report(&sw, "d", 1, 8, NULL, 1), -EUSERS);
    assert_int_equal(p2p_swarm_nnodes(&sw), 3);
    assert_int_equal(report(&sw, "a", 2, 8, (int[]){0, -1}, 1), 0);
    assert_int_equal(report(&sw, "a", 3, 8, (int[]){0, -1}, 1), -ENFILE);
    assert_int_equal(p2p_swarm_nfiles(&sw), 2);
    uint8_t p1[20] = {1}, p2[20] = {2}, p3[20] = {3};
    assert_int_equal(p2p_swarm_v1_report(&sw, "a", p1, 1), 0);
    assert_int_equal(p2p_swarm_v1_report(&sw, "a", p1, 1), 0);
    assert_int_equal(p2p_swarm_v1_report(&sw, "a", p2, 1), 0);
    assert_int_equal(p2p_swarm_v1_report(&sw, "b", p3, 1), -ENOSPC);
    assert_int_equal(p2p_swarm_v1_report(&sw, "b", p2, 1), 0);
    assert_int_equal(p2p_swarm_nv1(&sw), 2);
    /* Expiry frees room again. */
    assert_int_equal(p2p_swarm_expire(&sw, 1 + 10001), 3);
    assert_int_equal(p2p_swarm_nnodes(&sw), 0);
    assert_int_equal(p2p_swarm_nfiles(&sw), 0);
    assert_int_equal(p2p_swarm_nv1(&sw), 0);
    assert_int_equal(p2p_swarm_heartbeat(&sw, "d", "h:1", NULL, NULL, 20000, &known), 0);
    p2p_swarm_cleanup(&sw);
}

static void test_expiry(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    hb(&sw, "a", NULL, 1000);
    hb(&sw, "b", NULL, 2000);
    hb(&sw, "c", NULL, 3000);
    assert_int_equal(report(&sw, "a", 1, 16, (int[]){0, 1, -1}, 1000), 0);
    assert_int_equal(report(&sw, "b", 1, 16, (int[]){1, -1}, 2000), 0);
    assert_int_equal(report(&sw, "c", 1, 16, (int[]){2, -1}, 3000), 0);
    hb(&sw, "a", NULL, 4000); /* a moves to the back of the expiry list */
    assert_int_equal(p2p_swarm_expire(&sw, 12000), 0);  /* b: exactly expire_ms silent */
    assert_int_equal(p2p_swarm_expire(&sw, 12001), 1);  /* b */
    assert_null(p2p_swarm_node_get(&sw, "b"));
    struct p2p_swarm_file *f = file_of(&sw, 1);
    assert_int_equal(f->nholders, 2);
    assert_int_equal(f->piece_holders[1], 1);
    check_counts(f);
    assert_int_equal(p2p_swarm_expire(&sw, 13001), 1); /* c */
    assert_non_null(p2p_swarm_node_get(&sw, "a"));
    /* A report also counts as a sign of life. */
    assert_int_equal(report(&sw, "a", 1, 16, (int[]){0, -1}, 13500), 0);
    assert_int_equal(p2p_swarm_expire(&sw, 14001), 0);
    assert_int_equal(p2p_swarm_expire(&sw, 23501), 1);
    assert_null(file_of(&sw, 1));
    assert_int_equal(sw.expired_total, 3);
    assert_int_equal(sw.nholders, 0);
    assert_null(sw.lru_head);
    p2p_swarm_cleanup(&sw);
}

static bool in_set(const char *id, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(id, *set) == 0)
            return true;
    return false;
}

static void test_peers_order(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    /* Asker holds pieces 0-3 of 8. */
    hb(&sw, "asker", "z1", 1);
    assert_int_equal(report(&sw, "asker", 1, 8, (int[]){0, 1, 2, 3, -1}, 1), 0);
    /* Useful (hold 4..7), same zone / other zone. */
    const char *useful_same[] = {"us1", "us2", "us3", NULL};
    const char *useful_other[] = {"uo1", "uo2", NULL};
    const char *useless_same[] = {"ns1", "ns2", NULL};
    const char *useless_other[] = {"no1", NULL};
    for (int i = 0; useful_same[i]; i++) {
        hb(&sw, useful_same[i], "z1", 1);
        assert_int_equal(report(&sw, useful_same[i], 1, 8, (int[]){0, 4 + i, -1}, 1), 0);
    }
    for (int i = 0; useful_other[i]; i++) {
        hb(&sw, useful_other[i], "z2", 1);
        assert_int_equal(report(&sw, useful_other[i], 1, 8, (int[]){7, -1}, 1), 0);
    }
    for (int i = 0; useless_same[i]; i++) {
        hb(&sw, useless_same[i], "z1", 1);
        assert_int_equal(report(&sw, useless_same[i], 1, 8, (int[]){0, 1, 2, 3, -1}, 1), 0);
    }
    hb(&sw, "no1", NULL, 1);
    assert_int_equal(report(&sw, "no1", 1, 8, (int[]){1, -1}, 1), 0);
    /* Never returned: holder of nothing, node without address, node past expiry. */
    hb(&sw, "empty", "z1", 1);
    assert_int_equal(report(&sw, "empty", 1, 8, NULL, 1), 0);
    assert_int_equal(report(&sw, "noaddr", 1, 8, (int[]){5, -1}, 1), 0);
    hb(&sw, "stale", "z1", 1);
    assert_int_equal(report(&sw, "stale", 1, 8, (int[]){6, -1}, 1), 0);
    for (int i = 0; useful_same[i]; i++)
        hb(&sw, useful_same[i], "z1", 5000);
    for (int i = 0; useful_other[i]; i++)
        hb(&sw, useful_other[i], "z2", 5000);
    for (int i = 0; useless_same[i]; i++)
        hb(&sw, useless_same[i], "z1", 5000);
    hb(&sw, "no1", NULL, 5000);
    hb(&sw, "asker", "z1", 5000);
    hb(&sw, "empty", "z1", 5000);
    assert_int_equal(report(&sw, "noaddr", 1, 8, (int[]){5, -1}, 5000), 0);
    uint64_t now = 10500; /* "stale" silent 10.5 s > expire, not yet swept */

    struct p2p_swarm_file *f = file_of(&sw, 1);
    struct p2p_swarm_holder *out[20];
    int first_seen[3] = {0, 0, 0};
    for (int rep = 0; rep < 300; rep++) {
        size_t n = p2p_swarm_peers(&sw, f, "asker", NULL, 20, now, out);
        assert_int_equal(n, 8);
        for (size_t i = 0; i < n; i++) {
            const char *id = out[i]->node->id;
            const char *const *want = i < 3 ? useful_same : i < 5 ? useful_other
                                                          : i < 7 ? useless_same : useless_other;
            assert_true(in_set(id, want));
        }
        for (int k = 0; k < 3; k++)
            first_seen[k] += strcmp(out[0]->node->id, useful_same[k]) == 0;
    }
    /* Random among equals: every member of the first tier comes first sometimes. */
    for (int k = 0; k < 3; k++)
        assert_true(first_seen[k] > 30);
    /* max is respected and takes from the best tiers. */
    size_t n = p2p_swarm_peers(&sw, f, "asker", NULL, 4, now, out);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 3; i++)
        assert_true(in_set(out[i]->node->id, useful_same));
    assert_true(in_set(out[3]->node->id, useful_other));
    /* Explicit zone overrides the asker's. */
    n = p2p_swarm_peers(&sw, f, "asker", "z2", 2, now, out);
    assert_int_equal(n, 2);
    assert_true(in_set(out[0]->node->id, useful_other));
    assert_true(in_set(out[1]->node->id, useful_other));
    /* An unknown asker lacks everything: all 8 piece holders are useful, and no zone. */
    n = p2p_swarm_peers(&sw, f, "stranger", NULL, 20, now, out);
    assert_int_equal(n, 9); /* + asker itself */
    /* A seed asker: nobody is useful, zone order still applies. */
    int all[] = {0, 1, 2, 3, 4, 5, 6, 7, -1};
    assert_int_equal(report(&sw, "asker", 1, 8, all, now), 0);
    n = p2p_swarm_peers(&sw, f, "asker", NULL, 20, now, out);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < 5; i++)
        assert_true(in_set(out[i]->node->id, useful_same) ||
                    in_set(out[i]->node->id, useless_same));
    assert_int_equal(p2p_swarm_peers(&sw, f, "asker", NULL, 0, now, out), 0);
    /* A zone nobody is in: no zone preference can apply, usefulness still does. */
    assert_int_equal(report(&sw, "asker", 1, 8, (int[]){0, 1, 2, 3, -1}, now), 0);
    n = p2p_swarm_peers(&sw, f, "asker", "nowhere", 20, now, out);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < 5; i++)
        assert_true(in_set(out[i]->node->id, useful_same) ||
                    in_set(out[i]->node->id, useful_other));
    /* Moving a node to another zone moves it between tiers; zones are reference counted. */
    assert_int_equal(sw.zones.count, 2);
    hb(&sw, "uo1", "z1", now);
    hb(&sw, "uo2", "z3", now);
    assert_int_equal(sw.zones.count, 2); /* z2 emptied and went, z3 came */
    assert_string_equal(p2p_swarm_node_get(&sw, "uo1")->zone, "z1");
    n = p2p_swarm_peers(&sw, f, "asker", NULL, 4, now, out);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++)
        assert_true(in_set(out[i]->node->id, useful_same) || strcmp(out[i]->node->id, "uo1") == 0);
    hb(&sw, "uo2", "", now);
    assert_int_equal(sw.zones.count, 1);
    assert_int_equal(p2p_swarm_expire(&sw, now + 20000), 12);
    assert_int_equal(sw.zones.count, 0);
    p2p_swarm_cleanup(&sw);
}

static void test_peers_large(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    char id[32];
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "n%d", i);
        hb(&sw, id, i % 2 ? "odd" : "even", 1);
        assert_int_equal(report(&sw, id, 1, 64, (int[]){i % 64, -1}, 1), 0);
    }
    struct p2p_swarm_file *f = file_of(&sw, 1);
    check_counts(f);
    struct p2p_swarm_holder *out[50];
    size_t n = p2p_swarm_peers(&sw, f, "n0", NULL, 50, 2, out);
    assert_int_equal(n, 50);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(out[i]->node->zone, "even");
        assert_string_not_equal(out[i]->node->id, "n0");
        for (size_t j = 0; j < i; j++)
            assert_ptr_not_equal(out[i], out[j]);
    }
    assert_int_equal(p2p_swarm_expire(&sw, 20000), 500);
    p2p_swarm_cleanup(&sw);
}

static void test_v1(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    uint8_t pid[20] = {0x22, 0x59}, other[20] = {7};
    char id[16];
    struct p2p_swarm_node *out[P2P_SWARM_V1_LIST];
    assert_int_equal(p2p_swarm_v1_nodes(&sw, pid, 1, out), 0);
    for (int i = 0; i < 8; i++) {
        snprintf(id, sizeof id, "v%d", i);
        /* Report before the first heartbeat (the original races them): kept, address later. */
        assert_int_equal(p2p_swarm_v1_report(&sw, id, pid, 1), 0);
        assert_int_equal(p2p_swarm_v1_report(&sw, id, pid, 1), 0);
        hb(&sw, id, NULL, 1);
    }
    assert_int_equal(p2p_swarm_v1_report(&sw, "v0", other, 1), 0);
    assert_int_equal(p2p_swarm_v1_report(&sw, "noaddr", other, 1), 0);
    int seen[8] = {0};
    for (int rep = 0; rep < 200; rep++) {
        size_t n = p2p_swarm_v1_nodes(&sw, pid, 2, out);
        assert_int_equal(n, 5);
        for (size_t i = 0; i < n; i++) {
            seen[out[i]->id[1] - '0']++;
            for (size_t j = 0; j < i; j++)
                assert_ptr_not_equal(out[i], out[j]);
        }
    }
    for (int i = 0; i < 8; i++)
        assert_true(seen[i] > 0);
    assert_int_equal(p2p_swarm_v1_nodes(&sw, other, 2, out), 1);
    /* Expiry purges the v1 map too. */
    hb(&sw, "v3", NULL, 9000);
    assert_int_equal(p2p_swarm_expire(&sw, 10002), 8);
    assert_int_equal(p2p_swarm_v1_nodes(&sw, pid, 10002, out), 1);
    assert_string_equal(out[0]->id, "v3");
    assert_int_equal(p2p_swarm_nv1(&sw), 1);
    p2p_swarm_cleanup(&sw);
}

/* Review finding 6: a memory budget over all files and holders, and no file from nothing. */
static void test_budgets(void **state)
{
    (void)state;
    struct p2p_swarm_limits lim = LIM;
    lim.max_pieces = 1u << 20;
    lim.max_total_pieces = 1000;
    lim.max_holder_bytes = 3 * (P2P_SWARM_HOLDER_COST + 50) + 2 * P2P_SWARM_V1_PAIR_COST;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &lim);
    uint8_t h[32];
    hash_of(1, h);
    /* The 150-byte attack: a huge pieceCount with nothing held allocates nothing. */
    assert_int_equal(p2p_swarm_report_have(&sw, "x", h, 1u << 20, NULL, NULL, 0, 1), 0);
    assert_int_equal(report(&sw, "x", 1, 1u << 20, NULL, 1), 0);
    assert_null(file_of(&sw, 1));
    assert_null(p2p_swarm_node_get(&sw, "x"));
    assert_int_equal(sw.total_pieces, 0);
    assert_int_equal(sw.holder_bytes, 0);
    /* Holding one piece of it is refused by the piece budget, before anything is created. */
    uint32_t one = 0;
    assert_int_equal(p2p_swarm_report_have(&sw, "x", h, 1u << 20, NULL, &one, 1, 1), -ENOBUFS);
    assert_null(p2p_swarm_node_get(&sw, "x"));
    /* 400 + 400 pieces fit, 400 more do not. */
    assert_int_equal(report(&sw, "a", 1, 400, (int[]){0, -1}, 1), 0);
    assert_int_equal(report(&sw, "a", 2, 400, (int[]){0, -1}, 1), 0);
    assert_int_equal(sw.total_pieces, 800);
    assert_int_equal(report(&sw, "a", 3, 400, (int[]){0, -1}, 1), -ENOBUFS);
    /* Holder bytes: 2 holders so far (50 bytes of bits each); one more fits, then v1 pairs. */
    assert_int_equal(report(&sw, "b", 1, 400, (int[]){1, -1}, 1), 0);
    assert_int_equal(report(&sw, "a", 3, 200, (int[]){0, -1}, 1), -EDQUOT); /* within pieces */
    assert_null(file_of(&sw, 3));
    assert_int_equal(report(&sw, "c", 2, 400, (int[]){1, -1}, 1), -EDQUOT);
    assert_null(p2p_swarm_node_get(&sw, "c"));
    uint8_t p1[20] = {1}, p2[20] = {2}, p3[20] = {3};
    assert_int_equal(p2p_swarm_v1_report(&sw, "b", p1, 1), 0);
    assert_int_equal(p2p_swarm_v1_report(&sw, "b", p2, 1), 0);
    assert_int_equal(p2p_swarm_v1_report(&sw, "b", p3, 1), -EDQUOT);
    assert_int_equal(sw.holder_bytes, lim.max_holder_bytes);
    /* Leaving gives the budget back. */
    assert_int_equal(p2p_swarm_report_stopped(&sw, "a", h, 2), 0);
    assert_int_equal(sw.total_pieces, 800);
    assert_int_equal(report(&sw, "c", 2, 400, (int[]){1, -1}, 2), 0);
    assert_int_equal(p2p_swarm_expire(&sw, 20000), 3);
    assert_int_equal(sw.total_pieces, 0);
    assert_int_equal(sw.holder_bytes, 0);
    p2p_swarm_cleanup(&sw);
}

/* Review finding 22: a squatter's pieceCount lasts only while someone holds a piece. */
static void test_squatting(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    uint8_t h[32];
    hash_of(1, h);
    /* Squatter claims one piece of a wrong count; a downloader with nothing joins it. */
    assert_int_equal(report(&sw, "squat", 1, 5, (int[]){0, -1}, 1), 0);
    assert_int_equal(report(&sw, "dl", 1, 5, NULL, 1), 0);
    assert_int_equal(file_of(&sw, 1)->nholders, 2);
    check_counts(file_of(&sw, 1));
    assert_int_equal(report(&sw, "seed", 1, 10, (int[]){0, 1, -1}, 1), -EEXIST);
    /* Withdrawing its claim (empty full report) drops the file with its empty holders. */
    assert_int_equal(report(&sw, "squat", 1, 5, NULL, 2), 0);
    assert_null(file_of(&sw, 1));
    assert_int_equal(sw.nholders, 0);
    assert_int_equal(p2p_swarm_node_get(&sw, "dl")->nholders, 0);
    assert_int_equal(report(&sw, "seed", 1, 10, (int[]){0, 1, -1}, 2), 0);
    assert_int_equal(file_of(&sw, 1)->npieces, 10);
    assert_int_equal(p2p_swarm_report_stopped(&sw, "seed", h, 3), 0);
    assert_null(file_of(&sw, 1));
    /* Same through stopped and through expiry, with an empty holder left behind. */
    assert_int_equal(report(&sw, "squat", 1, 5, (int[]){0, -1}, 3), 0);
    assert_int_equal(report(&sw, "dl", 1, 5, NULL, 3), 0);
    assert_int_equal(p2p_swarm_report_stopped(&sw, "squat", h, 4), 0);
    assert_null(file_of(&sw, 1));
    assert_int_equal(report(&sw, "squat", 1, 5, (int[]){0, -1}, 5), 0);
    hb(&sw, "dl", NULL, 9000);
    assert_int_equal(report(&sw, "dl", 1, 5, NULL, 9000), 0);
    assert_int_equal(p2p_swarm_expire(&sw, 5 + 10001), 2); /* squat, seed */
    assert_null(file_of(&sw, 1));
    assert_int_equal(report(&sw, "seed", 1, 10, (int[]){0, -1}, 15000), 0);
    /* A zero-piece file is complete by definition: its holders keep it. */
    assert_int_equal(p2p_swarm_report_full(&sw, "z", (uint8_t[32]){9}, 0, NULL, h, 0, 15000), 0);
    assert_non_null(p2p_swarm_file_get(&sw, (uint8_t[32]){9}));
    assert_int_equal(p2p_swarm_file_get(&sw, (uint8_t[32]){9})->nseeders, 1);
    p2p_swarm_cleanup(&sw);
}

/* Review finding 9: the probe's per-file figures are kept incrementally; check them against a
 * recount through random full reports, increments, stops and expiry. */
static void test_figures_incremental(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    srand(7);
    char id[16];
    uint8_t h[32];
    hash_of(1, h);
    assert_int_equal(report(&sw, "anchor", 1, 37, (int[]){36, -1}, 1), 0);
    for (int step = 0; step < 3000; step++) {
        snprintf(id, sizeof id, "n%d", rand() % 40);
        int op = rand() % 10;
        if (op < 4) {
            int held[38], k = 0;
            for (int p = 0; p < 37; p++)
                if (rand() % 3 == 0)
                    held[k++] = p;
            if (rand() % 5 == 0) /* some seeders */
                for (k = 0; k < 37; k++)
                    held[k] = k;
            held[k] = -1;
            assert_int_equal(report(&sw, id, 1, 37, held, 1), 0);
        } else if (op < 8) {
            uint32_t idx[3] = {(uint32_t)rand() % 37, (uint32_t)rand() % 37, 36};
            assert_int_equal(p2p_swarm_report_have(&sw, id, h, 37, NULL, idx, 3, 1), 0);
        } else {
            assert_int_equal(p2p_swarm_report_stopped(&sw, id, h, 1), 0);
        }
        struct p2p_swarm_file *f = file_of(&sw, 1);
        assert_non_null(f); /* the anchor holds piece 36 throughout */
        if (step % 50 == 0)
            check_counts(f);
    }
    check_counts(file_of(&sw, 1));
    hb(&sw, "anchor", NULL, 5000);
    assert_true(p2p_swarm_expire(&sw, 12000) > 0);
    struct p2p_swarm_file *f = file_of(&sw, 1);
    assert_int_equal(f->nholders, 1);
    check_counts(f);
    assert_int_equal(f->rarest, 0);
    assert_true(f->hist_cap <= 16); /* trimmed after the holders left */
    p2p_swarm_cleanup(&sw);
}

/* Review finding 21: a live session's address can only be changed from its own IP. */
static void test_addr_binding(void **state)
{
    (void)state;
    struct p2p_swarm sw;
    p2p_swarm_init(&sw, &LIM);
    bool known;
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "10.0.0.1:80", "z", "10.0.0.1", 1, &known), 0);
    struct p2p_swarm_node *n = p2p_swarm_node_get(&sw, "a");
    assert_string_equal(n->src, "10.0.0.1");
    /* Hijack attempts from another IP: new address or new zone. Nothing changes. */
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "6.6.6.6:80", "z", "6.6.6.6", 2, &known),
                     -EADDRINUSE);
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "10.0.0.1:80", "evil", "6.6.6.6", 2, &known),
                     -EADDRINUSE);
    n = p2p_swarm_node_get(&sw, "a");
    assert_string_equal(n->addr, "10.0.0.1:80");
    assert_string_equal(n->zone, "z");
    assert_int_equal(n->last_ms, 1);
    /* The same address from another IP refreshes but does not rebind. */
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "10.0.0.1:80", "z", "6.6.6.6", 3, &known), 0);
    assert_true(known);
    n = p2p_swarm_node_get(&sw, "a");
    assert_string_equal(n->src, "10.0.0.1");
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "6.6.6.6:80", "z", "6.6.6.6", 4, &known),
                     -EADDRINUSE);
    /* The owner may move (new port, new zone); IPv6 sources compare as strings. */
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "10.0.0.1:81", "y", "10.0.0.1", 5, &known), 0);
    assert_string_equal(p2p_swarm_node_get(&sw, "a")->addr, "10.0.0.1:81");
    assert_int_equal(p2p_swarm_heartbeat(&sw, "v6", "[::1]:80", NULL, "[::1]", 5, &known), 0);
    assert_int_equal(p2p_swarm_heartbeat(&sw, "v6", "[::1]:81", NULL, "[::2]", 5, &known),
                     -EADDRINUSE);
    /* Expired (not yet swept): anyone may register it again, and it binds to the new IP. */
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "6.6.6.6:80", "z", "6.6.6.6", 5 + 10001,
                                         &known), 0);
    n = p2p_swarm_node_get(&sw, "a");
    assert_string_equal(n->addr, "6.6.6.6:80");
    assert_string_equal(n->src, "6.6.6.6");
    assert_int_equal(p2p_swarm_heartbeat(&sw, "a", "10.0.0.1:80", "z", "10.0.0.1", 10010,
                                         &known), -EADDRINUSE);
    /* A node known only through reports has no address yet: its first heartbeat binds. */
    assert_int_equal(report(&sw, "r", 1, 8, (int[]){0, -1}, 10010), 0);
    assert_int_equal(p2p_swarm_heartbeat(&sw, "r", "10.0.0.9:80", NULL, "10.0.0.9", 10010,
                                         &known), 0);
    assert_false(known);
    assert_string_equal(p2p_swarm_node_get(&sw, "r")->src, "10.0.0.9");
    /* Unknown source (NULL): no check, as before. */
    assert_int_equal(p2p_swarm_heartbeat(&sw, "r", "10.0.0.8:80", NULL, NULL, 10011, &known), 0);
    p2p_swarm_cleanup(&sw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat_known), cmocka_unit_test(test_piece_map),
        cmocka_unit_test(test_limits),          cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_peers_order),     cmocka_unit_test(test_peers_large),
        cmocka_unit_test(test_v1),              cmocka_unit_test(test_budgets),
        cmocka_unit_test(test_squatting),       cmocka_unit_test(test_figures_incremental),
        cmocka_unit_test(test_addr_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
