/* Unit tests of the TUS header parsers (node/tus_proto.c): metadata, checksum, concat lists,
 * ids and URLs, base64 strictness, dates, placement names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "node/tus_int.h"

static void test_b64_strict(void **state)
{
    (void)state;
    uint8_t out[64];
    assert_int_equal(p2p_tus_b64_decode("aGVsbG8=", 8, out), 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(p2p_tus_b64_decode("", 0, out), 0);
    assert_int_equal(p2p_tus_b64_decode("aGk=", 4, out), 2);
    assert_int_equal(p2p_tus_b64_decode("aA==", 4, out), 1);
    assert_int_equal(p2p_tus_b64_decode("aGVsbG8", 7, out), -1);   /* no padding */
    assert_int_equal(p2p_tus_b64_decode("aGV sbG8=", 9, out), -1); /* space */
    assert_int_equal(p2p_tus_b64_decode("aGVs_G8=", 8, out), -1);  /* url alphabet */
    assert_int_equal(p2p_tus_b64_decode("a===", 4, out), -1);
    assert_int_equal(p2p_tus_b64_decode("=aGk", 4, out), -1);
    assert_int_equal(p2p_tus_b64_decode("aGl=", 4, out), -1); /* non-canonical bits */
    assert_int_equal(p2p_tus_b64_decode("aB==", 4, out), -1);
}

static void test_meta_ok(void **state)
{
    (void)state;
    struct p2p_tus_meta m;
    const char *why = NULL;
    assert_int_equal(p2p_tus_meta_parse("filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,"
                                        "is_confidential",
                                        &m, &why),
                     0);
    assert_int_equal(m.n, 2);
    size_t len = 0;
    const uint8_t *v = p2p_tus_meta_get(&m, "filename", &len);
    assert_non_null(v);
    assert_int_equal(len, strlen("world_domination_plan.pdf"));
    assert_memory_equal(v, "world_domination_plan.pdf", len);
    v = p2p_tus_meta_get(&m, "is_confidential", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_null(p2p_tus_meta_get(&m, "nope", NULL));
    p2p_tus_meta_cleanup(&m);
    /* spaces around pairs and an explicit empty value */
    assert_int_equal(p2p_tus_meta_parse(" a aGk= , b ", &m, &why), 0);
    assert_int_equal(m.n, 2);
    p2p_tus_meta_cleanup(&m);
}

static void test_meta_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                        /* no pair */
        "a aGk=,a aGk=",           /* duplicate key */
        "a aGk",                   /* bad base64 */
        "a aGk= extra",            /* three parts */
        ",a aGk=",                 /* empty key */
        "a aGk=,",                 /* trailing comma: empty pair */
        "k\x01y aGk=",             /* control char in key */
        "a\taGk=",                 /* tab is not the separator */
        "a !!!!",                  /* not base64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct p2p_tus_meta m;
        const char *why = NULL;
        assert_int_equal(p2p_tus_meta_parse(bad[i], &m, &why), -1);
        assert_non_null(why);
        assert_int_equal(m.n, 0);
    }
    /* more than the pair cap */
    char big[P2P_TUS_MAX_META * 8 + 64] = "";
    for (int i = 0; i <= P2P_TUS_MAX_META; i++) {
        char kv[16];
        snprintf(kv, sizeof kv, "%sk%d", i ? "," : "", i);
        strcat(big, kv);
    }
    struct p2p_tus_meta m;
    assert_int_equal(p2p_tus_meta_parse(big, &m, NULL), -1);
}

static void test_checksum(void **state)
{
    (void)state;
    enum p2p_tus_algo a;
    uint8_t d[64];
    size_t dl = 0;
    assert_int_equal(p2p_tus_checksum_parse("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", &a, d, &dl), 0);
    assert_int_equal(a, P2P_TUS_CK_SHA1);
    assert_int_equal(dl, 20);
    assert_int_equal(p2p_tus_checksum_parse("md5 XrY7u+Ae7tCTyyK7j1rNww==", &a, d, &dl), 0);
    assert_int_equal(a, P2P_TUS_CK_MD5);
    assert_int_equal(p2p_tus_checksum_parse(
                         "sha256 uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=", &a, d, &dl),
                     0);
    assert_int_equal(a, P2P_TUS_CK_SHA256);
    assert_int_equal(dl, 32);
    /* unsupported algorithm -> -2; malformed -> -1 */
    assert_int_equal(p2p_tus_checksum_parse("crc32 AAAAAA==", &a, d, &dl), -2);
    assert_int_equal(p2p_tus_checksum_parse("sha1", &a, d, &dl), -1);
    assert_int_equal(p2p_tus_checksum_parse("sha1 ", &a, d, &dl), -1);
    assert_int_equal(p2p_tus_checksum_parse("sha1 AAAA", &a, d, &dl), -1); /* wrong length */
    assert_int_equal(p2p_tus_checksum_parse("SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", &a, d, &dl), -2);
    assert_int_equal(p2p_tus_checksum_parse(" Kq5sNclPz7QV2+lfQIuc6R7oRu0=", &a, d, &dl), -1);
}

