/* Unit tests for src/common utilities: bitfield, base64, safe names, atomic write, parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "common/bitfield.h"
#include "common/fsx.h"
#include "common/util.h"

static void test_bitfield_order_and_count(void **state)
{
    (void)state;
    struct p2p_bitfield bf;
    p2p_bitfield_init(&bf, 10);
    assert_true(p2p_bitfield_set(&bf, 0));
    assert_false(p2p_bitfield_set(&bf, 0));
    assert_true(p2p_bitfield_set(&bf, 9));
    assert_false(p2p_bitfield_set(&bf, 10)); /* out of range ignored */
    assert_int_equal(bf.bits[0], 0x80);      /* piece 0 is the high bit of byte 0 */
    assert_int_equal(bf.bits[1], 0x40);
    assert_int_equal(bf.count, 2);
    assert_true(p2p_bitfield_get(&bf, 9));
    assert_false(p2p_bitfield_get(&bf, 8));
    assert_false(p2p_bitfield_get(&bf, 1000));
    assert_true(p2p_bitfield_clear(&bf, 0));
    assert_int_equal(bf.count, 1);
    p2p_bitfield_set_all(&bf);
    assert_int_equal(bf.count, 10);
    assert_int_equal(bf.bits[1], 0xc0); /* spare bits stay zero */
    assert_true(p2p_bitfield_full(&bf));
    p2p_bitfield_cleanup(&bf);
}

static void test_bitfield_load_rejects_bad(void **state)
{
    (void)state;
    struct p2p_bitfield bf;
    p2p_bitfield_init(&bf, 10);
    uint8_t ok[2] = {0xff, 0xc0}, spare[2] = {0xff, 0xe0}, shortb[1] = {0xff};
    assert_int_equal(p2p_bitfield_load(&bf, ok, 2), 0);
    assert_int_equal(bf.count, 10);
    assert_int_equal(p2p_bitfield_load(&bf, spare, 2), -1);
    assert_int_equal(p2p_bitfield_load(&bf, shortb, 1), -1);
    assert_int_equal(bf.count, 10); /* unchanged on failure */
    p2p_bitfield_cleanup(&bf);

    p2p_bitfield_init(&bf, 0);
    assert_int_equal(p2p_bitfield_load(&bf, ok, 0), 0);
    assert_true(p2p_bitfield_full(&bf));
    p2p_bitfield_cleanup(&bf);
}

static void test_base64_roundtrip(void **state)
{
    (void)state;
    static const struct { const char *raw, *b64; } v[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < P2P_ARRAY_LEN(v); i++) {
        char *e = p2p_base64_encode((const uint8_t *)v[i].raw, strlen(v[i].raw));
        assert_string_equal(e, v[i].b64);
        free(e);
        size_t n = 99;
        uint8_t *d = p2p_base64_decode(v[i].b64, strlen(v[i].b64), &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(v[i].raw));
        assert_memory_equal(d, v[i].raw, n);
        free(d);
    }
    uint8_t bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (uint8_t)i;
    char *e = p2p_base64_encode(bin, sizeof bin);
    size_t n;
    uint8_t *d = p2p_base64_decode(e, strlen(e), &n);
    assert_int_equal(n, 256);
    assert_memory_equal(d, bin, 256);
    free(d);
    free(e);
}

static void test_base64_rejects_bad(void **state)
{
    (void)state;
    static const char *bad[] = {"Zg=", "Zg", "Z===", "Zm9v\n", "Zm 9", "Zm9-", "Zh==", "Zm9=",
                                "====", "Zg==Zg==", "Zm_v"};
    for (size_t i = 0; i < P2P_ARRAY_LEN(bad); i++) {
        size_t n;
        uint8_t *d = p2p_base64_decode(bad[i], strlen(bad[i]), &n);
        if (d)
            fail_msg("accepted bad base64 '%s'", bad[i]);
    }
}

static void test_name_checks(void **state)
{
    (void)state;
    static const char *good[] = {"a", "image.qcow2", "file name with spaces", "x..y",
                                 "\xe4\xb8\xad\xe6\x96\x87.txt"};
    for (size_t i = 0; i < P2P_ARRAY_LEN(good); i++)
        assert_true(p2p_name_is_safe(good[i], strlen(good[i]), NULL));
    static const char *bad[] = {"", ".", "..", "../x", "a/b", "a\\b", ".hidden", "a\tb",
                                "a\x7f", "\xff\xfe", "\xc0\xaf", "\xed\xa0\x80"};
    for (size_t i = 0; i < P2P_ARRAY_LEN(bad); i++) {
        const char *why = NULL;
        if (p2p_name_is_safe(bad[i], strlen(bad[i]), &why))
            fail_msg("accepted unsafe name #%zu", i);
        assert_non_null(why);
    }
    assert_false(p2p_name_is_safe("a\0b", 3, NULL));
    char longname[300];
    memset(longname, 'a', sizeof longname);
    assert_true(p2p_name_is_safe(longname, 255, NULL));
    assert_false(p2p_name_is_safe(longname, 256, NULL));
}

static void test_name_sanitize(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } v[] = {
        {"../../etc/passwd", "passwd"}, {"a\\b\\c.txt", "c.txt"}, {"..", "file"},
        {"...hidden", "hidden"}, {"", "file"}, {"ok name.bin", "ok name.bin"},
        {"a\nb", "a_b"}, {"dir/", "file"},
    };
    for (size_t i = 0; i < P2P_ARRAY_LEN(v); i++) {
        char *s = p2p_name_sanitize(v[i].in, strlen(v[i].in));
        assert_string_equal(s, v[i].out);
        assert_true(p2p_name_is_safe(s, strlen(s), NULL));
        free(s);
    }
    char longname[600];
    memset(longname, 'b', sizeof longname);
    char *s = p2p_name_sanitize(longname, sizeof longname);
    assert_int_equal(strlen(s), 255);
    free(s);
    /* a multi-byte character straddling the 255-byte limit is dropped, not cut */
    char mb[300];
    memset(mb, 'c', 254);
    memcpy(mb + 254, "\xe4\xb8\xad", 3);
    s = p2p_name_sanitize(mb, 257);
    assert_int_equal(strlen(s), 254);
    assert_true(p2p_name_is_safe(s, strlen(s), NULL));
    free(s);
}

