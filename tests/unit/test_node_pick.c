/* Unit tests of the node's pure logic: rarest-first piece picking with seed offload, the ban
 * rule, super-seeding and the token bucket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_int.h"

static void set_bits(struct p2p_bitfield *bf, const char *pattern)
{
    for (uint32_t i = 0; pattern[i]; i++)
        if (pattern[i] == '1')
            p2p_bitfield_set(bf, i);
}

static void test_pick_rarest(void **state)
{
    (void)state;
    struct p2p_bitfield have, a, b;
    p2p_bitfield_init(&have, 8);
    p2p_bitfield_init(&a, 8);
    p2p_bitfield_init(&b, 8);
    set_bits(&a, "11111111");
    set_bits(&b, "11111101"); /* piece 6 only on a: the rarest */
    uint16_t avail[8] = {2, 2, 2, 2, 2, 2, 1, 2};
    uint8_t reqs[8] = {0};
    const struct p2p_bitfield *bfs[2] = {&a, &b};
    bool usable[2] = {true, true};
    for (int k = 0; k < 50; k++)
        assert_int_equal(p2p_node_pick(&have, reqs, avail, NULL, bfs, usable, NULL, 2), 6);
    /* requested already: no longer picked */
    reqs[6] = 1;
    assert_int_not_equal(p2p_node_pick(&have, reqs, avail, NULL, bfs, usable, NULL, 2), 6);
    /* held already: not picked */
    reqs[6] = 0;
    p2p_bitfield_set(&have, 6);
    assert_int_not_equal(p2p_node_pick(&have, reqs, avail, NULL, bfs, usable, NULL, 2), 6);
    p2p_bitfield_cleanup(&have);
    p2p_bitfield_cleanup(&a);
    p2p_bitfield_cleanup(&b);
}

static void test_pick_random_ties(void **state)
{
    (void)state;
    struct p2p_bitfield have, a;
    p2p_bitfield_init(&have, 16);
    p2p_bitfield_init(&a, 16);
    p2p_bitfield_set_all(&a);
    uint16_t avail[16];
    uint8_t reqs[16] = {0};
    for (int i = 0; i < 16; i++)
        avail[i] = 1;
    const struct p2p_bitfield *bfs[1] = {&a};
    bool usable[1] = {true};
    int seen[16] = {0};
    for (int k = 0; k < 2000; k++) {
        int64_t i = p2p_node_pick(&have, reqs, avail, NULL, bfs, usable, NULL, 1);
        assert_true(i >= 0 && i < 16);
        seen[i]++;
    }
    for (int i = 0; i < 16; i++)
        assert_true(seen[i] > 40); /* every equal piece gets chosen: ties are random */
    p2p_bitfield_cleanup(&have);
    p2p_bitfield_cleanup(&a);
}

static void test_pick_usable_peers_only(void **state)
{
    (void)state;
    struct p2p_bitfield have, a, b;
    p2p_bitfield_init(&have, 4);
    p2p_bitfield_init(&a, 4);
    p2p_bitfield_init(&b, 4);
    set_bits(&a, "1000");
    set_bits(&b, "0110");
    uint16_t avail[4] = {1, 1, 1, 0};
    uint8_t reqs[4] = {0};
    const struct p2p_bitfield *bfs[2] = {&a, &b};
    bool usable[2] = {false, true}; /* a is banned or saturated */
    for (int k = 0; k < 20; k++) {
        int64_t i = p2p_node_pick(&have, reqs, avail, NULL, bfs, usable, NULL, 2);
        assert_true(i == 1 || i == 2);
    }
    usable[1] = false;
    assert_int_equal(p2p_node_pick(&have, reqs, avail, NULL, bfs, usable, NULL, 2), -1);
    /* nothing missing */
    usable[0] = usable[1] = true;
    p2p_bitfield_set_all(&have);
    assert_int_equal(p2p_node_pick(&have, reqs, avail, NULL, bfs, usable, NULL, 2), -1);
    p2p_bitfield_cleanup(&have);
    p2p_bitfield_cleanup(&a);
    p2p_bitfield_cleanup(&b);
}

