/* Tracker wire format: strict decoding of request bodies and queries (every field checked for
 * presence, type, length and characters), so handlers only see validated values. */
#ifndef P2P_TRACKER_PROTO_H
#define P2P_TRACKER_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <jansson.h>

struct p2p_proto_heartbeat {
    const char *node_id; /* borrowed from the JSON object */
    const char *addr;
    const char *zone;    /* "" if absent */
};

struct p2p_proto_report {
    const char *node_id;     /* borrowed */
    uint8_t hash[32];
    uint32_t npieces;        /* 0 when stopped and absent */
    const char *file_name;   /* NULL if absent */
    bool stopped;
    uint8_t *bits;           /* owned: full report, P2P_BITFIELD_BYTES(npieces) bytes */
    size_t bits_len;
    uint32_t *have;          /* owned: increment */
    size_t nhave;
};

struct p2p_proto_v1report {
    const char *node_id;     /* "nodeID", borrowed */
    uint8_t piece_id[20];
    double progress;
    const char *file;        /* "" if absent */
};

/** True for a node id: 1..P2P_SWARM_MAX_ID printable ASCII, no space, '"' or '\\'. */
bool p2p_proto_valid_node_id(const char *s);
/** True for "host:port" (port 1..65535, at most P2P_SWARM_MAX_ADDR bytes, same characters). */
bool p2p_proto_valid_addr(const char *s);
/** True for a zone: like a node id but 0..P2P_SWARM_MAX_ZONE characters. */
bool p2p_proto_valid_zone(const char *s);
/** Decodes a 64-hex-digit infoHash (either case) into 32 bytes; 0 or -1. */
int p2p_proto_info_hash(const char *s, uint8_t out[32]);

/**
 * Decode {"nodeId","addr","zone"?}. Strings are borrowed from obj. Returns 0, or -1 with a
 * message naming the field in err.
 */
int p2p_proto_heartbeat_decode(json_t *obj, struct p2p_proto_heartbeat *hb, char *err,
                               size_t errlen);

/**
 * Decode a /v2/report body: {"nodeId","infoHash","pieceCount","fileName"?} with exactly one of
 * "bitfield" (base64, exact length, spare bits zero) and "have" (indexes < pieceCount, at most
 * pieceCount of them), or "stopped":true (pieceCount then optional). pieceCount above
 * max_pieces is refused. Returns 0 (free with p2p_proto_report_cleanup) or -1 with err.
 */
int p2p_proto_report_decode(json_t *obj, uint64_t max_pieces, struct p2p_proto_report *r,
                            char *err, size_t errlen);
/** Frees the owned arrays of a decoded report (safe to call twice). */
void p2p_proto_report_cleanup(struct p2p_proto_report *r);

/** Decode the original's {"pieceID","nodeID","progress","file"?} (progress 0..1, 0 accepted). */
int p2p_proto_v1report_decode(json_t *obj, struct p2p_proto_v1report *r, char *err,
                              size_t errlen);

/** Parses the `max` query parameter: decimal 1..2^31; 0 or -1. */
int p2p_proto_parse_max(const char *s, uint32_t *out);

#endif
