/* Unit tests of tracker request decoding with hostile inputs: missing, mistyped, oversized,
 * wrong-length and out-of-range fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/json.h"
#include "tracker/proto.h"

#define IH "75310ef2025a5e77fdc38960577351df973f0c484c8337bc321c11e85621a2e0"

static json_t *parse(const char *s)
{
    char err[256];
    json_t *o = p2p_json_parse_object(s, strlen(s), err, sizeof err);
    assert_non_null(o);
    return o;
}

/* The last parsed body: decoded strings borrow from it, so it lives until the next call. */
static json_t *last_body;

/* Decodes a report and returns rc; on failure checks err names the given field. */
static int report(const char *body, const char *field, struct p2p_proto_report *r)
{
    char err[256] = "";
    json_decref(last_body);
    json_t *o = last_body = parse(body);
    int rc = p2p_proto_report_decode(o, 1000, r, err, sizeof err);
    if (rc < 0 && field && !strstr(err, field))
        fail_msg("error '%s' does not name '%s'", err, field);
    if (rc == 0 && field)
        fail_msg("accepted a body that should fail on '%s': %s", field, body);
    return rc;
}

static void test_heartbeat(void **state)
{
    (void)state;
    struct p2p_proto_heartbeat hb;
    char err[256];
    json_t *o = parse("{\"nodeId\":\"n1\",\"addr\":\"10.0.0.1:35331\",\"zone\":\"eu\"}");
    assert_int_equal(p2p_proto_heartbeat_decode(o, &hb, err, sizeof err), 0);
    assert_string_equal(hb.node_id, "n1");
    assert_string_equal(hb.zone, "eu");
    json_decref(o);
    o = parse("{\"nodeId\":\"n1\",\"addr\":\"[::1]:80\"}");
    assert_int_equal(p2p_proto_heartbeat_decode(o, &hb, err, sizeof err), 0);
    assert_string_equal(hb.zone, "");
    json_decref(o);
    const char *bad[] = {
        "{\"addr\":\"1.2.3.4:5\"}",
        "{\"nodeId\":\"n1\"}",
        "{\"nodeId\":7,\"addr\":\"1.2.3.4:5\"}",
        "{\"nodeId\":\"\",\"addr\":\"1.2.3.4:5\"}",
        "{\"nodeId\":\"a b\",\"addr\":\"1.2.3.4:5\"}",
        "{\"nodeId\":\"n\",\"addr\":\"\"}",
        "{\"nodeId\":\"n\",\"addr\":\"1.2.3.4\"}",
        "{\"nodeId\":\"n\",\"addr\":\"1.2.3.4:0\"}",
        "{\"nodeId\":\"n\",\"addr\":\"1.2.3.4:65536\"}",
        "{\"nodeId\":\"n\",\"addr\":\":80\"}",
        "{\"nodeId\":\"n\",\"addr\":\"h:80\",\"zone\":5}",
        "{\"nodeId\":\"n\",\"addr\":\"h:80\",\"zone\":\"a\\nb\"}",
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        o = parse(bad[i]);
        if (p2p_proto_heartbeat_decode(o, &hb, err, sizeof err) == 0)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(strstr(err, "field '"));
        json_decref(o);
    }
    char big[400];
    memset(big, 'x', 200);
    big[200] = 0;
    char body[600];
    snprintf(body, sizeof body, "{\"nodeId\":\"%s\",\"addr\":\"h:1\"}", big);
    o = parse(body);
    assert_int_equal(p2p_proto_heartbeat_decode(o, &hb, err, sizeof err), -1);
    json_decref(o);
}

