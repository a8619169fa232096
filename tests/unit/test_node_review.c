/* Unit tests of the node's review fixes that are pure logic: report backoff, the endgame gate,
 * the SHA-1 piece index of /v1/pieceData, URL escaping of /v2/peers parameters, the zone rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/config.h"
#include "common/util.h"
#include "node/node_int.h"

static void test_report_backoff(void **state)
{
    (void)state;
    assert_int_equal(p2p_node_report_backoff(1, 5000), 500);
    assert_int_equal(p2p_node_report_backoff(2, 5000), 1000);
    assert_int_equal(p2p_node_report_backoff(3, 5000), 2000);
    assert_int_equal(p2p_node_report_backoff(4, 5000), 4000);
    assert_int_equal(p2p_node_report_backoff(5, 5000), 5000); /* capped at the period */
    assert_int_equal(p2p_node_report_backoff(60, 5000), 5000);
    assert_int_equal(p2p_node_report_backoff(1, 200), 200);
}

static void test_endgame(void **state)
{
    (void)state;
    struct p2p_bitfield got;
    p2p_bitfield_init(&got, 10);
    uint8_t reqs[10] = {0};
    for (uint32_t i = 0; i < 7; i++)
        p2p_bitfield_set(&got, i);
    /* 3 missing (7, 8, 9), only 8 and 9 requested: no endgame, however many are in flight */
    reqs[8] = 1;
    reqs[9] = 2;
    assert_false(p2p_node_endgame(&got, reqs, 3));
    assert_false(p2p_node_endgame(&got, reqs, 10));
    /* every missing piece requested */
    reqs[7] = 1;
    assert_true(p2p_node_endgame(&got, reqs, 4));
    /* fewer requests in flight than pieces missing: never */
    assert_false(p2p_node_endgame(&got, reqs, 2));
    /* nothing missing: trivially */
    for (uint32_t i = 7; i < 10; i++)
        p2p_bitfield_set(&got, i);
    assert_true(p2p_node_endgame(&got, reqs, 0));
    p2p_bitfield_cleanup(&got);
}

static void test_v1_index(void **state)
{
    (void)state;
    struct p2p_seed s = {0};
    s.algo = P2P_HASH_SHA1;
    s.npieces = 200;
    s.pieces = calloc(s.npieces, sizeof *s.pieces);
    for (uint32_t i = 0; i < s.npieces; i++) {
        /* descending digests, and pieces 10 and 11 share one (equal content) */
        uint32_t v = 1000 - (i == 11 ? 10 : i);
        s.pieces[i].digest[0] = (uint8_t)(v >> 8);
        s.pieces[i].digest[19] = (uint8_t)v;
    }
    uint32_t *order = p2p_node_v1_index_build(&s);
    for (uint32_t k = 1; k < s.npieces; k++)
        assert_true(memcmp(s.pieces[order[k - 1]].digest, s.pieces[order[k]].digest, 20) <= 0);
    for (uint32_t i = 0; i < s.npieces; i++) {
        int64_t k = p2p_node_v1_index_find(&s, order, s.pieces[i].digest);
        assert_true(k >= 0);
        assert_memory_equal(s.pieces[order[k]].digest, s.pieces[i].digest, 20);
        if (k > 0) /* the first of its equals */
            assert_true(memcmp(s.pieces[order[k - 1]].digest, s.pieces[i].digest, 20) < 0);
    }
    int64_t k = p2p_node_v1_index_find(&s, order, s.pieces[10].digest);
    assert_int_equal(order[k], 10);
    assert_int_equal(order[k + 1], 11);
    uint8_t absent[20] = {0xff};
    assert_int_equal(p2p_node_v1_index_find(&s, order, absent), -1);
    memset(absent, 0, sizeof absent);
    assert_int_equal(p2p_node_v1_index_find(&s, order, absent), -1);
    free(order);
    free(s.pieces);
}

static void test_url_escape(void **state)
{
    (void)state;
    char *e = p2p_url_escape("eu-west_1.a~b");
    assert_string_equal(e, "eu-west_1.a~b");
    free(e);
    e = p2p_url_escape("a b&c=d/%#?\xc3\xa9");
    assert_string_equal(e, "a%20b%26c%3Dd%2F%25%23%3F%C3%A9");
    free(e);
    e = p2p_url_escape("");
    assert_string_equal(e, "");
    free(e);
}

static int load_zone(const char *zone_yaml)
{
    char path[] = "/tmp/p2p-zone-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "download_dir: \"/tmp\"\nzone: %s\n", zone_yaml);
    fclose(fp);
    struct p2p_node_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    char *used = NULL;
    char err[512];
    int rc = p2p_node_cfg_load(&cfg, path, &used, err, sizeof err);
    if (rc == 0)
        p2p_node_cfg_free(&cfg);
    else
        assert_non_null(strstr(err, "zone"));
    free(used);
    unlink(path);
    return rc;
}

static void test_zone_rule(void **state)
{
    (void)state;
    assert_int_equal(load_zone("\"\""), 0);
    assert_int_equal(load_zone("\"eu-west-1\""), 0);
    assert_int_equal(load_zone("\"zone/with:punct!\""), 0);
    char z64[80], z65[80];
    z64[0] = z65[0] = '"';
    memset(z64 + 1, 'z', 64);
    memset(z65 + 1, 'z', 65);
    memcpy(z64 + 65, "\"", 2);
    memcpy(z65 + 66, "\"", 2);
    assert_int_equal(load_zone(z64), 0); /* 64 bytes */
    assert_true(load_zone(z65) < 0); /* 65 bytes */
    assert_true(load_zone("\"two words\"") < 0);
    assert_true(load_zone("'say \"hi\"'") < 0);
    assert_true(load_zone("\"back\\\\slash\"") < 0);
    assert_true(load_zone("\"caf\xc3\xa9\"") < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_backoff), cmocka_unit_test(test_endgame),
        cmocka_unit_test(test_v1_index),       cmocka_unit_test(test_url_escape),
        cmocka_unit_test(test_zone_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
