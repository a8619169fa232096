/* Unit tests of the node's pure logic: rarest-first piece picking and the token bucket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
        assert_int_equal(p2p_node_pick(&have, reqs, avail, bfs, usable, 2), 6);
    /* requested already: no longer picked */
    reqs[6] = 1;
    assert_int_not_equal(p2p_node_pick(&have, reqs, avail, bfs, usable, 2), 6);
    /* held already: not picked */
    reqs[6] = 0;
    p2p_bitfield_set(&have, 6);
    assert_int_not_equal(p2p_node_pick(&have, reqs, avail, bfs, usable, 2), 6);
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
        int64_t i = p2p_node_pick(&have, reqs, avail, bfs, usable, 1);
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
        int64_t i = p2p_node_pick(&have, reqs, avail, bfs, usable, 2);
        assert_true(i == 1 || i == 2);
    }
    usable[1] = false;
    assert_int_equal(p2p_node_pick(&have, reqs, avail, bfs, usable, 2), -1);
    /* nothing missing */
    usable[0] = usable[1] = true;
    p2p_bitfield_set_all(&have);
    assert_int_equal(p2p_node_pick(&have, reqs, avail, bfs, usable, 2), -1);
    p2p_bitfield_cleanup(&have);
    p2p_bitfield_cleanup(&a);
    p2p_bitfield_cleanup(&b);
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
        cmocka_unit_test(test_rate_unlimited),
        cmocka_unit_test(test_rate_limits),
        cmocka_unit_test(test_rate_delay_when_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