static void test_ids_urls(void **state)
{
    (void)state;
    const char *id = "0123456789abcdef0123456789abcdef";
    assert_true(p2p_tus_id_valid(id, 32));
    assert_false(p2p_tus_id_valid("0123456789ABCDEF0123456789abcdef", 32));
    assert_false(p2p_tus_id_valid("..", 2));
    assert_false(p2p_tus_id_valid("0123456789abcdef0123456789abcde%", 32));
    char out[P2P_TUS_ID_LEN + 1];
    char url[128];
    snprintf(url, sizeof url, "/files/%s", id);
    assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), 0);
    assert_string_equal(out, id);
    snprintf(url, sizeof url, "http://127.0.0.1:8080/files/%s", id);
    assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), 0);
    snprintf(url, sizeof url, "https://h/files/%s", id);
    assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), 0);
    snprintf(url, sizeof url, "/other/%s", id);
    assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), -1);
    snprintf(url, sizeof url, "/files/%s/x", id);
    assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), -1);
    snprintf(url, sizeof url, "/files/../%s", id);
    assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), -1);
    snprintf(url, sizeof url, "ftp://h/files/%s", id);
    assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), -1);
    /* the authority is echoed back in Upload-Concat: host[:port] characters only */
    static const char *const bad_hosts[] = {"h\xc3\xa9st", "a\"b", "x<y>", "u@h", "a%0d", "a\tb",
                                            ""};
    for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++) {
        snprintf(url, sizeof url, "http://%s/files/%s", bad_hosts[i], id);
        assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), -1);
    }
    snprintf(url, sizeof url, "http://[::1]:8080/files/%s", id);
    assert_int_equal(p2p_tus_id_from_url(url, strlen(url), "/files/", out), 0);
}

static void test_concat(void **state)
{
    (void)state;
    bool partial = false;
    char(*ids)[P2P_TUS_ID_LEN + 1] = NULL;
    size_t n = 0;
    assert_int_equal(p2p_tus_concat_parse("partial", "/files/", &partial, &ids, &n), 0);
    assert_true(partial);
    assert_null(ids);
    const char *a = "0123456789abcdef0123456789abcdef", *b = "fedcba9876543210fedcba9876543210";
    char v[256];
    snprintf(v, sizeof v, "final;/files/%s http://x:1/files/%s", a, b);
    assert_int_equal(p2p_tus_concat_parse(v, "/files/", &partial, &ids, &n), 0);
    assert_false(partial);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], a);
    assert_string_equal(ids[1], b);
    free(ids);
    static const char *const bad[] = {"final;", "final", "partial;x", "Partial", "final; ",
                                      "final;/files/abc", "final;/files/..%2f..", "fin"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(p2p_tus_concat_parse(bad[i], "/files/", &partial, &ids, &n), -1);
}

static void test_date_host_ct(void **state)
{
    (void)state;
    char d[40];
    p2p_tus_http_date(1403712000, d);
    assert_string_equal(d, "Wed, 25 Jun 2014 16:00:00 GMT");
    assert_true(p2p_tus_host_valid("127.0.0.1:8080"));
    assert_true(p2p_tus_host_valid("[::1]:80"));
    assert_false(p2p_tus_host_valid("evil.com/x"));
    assert_false(p2p_tus_host_valid("a b"));
    assert_false(p2p_tus_host_valid(""));
    assert_true(p2p_tus_ct_ok("application/offset+octet-stream"));
    assert_true(p2p_tus_ct_ok("Application/Offset+Octet-Stream"));
    assert_false(p2p_tus_ct_ok("application/octet-stream"));
    assert_false(p2p_tus_ct_ok(NULL));
}

static void test_name_candidates(void **state)
{
    (void)state;
    char *s = p2p_tus_name_candidate("photo.jpg", 0);
    assert_string_equal(s, "photo.jpg");
    free(s);
    s = p2p_tus_name_candidate("photo.jpg", 3);
    assert_string_equal(s, "photo-3.jpg");
    free(s);
    s = p2p_tus_name_candidate("README", 1);
    assert_string_equal(s, "README-1");
    free(s);
    char longname[256];
    memset(longname, 'a', 251);
    strcpy(longname + 251, ".bin");
    s = p2p_tus_name_candidate(longname, 12);
    assert_true(strlen(s) <= 255);
    assert_string_equal(s + strlen(s) - 7, "-12.bin");
    free(s);
}

static void test_file_name(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"x.ok", "x_ok"},           {"y.seed", "y_seed"},     {"z.bitfield", "z_bitfield"},
        {"a.seed.ok", "a.seed_ok"}, {"photo.jpg", "photo.jpg"}, {"okay", "okay"},
        {"../../x.ok", "x_ok"},     {".ok", "ok"},            {"x.OK", "x.OK"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = p2p_tus_file_name((const uint8_t *)cases[i][0], strlen(cases[i][0]));
        assert_string_equal(s, cases[i][1]);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_strict),   cmocka_unit_test(test_meta_ok),
        cmocka_unit_test(test_meta_bad),     cmocka_unit_test(test_checksum),
        cmocka_unit_test(test_ids_urls),     cmocka_unit_test(test_concat),
        cmocka_unit_test(test_date_host_ct), cmocka_unit_test(test_name_candidates),
        cmocka_unit_test(test_file_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