static void test_path_join(void **state)
{
    (void)state;
    char *p = p2p_path_join("/data/", "x.bin");
    assert_string_equal(p, "/data/x.bin");
    free(p);
    assert_null(p2p_path_join("/data", "../x"));
    assert_null(p2p_path_join("/data", "a/b"));
}

/* Removes a test's scratch directory. */
static void rm_tree(const char *dir)
{
    char *cmd = p2p_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* p2p_overwrite_file: creates, overwrites in place (same inode), cuts a longer old content,
 * never writes through a symlink, fails cleanly in a missing directory. */
static void test_overwrite_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/p2p-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = p2p_xasprintf("%s/f.bitfield", dir);
    char *buf;
    size_t n;
    struct stat st1, st2;
    assert_int_equal(p2p_overwrite_file(path, "longer-old", 10), 0);
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(p2p_overwrite_file(path, "abc", 3), 0);
    assert_int_equal(stat(path, &st2), 0);
    assert_true(st1.st_ino == st2.st_ino); /* in place: no rename */
    assert_int_equal(p2p_read_file(path, 100, &buf, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(buf, "abc");
    free(buf);
    assert_int_equal(p2p_overwrite_file(path, "xyz", 3), 0);
    assert_int_equal(p2p_read_file(path, 100, &buf, &n), 0);
    assert_string_equal(buf, "xyz");
    free(buf);
    /* a symlink planted in its place is not followed */
    char *target = p2p_xasprintf("%s/target", dir), *link = p2p_xasprintf("%s/l.bitfield", dir);
    assert_int_equal(p2p_overwrite_file(target, "keep", 4), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(p2p_overwrite_file(link, "evil", 4), -ELOOP);
    assert_int_equal(p2p_read_file(target, 100, &buf, &n), 0);
    assert_string_equal(buf, "keep");
    free(buf);
    char *bad = p2p_xasprintf("%s/missing/x", dir);
    assert_int_equal(p2p_overwrite_file(bad, "x", 1), -ENOENT);
    rm_tree(dir);
    free(bad);
    free(link);
    free(target);
    free(path);
}

static void test_atomic_write_and_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/p2p-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = p2p_xasprintf("%s/f.bitfield", dir);
    assert_int_equal(p2p_atomic_write(path, "hello", 5), 0);
    assert_int_equal(p2p_atomic_write(path, "world!", 6), 0);
    char *buf;
    size_t n;
    assert_int_equal(p2p_read_file(path, 100, &buf, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(buf, "world!");
    free(buf);
    assert_int_equal(p2p_read_file(path, 3, &buf, &n), -EFBIG);
    assert_int_equal(p2p_read_file(dir, 100, &buf, &n), -EISDIR);
    /* no temp files left behind */
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            files++;
    closedir(d);
    assert_int_equal(files, 1);
    /* a write into a missing directory fails cleanly */
    char *bad = p2p_xasprintf("%s/missing/x", dir);
    assert_int_equal(p2p_atomic_write(bad, "x", 1), -ENOENT);
    char *deep = p2p_xasprintf("%s/a/b/c", dir);
    assert_int_equal(p2p_mkdirs(deep), 0);
    assert_int_equal(p2p_mkdirs(deep), 0);
    assert_int_equal(p2p_mkdirs(path), -ENOTDIR);
    rm_tree(dir);
    free(deep);
    free(bad);
    free(path);
}

static void test_parse_u64_and_hex(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(p2p_parse_u64("0", 1, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(p2p_parse_u64("18446744073709551615", 20, &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(p2p_parse_u64("18446744073709551616", 20, &v), -1);
    assert_int_equal(p2p_parse_u64("-1", 2, &v), -1);
    assert_int_equal(p2p_parse_u64("+1", 2, &v), -1);
    assert_int_equal(p2p_parse_u64(" 1", 2, &v), -1);
    assert_int_equal(p2p_parse_u64("", 0, &v), -1);
    assert_int_equal(p2p_parse_u64("1x", 2, &v), -1);
    uint8_t b[3] = {0x00, 0xab, 0xff}, d[3];
    char hex[7];
    p2p_hex_encode(b, 3, hex);
    assert_string_equal(hex, "00abff");
    assert_int_equal(p2p_hex_decode("00ABff", 3, d), 0);
    assert_memory_equal(b, d, 3);
    assert_int_equal(p2p_hex_decode("0g", 1, d), -1);
    assert_true(p2p_is_lower_hex("00abff", 6));
    assert_false(p2p_is_lower_hex("00ABff", 6));
    char u[37];
    p2p_uuid4(u);
    assert_int_equal(strlen(u), 36);
    assert_int_equal(u[14], '4');
    for (int i = 0; i < 1000; i++)
        assert_true(p2p_rand_below(7) < 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bitfield_order_and_count),
        cmocka_unit_test(test_bitfield_load_rejects_bad),
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_base64_rejects_bad),
        cmocka_unit_test(test_name_checks),
        cmocka_unit_test(test_name_sanitize),
        cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_atomic_write_and_read),
        cmocka_unit_test(test_overwrite_file),
        cmocka_unit_test(test_parse_u64_and_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
