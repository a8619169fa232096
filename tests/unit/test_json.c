/* Unit tests for src/common/json.c: strict object parsing, typed getters, dump, error bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/json.h"

static json_t *parse(const char *s, char *err, size_t errlen)
{
    return p2p_json_parse_object(s, strlen(s), err, errlen);
}

static void test_parse_ok(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *o = parse("  {\"a\": 1, \"b\": [true, null]}\n\t ", err, sizeof err);
    assert_non_null(o);
    assert_true(json_is_object(o));
    assert_int_equal(json_object_size(o), 2);
    json_decref(o);
    /* Not NUL-terminated: only len bytes are read. */
    const char buf[] = "{\"x\":2}GARBAGE";
    o = p2p_json_parse_object(buf, 7, err, sizeof err);
    assert_non_null(o);
    json_decref(o);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"a\":1,\"a\":2}",       /* duplicate key */
        "{\"o\":{\"k\":1,\"k\":1}}", /* duplicate in a nested object */
        "[1,2]",                   /* array at the top */
        "\"str\"",
        "42",
        "null",
        "{\"a\":1} {\"b\":2}",     /* trailing value */
        "{\"a\":1}x",              /* trailing garbage */
        "{\"a\":1",                /* truncated */
        "",                        /* empty */
        "{\"a\":\"x\\u0000y\"}",   /* NUL inside a string */
        "{\"a\":\"\xff\"}",        /* invalid UTF-8 */
        "{a:1}",                   /* unquoted key */
        "{\"a\":99999999999999999999999}", /* integer overflow */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        json_t *o = parse(bad[i], err, sizeof err);
        if (o)
            fail_msg("accepted: %s", bad[i]);
        assert_true(strlen(err) > 0);
        assert_non_null(strstr(err, "invalid JSON"));
    }
    char err[256];
    assert_null(p2p_json_parse_object(NULL, 0, err, sizeof err));
}

static void test_parse_error_position(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(parse("{\n\"a\": 1,\n\"b\": }", err, sizeof err));
    assert_non_null(strstr(err, "line 3"));
    assert_null(parse("{\"k\":1,\"k\":2}", err, sizeof err));
    assert_non_null(strstr(err, "duplicate"));
}

