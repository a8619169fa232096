/* Fuzz target: the tracker's wire decoding (src/tracker/proto.c) behind p2p_json_parse_object:
 * heartbeat, v2 report (bitfield / have / stopped) and the original's v1 report bodies, and the
 * single-value validators used for query parameters. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bitfield.h"
#include "common/json.h"
#include "tracker/proto.h"
#include "fuzz.h"

#define MAX_BODY (1u << 20) /* the httpd cap for JSON bodies */

static void check_report(json_t *obj, uint64_t max_pieces)
{
    struct p2p_proto_report r;
    char err[256];
    memset(&r, 0, sizeof(r));
    err[0] = '\0';
    if (p2p_proto_report_decode(obj, max_pieces, &r, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(r.node_id && p2p_proto_valid_node_id(r.node_id));
    FUZZ_CHECK(r.npieces <= max_pieces);
    FUZZ_CHECK(!(r.bits && r.have));
    if (r.stopped)
        FUZZ_CHECK(!r.bits && !r.have);
    if (r.bits) {
        FUZZ_CHECK(r.bits_len == P2P_BITFIELD_BYTES(r.npieces));
        if (r.npieces % 8) /* spare bits are zero */
            FUZZ_CHECK((r.bits[r.bits_len - 1] & (0xffu >> (r.npieces % 8))) == 0);
    }
    if (r.have) {
        FUZZ_CHECK(r.nhave >= 1 && r.nhave <= r.npieces);
        for (size_t i = 0; i < r.nhave; i++)
            FUZZ_CHECK(r.have[i] < r.npieces);
    }
    p2p_proto_report_cleanup(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > MAX_BODY)
        return 0;
    char err[256];
    /* Byte 0 picks the max_pieces bound the report decoder runs with. */
    uint64_t max_pieces = (data[0] & 1) ? 1048576 : (uint64_t)(data[0] >> 1) + 1;
    json_t *obj = p2p_json_parse_object((const char *)data + 1, size - 1, err, sizeof(err));
    if (obj) {
        FUZZ_CHECK(json_is_object(obj));
        struct p2p_proto_heartbeat hb;
        if (p2p_proto_heartbeat_decode(obj, &hb, err, sizeof(err)) == 0) {
            FUZZ_CHECK(p2p_proto_valid_node_id(hb.node_id));
            FUZZ_CHECK(p2p_proto_valid_addr(hb.addr));
            FUZZ_CHECK(hb.zone && p2p_proto_valid_zone(hb.zone));
        }
        check_report(obj, max_pieces);
        struct p2p_proto_v1report v1;
        if (p2p_proto_v1report_decode(obj, &v1, err, sizeof(err)) == 0) {
            FUZZ_CHECK(v1.node_id && v1.file);
            FUZZ_CHECK(v1.progress >= 0.0 && v1.progress <= 1.0);
        }
        json_decref(obj);
    }
    /* The same bytes as one query value. */
    if (size <= 512) {
        char *s = strndup((const char *)data + 1, size - 1);
        FUZZ_CHECK(s != NULL);
        uint32_t max = 0;
        if (p2p_proto_parse_max(s, &max) == 0)
            FUZZ_CHECK(max >= 1 && max <= (1u << 31));
        uint8_t h[32];
        if (p2p_proto_info_hash(s, h) == 0)
            FUZZ_CHECK(strlen(s) == 64);
        (void)p2p_proto_valid_node_id(s);
        (void)p2p_proto_valid_addr(s);
        (void)p2p_proto_valid_zone(s);
        free(s);
    }
    return 0;
}