static void test_report_ok(void **state)
{
    (void)state;
    struct p2p_proto_report r;
    /* 10 pieces -> 2 bytes; 0xff 0xc0 = all ten. */
    assert_int_equal(report("{\"nodeId\":\"n\",\"infoHash\":\"" IH "\",\"pieceCount\":10,"
                            "\"bitfield\":\"/8A=\",\"fileName\":\"hello.txt\"}", NULL, &r), 0);
    assert_int_equal(r.npieces, 10);
    assert_int_equal(r.bits_len, 2);
    assert_int_equal(r.bits[0], 0xff);
    assert_int_equal(r.bits[1], 0xc0);
    assert_int_equal(r.hash[0], 0x75);
    assert_string_equal(r.file_name, "hello.txt");
    p2p_proto_report_cleanup(&r);
    assert_int_equal(report("{\"nodeId\":\"n\",\"infoHash\":\"" IH "\",\"pieceCount\":10,"
                            "\"have\":[0,9,3]}", NULL, &r), 0);
    assert_int_equal(r.nhave, 3);
    assert_int_equal(r.have[1], 9);
    p2p_proto_report_cleanup(&r);
    assert_int_equal(report("{\"nodeId\":\"n\",\"infoHash\":\"" IH "\",\"pieceCount\":10,"
                            "\"have\":[]}", NULL, &r), 0);
    p2p_proto_report_cleanup(&r);
    assert_int_equal(report("{\"nodeId\":\"n\",\"infoHash\":\"" IH "\",\"stopped\":true}", NULL,
                            &r), 0);
    assert_true(r.stopped);
    p2p_proto_report_cleanup(&r);
    /* Empty file: zero pieces, empty bitfield. */
    assert_int_equal(report("{\"nodeId\":\"n\",\"infoHash\":\"" IH "\",\"pieceCount\":0,"
                            "\"bitfield\":\"\"}", NULL, &r), 0);
    p2p_proto_report_cleanup(&r);
}

static void test_report_hostile(void **state)
{
    (void)state;
    struct p2p_proto_report r;
#define PRE "{\"nodeId\":\"n\",\"infoHash\":\"" IH "\","
    struct {
        const char *body, *field;
    } cases[] = {
        {"{\"infoHash\":\"" IH "\",\"pieceCount\":1,\"have\":[]}", "nodeId"},
        {"{\"nodeId\":\"n\",\"pieceCount\":1,\"have\":[]}", "infoHash"},
        {"{\"nodeId\":\"n\",\"infoHash\":\"abc\",\"pieceCount\":1,\"have\":[]}", "infoHash"},
        {"{\"nodeId\":\"n\",\"infoHash\":\"" IH "0\",\"pieceCount\":1,\"have\":[]}", "infoHash"},
        {"{\"nodeId\":\"n\",\"infoHash\":"
         "\"zz310ef2025a5e77fdc38960577351df973f0c484c8337bc321c11e85621a2e0\","
         "\"pieceCount\":1,\"have\":[]}", "infoHash"},
        {PRE "\"have\":[]}", "pieceCount"},
        {PRE "\"pieceCount\":\"10\",\"have\":[]}", "pieceCount"},
        {PRE "\"pieceCount\":-1,\"have\":[]}", "pieceCount"},
        {PRE "\"pieceCount\":1.5,\"have\":[]}", "pieceCount"},
        {PRE "\"pieceCount\":1001,\"have\":[]}", "max_pieces"},
        {PRE "\"pieceCount\":99999999999,\"have\":[]}", "pieceCount"},
        {PRE "\"pieceCount\":10}", "bitfield"},
        {PRE "\"pieceCount\":10,\"have\":[1],\"bitfield\":\"AAA=\"}", "exclusive"},
        {PRE "\"pieceCount\":10,\"bitfield\":\"AA==\"}", "bitfield"},        /* 1 byte */
        {PRE "\"pieceCount\":10,\"bitfield\":\"AAAA\"}", "bitfield"},        /* 3 bytes */
        {PRE "\"pieceCount\":10,\"bitfield\":\"/+A=\"}", "spare"},           /* bit 10 set */
        {PRE "\"pieceCount\":10,\"bitfield\":\"AA A=\"}", "bitfield"},
        {PRE "\"pieceCount\":10,\"bitfield\":\"AA\"}", "bitfield"},
        {PRE "\"pieceCount\":10,\"bitfield\":7}", "bitfield"},
        {PRE "\"pieceCount\":10,\"bitfield\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", "bitfield"},
        {PRE "\"pieceCount\":10,\"have\":[10]}", "have"},
        {PRE "\"pieceCount\":10,\"have\":[-1]}", "have"},
        {PRE "\"pieceCount\":10,\"have\":[\"1\"]}", "have"},
        {PRE "\"pieceCount\":10,\"have\":[1.0]}", "have"},
        {PRE "\"pieceCount\":10,\"have\":{}}", "have"},
        {PRE "\"pieceCount\":2,\"have\":[0,1,0]}", "have"},
        {PRE "\"pieceCount\":2,\"have\":[0],\"stopped\":\"yes\"}", "stopped"},
        {PRE "\"pieceCount\":2,\"have\":[0],\"fileName\":3}", "fileName"},
        {PRE "\"pieceCount\":2,\"have\":[0],\"fileName\":\"a\\u0001\"}", "fileName"},
        {"{\"nodeId\":[],\"infoHash\":\"" IH "\",\"pieceCount\":1,\"have\":[]}", "nodeId"},
        {NULL, NULL},
    };
    for (int i = 0; cases[i].body; i++)
        assert_int_equal(report(cases[i].body, cases[i].field, &r), -1);
#undef PRE
}