static void test_get_u64(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *o = parse("{\"pieceCount\": 12, \"zero\": 0, \"neg\": -1, \"frac\": 1.5, "
                      "\"whole\": 2.0, \"exp\": 1e3, \"s\": \"12\", \"b\": true, \"n\": null, "
                      "\"big\": 9223372036854775807, \"arr\": [1]}",
                      err, sizeof err);
    assert_non_null(o);
    uint64_t v = 77;
    assert_int_equal(p2p_json_get_u64(o, "pieceCount", true, UINT64_MAX, &v, err, sizeof err), 0);
    assert_int_equal(v, 12);
    assert_int_equal(p2p_json_get_u64(o, "zero", true, 10, &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(p2p_json_get_u64(o, "big", true, UINT64_MAX, &v, err, sizeof err), 0);
    assert_int_equal(v, 9223372036854775807ULL);
    /* max is inclusive */
    assert_int_equal(p2p_json_get_u64(o, "pieceCount", true, 12, &v, err, sizeof err), 0);
    assert_int_equal(p2p_json_get_u64(o, "pieceCount", true, 11, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "field 'pieceCount'"));
    assert_non_null(strstr(err, "maximum 11"));

    static const char *const bad[] = {"neg", "frac", "whole", "exp", "s", "b", "arr"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 77;
        err[0] = '\0';
        assert_int_equal(p2p_json_get_u64(o, bad[i], false, UINT64_MAX, &v, err, sizeof err), -1);
        assert_int_equal(v, 77);
        char want[64];
        snprintf(want, sizeof want, "field '%s': expected a", bad[i]);
        if (!strstr(err, want))
            fail_msg("%s: message '%s'", bad[i], err);
    }
    assert_int_equal(p2p_json_get_u64(o, "frac", true, UINT64_MAX, &v, err, sizeof err), -1);
    assert_string_equal(err, "field 'frac': expected an integer, got a number");
    assert_int_equal(p2p_json_get_u64(o, "neg", true, UINT64_MAX, &v, err, sizeof err), -1);
    assert_string_equal(err, "field 'neg': expected a non-negative integer");

    /* absent / null: 1 when optional (out untouched), -1 when required */
    v = 77;
    assert_int_equal(p2p_json_get_u64(o, "missing", false, UINT64_MAX, &v, err, sizeof err), 1);
    assert_int_equal(p2p_json_get_u64(o, "n", false, UINT64_MAX, &v, err, sizeof err), 1);
    assert_int_equal(v, 77);
    assert_int_equal(p2p_json_get_u64(o, "missing", true, UINT64_MAX, &v, err, sizeof err), -1);
    assert_string_equal(err, "field 'missing': missing");
    json_decref(o);
}

static void test_get_str_bool_number(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *o = parse("{\"fileName\": \"a.bin\", \"stopped\": false, \"progress\": 0.5, "
                      "\"i\": 3, \"num\": 7}",
                      err, sizeof err);
    assert_non_null(o);
    const char *s = NULL;
    assert_int_equal(p2p_json_get_str(o, "fileName", true, &s, err, sizeof err), 0);
    assert_string_equal(s, "a.bin");
    assert_int_equal(p2p_json_get_str(o, "num", true, &s, err, sizeof err), -1);
    assert_string_equal(err, "field 'num': expected a string, got an integer");
    assert_int_equal(p2p_json_get_str(o, "nope", false, &s, err, sizeof err), 1);

    bool b = true;
    assert_int_equal(p2p_json_get_bool(o, "stopped", true, &b, err, sizeof err), 0);
    assert_false(b);
    assert_int_equal(p2p_json_get_bool(o, "fileName", true, &b, err, sizeof err), -1);
    assert_string_equal(err, "field 'fileName': expected a boolean, got a string");
    assert_int_equal(p2p_json_get_bool(o, "i", true, &b, err, sizeof err), -1);

    double d = 0;
    assert_int_equal(p2p_json_get_number(o, "progress", true, &d, err, sizeof err), 0);
    assert_true(d > 0.49 && d < 0.51);
    assert_int_equal(p2p_json_get_number(o, "i", true, &d, err, sizeof err), 0);
    assert_true(d > 2.9 && d < 3.1);
    assert_int_equal(p2p_json_get_number(o, "stopped", true, &d, err, sizeof err), -1);
    assert_string_equal(err, "field 'stopped': expected a number, got a boolean");

    /* A string with an embedded NUL built programmatically is refused by get_str. */
    json_object_set_new(o, "nul", json_stringn("a\0b", 3));
    assert_int_equal(p2p_json_get_str(o, "nul", true, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "field 'nul'"));

    /* Not an object */
    json_t *arr = json_array();
    assert_int_equal(p2p_json_get_str(arr, "x", false, &s, err, sizeof err), -1);
    json_decref(arr);
    json_decref(o);
}

static void test_dump_and_error(void **state)
{
    (void)state;
    json_t *e = p2p_json_error("E001", "bad \"seed\"");
    size_t len = 0;
    char *s = p2p_json_dump(e, &len);
    assert_string_equal(s, "{\"code\":\"E001\",\"msg\":\"bad \\\"seed\\\"\"}");
    assert_int_equal(len, strlen(s));
    free(s);
    json_decref(e);

    /* invalid UTF-8 in a message is replaced, never dropped */
    e = p2p_json_error("E001", "name \xff\xfe.");
    s = p2p_json_dump(e, NULL);
    assert_string_equal(s, "{\"code\":\"E001\",\"msg\":\"name ??.\"}");
    free(s);
    json_decref(e);

    json_t *arr = json_pack("[i,s]", 1, "x");
    s = p2p_json_dump(arr, &len);
    assert_string_equal(s, "[1,\"x\"]");
    assert_int_equal(len, 7);
    free(s);
    json_decref(arr);

    /* A round trip through parse keeps the fields. */
    char err[128];
    json_t *o = parse("{\"a\":[1,2,{\"b\":\"c\"}],\"d\":null}", err, sizeof err);
    s = p2p_json_dump(o, &len);
    assert_string_equal(s, "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":null}");
    free(s);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_error_position),
        cmocka_unit_test(test_get_u64),
        cmocka_unit_test(test_get_str_bool_number),
        cmocka_unit_test(test_dump_and_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