/* Seed offload: a complete peer is asked only for pieces no incomplete peer holds. */
static void test_pick_seed_offload(void **state)
{
    (void)state;
    struct p2p_bitfield have, seed, a;
    p2p_bitfield_init(&have, 8);
    p2p_bitfield_init(&seed, 8);
    p2p_bitfield_init(&a, 8);
    p2p_bitfield_set_all(&seed);
    set_bits(&a, "11110000");
    uint16_t avail[8] = {2, 2, 2, 2, 1, 1, 1, 1};
    uint16_t partial[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    uint8_t reqs[8] = {0, 0, 0, 0, 1, 1, 1, 1}; /* the seed-only pieces are all requested */
    const struct p2p_bitfield *bfs[2] = {&seed, &a};
    bool usable[2] = {true, false}; /* a is saturated for now */
    bool full[2] = {true, false};
    /* old behaviour (no offload): the seed would send a piece a already has */
    int64_t i = p2p_node_pick(&have, reqs, avail, NULL, bfs, usable, NULL, 2);
    assert_true(i >= 0 && i < 4);
    /* with offload: nothing for the seed to send, wait for a */
    for (int k = 0; k < 20; k++)
        assert_int_equal(p2p_node_pick(&have, reqs, avail, partial, bfs, usable, full, 2), -1);
    /* a free again: the replicated pieces come from it */
    usable[1] = true;
    for (int k = 0; k < 20; k++) {
        i = p2p_node_pick(&have, reqs, avail, partial, bfs, usable, full, 2);
        assert_true(i >= 0 && i < 4);
    }
    /* a seed-only piece free again: the seed gets it, rarest first */
    reqs[5] = 0;
    for (int k = 0; k < 20; k++)
        assert_int_equal(p2p_node_pick(&have, reqs, avail, partial, bfs, usable, full, 2), 5);
    /* a super-seed refused piece 5 (counted as held by an unknown incomplete peer): only a
     * known incomplete holder may give it, so it waits */
    partial[5] = 1;
    usable[1] = false;
    assert_int_equal(p2p_node_pick(&have, reqs, avail, partial, bfs, usable, full, 2), -1);
    p2p_bitfield_cleanup(&have);
    p2p_bitfield_cleanup(&seed);
    p2p_bitfield_cleanup(&a);
}

/* A liar right 9 times in 10 is banned at its second bad piece; transport errors are forgiven. */
static void test_ban_bad_pieces(void **state)
{
    (void)state;
    struct p2p_node_peer p;
    memset(&p, 0, sizeof p);
    assert_false(p2p_node_peer_fault(&p, true));
    for (int k = 0; k < 9; k++)
        p2p_node_peer_good(&p);
    assert_int_equal(p.faults, 1); /* the bad piece is not forgiven */
    assert_true(p2p_node_peer_fault(&p, true));
    assert_int_equal(p.bad_pieces, 2);

    memset(&p, 0, sizeof p);
    for (int k = 0; k < 10; k++) { /* an error now and then, good pieces between: kept */
        assert_false(p2p_node_peer_fault(&p, false));
        p2p_node_peer_good(&p);
    }
    assert_int_equal(p.faults, 0);
    assert_false(p2p_node_peer_fault(&p, false));
    assert_false(p2p_node_peer_fault(&p, false));
    assert_true(p2p_node_peer_fault(&p, false)); /* 3 in a row */

    memset(&p, 0, sizeof p); /* one bad piece + errors */
    assert_false(p2p_node_peer_fault(&p, true));
    assert_false(p2p_node_peer_fault(&p, false));
    p2p_node_peer_good(&p);
    p2p_node_peer_good(&p);
    assert_int_equal(p.faults, 1);
    assert_false(p2p_node_peer_fault(&p, false));
    assert_true(p2p_node_peer_fault(&p, false));
    /* already banned: not banned again */
    p.banned = true;
    assert_false(p2p_node_peer_fault(&p, true));
}

/* An origin seed sends each piece once before any piece twice, and after a few repeats leaves
 * the pieces it sent lately to their recipients. */
static void test_superseed_refuse(void **state)
{
    (void)state;
    struct p2p_node_ss_piece p = {0};
    uint32_t budget = 100 * P2P_NODE_SUPERSEED_REPEAT_PCT / 100; /* of 100 pieces */
    assert_false(p2p_node_superseed_refuse(&p, 10, 1000, 0, 100));      /* never sent */
    assert_false(p2p_node_superseed_refuse(&p, 0, 1000, budget, 100)); /* ... at all */
    p.sent = 1;
    p.active = 1;
    assert_true(p2p_node_superseed_refuse(&p, 10, 1000, 0, 100));  /* being sent */
    assert_false(p2p_node_superseed_refuse(&p, 0, 1000, 0, 100));  /* every piece went out */
    assert_true(p2p_node_superseed_refuse(&p, 0, 1000, budget, 100)); /* ... budget spent */
    p.active = 0;
    p.done_ms = 1000;
    assert_true(p2p_node_superseed_refuse(&p, 10, 1000 + P2P_NODE_SUPERSEED_HOLD_MS - 1, 0, 100));
    /* the holder may have been lost: after the hold, the seed sends it again */
    assert_false(p2p_node_superseed_refuse(&p, 10, 1000 + P2P_NODE_SUPERSEED_HOLD_MS, 0, 100));
    /* after the first pass, repeats within the budget are sent at once */
    assert_false(p2p_node_superseed_refuse(&p, 0, 1001, budget - 1, 100));
    /* budget spent: a piece sent lately waits for the longer hold, then goes out again */
    assert_true(p2p_node_superseed_refuse(&p, 0, 1000 + P2P_NODE_SUPERSEED_TAIL_HOLD_MS - 1,
                                          budget, 100));
    assert_false(p2p_node_superseed_refuse(&p, 0, 1000 + P2P_NODE_SUPERSEED_TAIL_HOLD_MS, budget,
                                           100));
    p.sent = 0; /* its only send failed */
    assert_false(p2p_node_superseed_refuse(&p, 10, 1001, 0, 100));
    assert_false(p2p_node_superseed_refuse(&p, 0, 1001, budget, 100));
}

static void test_bitfield_header(void **state)
{
    (void)state;
    struct p2p_node_file f;
    memset(&f, 0, sizeof f);
    p2p_bitfield_init(&f.got, 12);
    set_bits(&f.got, "100000000001");
    char *h = p2p_node_bitfield_header(&f);
    assert_non_null(h);
    assert_string_equal(h, "gBA="); /* 0x80 0x10 */
    free(h);
    p2p_bitfield_cleanup(&f.got);
    p2p_bitfield_init(&f.got, 8 * (P2P_NODE_BITFIELD_HDR_MAX + 8));
    assert_null(p2p_node_bitfield_header(&f)); /* too long for a header */
    p2p_bitfield_cleanup(&f.got);
}

/* Oldest uploads first: the others only get what the heads leave. */
static void test_rate_heads_first(void **state)
{
    (void)state;
    struct p2p_node_rate r = {.rate = 1000000};
    uint64_t d = 0, head_total = 0, other_total = 0;
    /* a head and another sender both ask every millisecond for 1 s */
    for (uint64_t t = 1; t <= 1000; t++) {
        head_total += p2p_node_rate_take_prio(&r, t, 65536, true, &d);
        other_total += p2p_node_rate_take_prio(&r, t, 65536, false, &d);
    }
    assert_true(head_total >= 900000);
    assert_int_equal(other_total, 0);
    /* the head stops (done or blocked): the other gets the rate after a short wait */
    for (uint64_t t = 1001; t <= 2000; t++) {
        size_t got = p2p_node_rate_take_prio(&r, t, 65536, false, &d);
        if (got == 0)
            assert_true(d >= 1 && d <= 200);
        other_total += got;
    }
    assert_true(other_total >= 850000 && other_total <= 1100000);
}

static void test_rate_unlimited(void **state)
{
    (void)state;
    struct p2p_node_rate r = {0};
    uint64_t d = 0;
    assert_int_equal(p2p_node_rate_take(&r, 1000, 65536, &d), 65536);
}

static void test_rate_limits(void **state)
{
    (void)state;
    struct p2p_node_rate r = {.rate = 1000000}; /* 1 MB/s */
    uint64_t now = 1000, d = 0, total = 0;
    /* simulate 2 s of greedy senders asking for 64 KiB every millisecond */
    for (uint64_t t = 0; t < 2000; t++) {
        size_t got = p2p_node_rate_take(&r, now + t, 65536, &d);
        if (got == 0)
            assert_true(d >= 1 && d <= 100);
        total += got;
    }
    assert_true(total >= 1800000 && total <= 2100000);
}

static void test_rate_delay_when_empty(void **state)
{
    (void)state;
    struct p2p_node_rate r = {.rate = 100000};
    uint64_t d = 0;
    size_t got = p2p_node_rate_take(&r, 5000, 1 << 20, &d);
    assert_true(got > 0 && got <= 16384);
    got = p2p_node_rate_take(&r, 5000, 1 << 20, &d);
    assert_int_equal(got, 0);
    assert_true(d > 0 && d <= 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pick_rarest),
        cmocka_unit_test(test_pick_random_ties),
        cmocka_unit_test(test_pick_usable_peers_only),
        cmocka_unit_test(test_pick_seed_offload),
        cmocka_unit_test(test_ban_bad_pieces),
        cmocka_unit_test(test_superseed_refuse),
        cmocka_unit_test(test_bitfield_header),
        cmocka_unit_test(test_rate_unlimited),
        cmocka_unit_test(test_rate_limits),
        cmocka_unit_test(test_rate_delay_when_empty),
        cmocka_unit_test(test_rate_heads_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
