/* Unit tests of the tracker's open-addressing hash map, against a reference array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "tracker/hmap.h"

struct item {
    char key[24];
    int value;
    int present;
};

static const void *item_key(const void *v, size_t *len)
{
    const struct item *it = v;
    *len = strlen(it->key);
    return it->key;
}

#define N 5000

static void test_put_get_del(void **state)
{
    (void)state;
    struct p2p_hmap m;
    p2p_hmap_init(&m, item_key);
    assert_null(p2p_hmap_get(&m, "x", 1));
    assert_null(p2p_hmap_del(&m, "x", 1));
    struct item *items = calloc(N, sizeof *items);
    for (int i = 0; i < N; i++) {
        snprintf(items[i].key, sizeof items[i].key, "node-%d", i);
        items[i].value = i;
        items[i].present = 1;
        p2p_hmap_put(&m, &items[i]);
    }
    assert_int_equal(m.count, N);
    assert_true(m.count * 4 <= m.cap * 3);
    for (int i = 0; i < N; i++) {
        struct item *it = p2p_hmap_get(&m, items[i].key, strlen(items[i].key));
        assert_ptr_equal(it, &items[i]);
    }
    /* Delete a pseudo-random ~half, then check every key against the reference. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            if (!items[i].present || p2p_rand_below(2))
                continue;
            assert_ptr_equal(p2p_hmap_del(&m, items[i].key, strlen(items[i].key)), &items[i]);
            items[i].present = 0;
        }
        size_t live = 0;
        for (int i = 0; i < N; i++) {
            void *got = p2p_hmap_get(&m, items[i].key, strlen(items[i].key));
            if (items[i].present) {
                assert_ptr_equal(got, &items[i]);
                live++;
            } else {
                assert_null(got);
            }
        }
        assert_int_equal(m.count, live);
        /* Re-insert a few so runs wrap and shift again. */
        for (int i = round; i < N; i += 7) {
            if (!items[i].present) {
                items[i].present = 1;
                p2p_hmap_put(&m, &items[i]);
            }
        }
    }
    size_t pos = 0, seen = 0;
    struct item *it;
    while ((it = p2p_hmap_next(&m, &pos)) != NULL) {
        assert_true(it->present);
        seen++;
    }
    assert_int_equal(seen, m.count);
    /* Keys that are prefixes of each other are distinct. */
    assert_null(p2p_hmap_get(&m, "node-1", 5));
    p2p_hmap_cleanup(&m);
    p2p_hmap_cleanup(&m);
    free(items);
}

static void test_hash_keyed(void **state)
{
    (void)state;
    struct p2p_hmap a, b;
    p2p_hmap_init(&a, item_key);
    p2p_hmap_init(&b, item_key);
    /* Two maps get different random keys, so an attacker cannot precompute collisions. */
    int differ = 0;
    for (int i = 0; i < 8; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        differ += p2p_hmap_hash(&a, k, strlen(k)) != p2p_hmap_hash(&b, k, strlen(k));
        assert_int_equal(p2p_hmap_hash(&a, k, strlen(k)), p2p_hmap_hash(&a, k, strlen(k)));
    }
    assert_true(differ > 0);
    /* Known SipHash-2-4 vector (key 00..0f, message 00..0e, 15 bytes). */
    a.k0 = 0x0706050403020100ULL;
    a.k1 = 0x0f0e0d0c0b0a0908ULL;
    uint8_t msg[15];
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    assert_int_equal(p2p_hmap_hash(&a, msg, 15), 0xa129ca6149be45e5ULL);
    assert_int_equal(p2p_hmap_hash(&a, msg, 0), 0x726fdb47dd0e0e31ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del),
        cmocka_unit_test(test_hash_keyed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
