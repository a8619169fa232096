/* Tracker request decoding: every network field is checked for presence, type, size and
 * character set before it reaches the swarm state. */
#include "tracker/proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bitfield.h"
#include "common/json.h"
#include "common/util.h"
#include "tracker/swarm.h"

#define ID_RULE "printable characters, no spaces, quotes or backslashes"

/* Printable ASCII without space, '"' and '\\', so these strings need no JSON escaping. */
static bool printable(const char *s, size_t maxlen, bool allow_empty)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= maxlen || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f ||
            s[n] == '"' || s[n] == '\\')
            return false;
    return allow_empty || n > 0;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

bool p2p_proto_valid_node_id(const char *s)
{
    return printable(s, P2P_SWARM_MAX_ID, false);
}

bool p2p_proto_valid_zone(const char *s)
{
    return printable(s, P2P_SWARM_MAX_ZONE, true);
}

bool p2p_proto_valid_addr(const char *s)
{
    if (!printable(s, P2P_SWARM_MAX_ADDR, false))
        return false;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    uint64_t port;
    if (p2p_parse_u64(colon + 1, strlen(colon + 1), &port) < 0 || port == 0 || port > 65535)
        return false;
    return true;
}

int p2p_proto_info_hash(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return -1;
    return p2p_hex_decode(s, 32, out);
}

int p2p_proto_heartbeat_decode(json_t *obj, struct p2p_proto_heartbeat *hb, char *err,
                               size_t errlen)
{
    memset(hb, 0, sizeof *hb);
    hb->zone = "";
    if (p2p_json_get_str(obj, "nodeId", true, &hb->node_id, err, errlen) < 0 ||
        p2p_json_get_str(obj, "addr", true, &hb->addr, err, errlen) < 0 ||
        p2p_json_get_str(obj, "zone", false, &hb->zone, err, errlen) < 0)
        return -1;
    if (!p2p_proto_valid_node_id(hb->node_id)) {
        snprintf(err, errlen, "field 'nodeId': 1 to %d " ID_RULE,
                 P2P_SWARM_MAX_ID);
        return -1;
    }
    if (!p2p_proto_valid_addr(hb->addr)) {
        snprintf(err, errlen, "field 'addr': expected host:port");
        return -1;
    }
    if (!p2p_proto_valid_zone(hb->zone)) {
        snprintf(err, errlen, "field 'zone': at most %d " ID_RULE,
                 P2P_SWARM_MAX_ZONE);
        return -1;
    }
    return 0;
}

void p2p_proto_report_cleanup(struct p2p_proto_report *r)
{
    free(r->bits);
    free(r->have);
    r->bits = NULL;
    r->have = NULL;
}

static int decode_bitfield(json_t *obj, struct p2p_proto_report *r, char *err, size_t errlen)
{
    const char *b64;
    if (p2p_json_get_str(obj, "bitfield", true, &b64, err, errlen) < 0)
        return -1;
    size_t want = P2P_BITFIELD_BYTES(r->npieces);
    /* Reject before decoding anything far too long. */
    if (strlen(b64) > 4 * ((want + 2) / 3)) {
        snprintf(err, errlen, "field 'bitfield': longer than %zu bytes for pieceCount %u", want,
                 r->npieces);
        return -1;
    }
    r->bits = p2p_base64_decode(b64, strlen(b64), &r->bits_len);
    if (!r->bits) {
        snprintf(err, errlen, "field 'bitfield': not standard padded base64");
        return -1;
    }
    if (r->bits_len != want) {
        snprintf(err, errlen, "field 'bitfield': %zu bytes, expected %zu for pieceCount %u",
                 r->bits_len, want, r->npieces);
        return -1;
    }
    if (r->npieces % 8 && (r->bits[want - 1] & (0xffu >> (r->npieces % 8)))) {
        snprintf(err, errlen, "field 'bitfield': spare bits after piece %u are set",
                 r->npieces - 1);
        return -1;
    }
    return 0;
}

static int decode_have(json_t *obj, struct p2p_proto_report *r, char *err, size_t errlen)
{
    json_t *arr = json_object_get(obj, "have");
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "field 'have': expected an array of piece indexes");
        return -1;
    }
    size_t n = json_array_size(arr);
    if (n > r->npieces) {
        snprintf(err, errlen, "field 'have': %zu entries, more than pieceCount %u", n,
                 r->npieces);
        return -1;
    }
    r->have = n ? p2p_xmalloc(n * sizeof *r->have) : NULL; /* "have":[] is a no-op report */
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
        if (x < 0 || (uint64_t)x >= r->npieces) {
            snprintf(err, errlen, "field 'have': entry %zu is not a piece index below %u", i,
                     r->npieces);
            return -1;
        }
        r->have[i] = (uint32_t)x;
    }
    r->nhave = n;
    return 0;
}