#define PID "{\"pieceID\":\"22596363b3de40b06f981fb85d82312e8c0ed511\","

static void test_v1report(void **state)
{
    (void)state;
    struct p2p_proto_v1report r;
    char err[256];
    json_t *o = parse(PID "\"nodeID\":"
                      "\"u-1\",\"progress\":0,\"file\":\"hello.txt\"}");
    assert_int_equal(p2p_proto_v1report_decode(o, &r, err, sizeof err), 0);
    assert_int_equal(r.piece_id[0], 0x22);
    assert_true(r.progress == 0.0);
    json_decref(o);
    o = parse(PID "\"nodeID\":\"u\","
              "\"progress\":0.98}");
    assert_int_equal(p2p_proto_v1report_decode(o, &r, err, sizeof err), 0);
    assert_string_equal(r.file, "");
    json_decref(o);
    const char *bad[] = {
        "{\"nodeID\":\"u\",\"progress\":1}",
        "{\"pieceID\":\"2259\",\"nodeID\":\"u\",\"progress\":1}",
        "{\"pieceID\":\"22596363b3de40b06f981fb85d82312e8c0ed511\",\"progress\":1}",
        PID "\"nodeId\":\"u\",\"progress\":1}",
        PID "\"nodeID\":\"u\"}",
        PID "\"nodeID\":\"u\",\"progress\":\"1\"}",
        PID "\"nodeID\":\"u\",\"progress\":2}",
        PID "\"nodeID\":\"u\",\"progress\":-0.5}",
        "{\"pieceID\":\"22596363b3de40b06f981fb85d82312e8c0ed51g\","
        "\"nodeID\":\"u\",\"progress\":1}",
        NULL,
    };
    for (int i = 0; bad[i]; i++) {
        o = parse(bad[i]);
        if (p2p_proto_v1report_decode(o, &r, err, sizeof err) == 0)
            fail_msg("accepted %s", bad[i]);
        json_decref(o);
    }
}

static void test_max_and_hash(void **state)
{
    (void)state;
    uint32_t m;
    assert_int_equal(p2p_proto_parse_max("5", &m), 0);
    assert_int_equal(m, 5);
    const char *bad[] = {"0", "", "-1", "+3", "1x", " 1", "99999999999999999999999", "3000000000",
                         NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(p2p_proto_parse_max(bad[i], &m), -1);
    uint8_t h[32];
    assert_int_equal(p2p_proto_info_hash(IH, h), 0);
    assert_int_equal(
        p2p_proto_info_hash("75310EF2025A5E77FDC38960577351DF973F0C484C8337BC321C11E85621A2E0", h),
        0);
    assert_int_equal(p2p_proto_info_hash("7531", h), -1);
    assert_true(p2p_proto_valid_node_id("550e8400-e29b-41d4-a716-446655440000"));
    assert_false(p2p_proto_valid_node_id("a\"b\x7f"));
    assert_true(p2p_proto_valid_zone(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat),  cmocka_unit_test(test_report_ok),
        cmocka_unit_test(test_report_hostile), cmocka_unit_test(test_v1report),
        cmocka_unit_test(test_max_and_hash),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(last_body);
    return rc;
}