int p2p_proto_report_decode(json_t *obj, uint64_t max_pieces, struct p2p_proto_report *r,
                            char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    const char *hash;
    uint64_t npieces = 0;
    int rc = -1;
    if (p2p_json_get_str(obj, "nodeId", true, &r->node_id, err, errlen) < 0 ||
        p2p_json_get_str(obj, "infoHash", true, &hash, err, errlen) < 0 ||
        p2p_json_get_bool(obj, "stopped", false, &r->stopped, err, errlen) < 0 ||
        p2p_json_get_str(obj, "fileName", false, &r->file_name, err, errlen) < 0)
        goto out;
    if (!p2p_proto_valid_node_id(r->node_id)) {
        snprintf(err, errlen, "field 'nodeId': 1 to %d " ID_RULE,
                 P2P_SWARM_MAX_ID);
        goto out;
    }
    if (p2p_proto_info_hash(hash, r->hash) < 0) {
        snprintf(err, errlen, "field 'infoHash': expected 64 hex digits");
        goto out;
    }
    if (r->file_name &&
        (strlen(r->file_name) > P2P_SWARM_MAX_NAME || has_control(r->file_name))) {
        snprintf(err, errlen, "field 'fileName': at most %d bytes, no control characters",
                 P2P_SWARM_MAX_NAME);
        goto out;
    }
    /* max_pieces is checked as a range here so the message names the field and the limit. */
    if (p2p_json_get_u64(obj, "pieceCount", !r->stopped, UINT32_MAX, &npieces, err, errlen) < 0)
        goto out;
    if (npieces > max_pieces) {
        snprintf(err, errlen, "field 'pieceCount': %llu exceeds this tracker's max_pieces %llu",
                 (unsigned long long)npieces, (unsigned long long)max_pieces);
        goto out;
    }
    r->npieces = (uint32_t)npieces;
    if (r->stopped) {
        rc = 0;
        goto out;
    }
    bool has_bits = json_object_get(obj, "bitfield") != NULL;
    bool has_have = json_object_get(obj, "have") != NULL;
    if (has_bits == has_have) {
        snprintf(err, errlen, has_bits ? "fields 'bitfield' and 'have' are exclusive"
                                       : "field 'bitfield' or 'have' is required");
        goto out;
    }
    rc = has_bits ? decode_bitfield(obj, r, err, errlen) : decode_have(obj, r, err, errlen);
out:
    if (rc < 0)
        p2p_proto_report_cleanup(r);
    return rc;
}

int p2p_proto_v1report_decode(json_t *obj, struct p2p_proto_v1report *r, char *err,
                              size_t errlen)
{
    memset(r, 0, sizeof *r);
    const char *pid;
    r->file = "";
    if (p2p_json_get_str(obj, "pieceID", true, &pid, err, errlen) < 0 ||
        p2p_json_get_str(obj, "nodeID", true, &r->node_id, err, errlen) < 0 ||
        p2p_json_get_number(obj, "progress", true, &r->progress, err, errlen) < 0 ||
        p2p_json_get_str(obj, "file", false, &r->file, err, errlen) < 0)
        return -1;
    if (strlen(pid) != 40 || p2p_hex_decode(pid, 20, r->piece_id) < 0) {
        snprintf(err, errlen, "field 'pieceID': expected 40 hex digits (SHA-1)");
        return -1;
    }
    if (!p2p_proto_valid_node_id(r->node_id)) {
        snprintf(err, errlen, "field 'nodeID': 1 to %d " ID_RULE,
                 P2P_SWARM_MAX_ID);
        return -1;
    }
    if (!isfinite(r->progress) || r->progress < 0 || r->progress > 1) {
        snprintf(err, errlen, "field 'progress': expected a number from 0 to 1");
        return -1;
    }
    if (strlen(r->file) > P2P_SWARM_MAX_NAME) {
        snprintf(err, errlen, "field 'file': at most %d bytes", P2P_SWARM_MAX_NAME);
        return -1;
    }
    return 0;
}

int p2p_proto_parse_max(const char *s, uint32_t *out)
{
    uint64_t v;
    if (p2p_parse_u64(s, strlen(s), &v) < 0 || v == 0 || v > INT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}
