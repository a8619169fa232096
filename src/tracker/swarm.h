/* The tracker's in-memory state: nodes (id -> address, zone, last heartbeat), files (infoHash ->
 * piece count, holders' bitfields, per-piece holder counts), the v1 pieceID map, expiry and
 * peer selection. Pure logic, no I/O: the caller passes the time. */
#ifndef P2P_TRACKER_SWARM_H
#define P2P_TRACKER_SWARM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "common/bitfield.h"
#include "tracker/hmap.h"

#define P2P_SWARM_MAX_ID 128        /* nodeId bytes */
#define P2P_SWARM_MAX_ADDR 262      /* "host:port", host up to 255 */
#define P2P_SWARM_MAX_ZONE 64
#define P2P_SWARM_MAX_NAME 255      /* fileName bytes */
#define P2P_SWARM_HASH_LEN 32       /* infoHash bytes (64 hex) */
#define P2P_SWARM_V1_ID_LEN 20      /* v1 pieceID bytes (40 hex SHA-1) */
#define P2P_SWARM_V1_LIST 5         /* /v1/nodeList answers at most this many */
#define P2P_SWARM_MAX_SRC 64        /* request source IP, "1.2.3.4" or "[v6]" */
#define P2P_SWARM_HOLDER_COST 64    /* bytes charged per (node, file) pair besides its bits */
#define P2P_SWARM_V1_PAIR_COST 16   /* bytes charged per (node, v1 pieceID) pair */

struct p2p_swarm_file;
struct p2p_swarm_v1piece;

/** An interned zone name, shared by the nodes in it: zones compare by pointer. */
struct p2p_swarm_zone {
    char *name;
    uint32_t refs; /* nodes in this zone */
};

/** One (node, file) pair: 24 bytes plus the bitfield, allocated as one block (with the two
 *  array slots pointing at it, about 48 bytes of overhead per pair besides the bits). */
struct p2p_swarm_holder {
    struct p2p_swarm_node *node;
    struct p2p_swarm_file *file;
    uint32_t file_pos; /* index in file->holders */
    uint32_t count;    /* pieces held */
    uint8_t bits[];    /* P2P_BITFIELD_BYTES(file->npieces), BitTorrent order, spare bits 0 */
};

struct p2p_swarm_node {
    /* id, addr and zone live NUL-terminated in one block (strs), for locality when peer
     * lists are written; their lengths are kept so writers need no strlen. */
    char *id;
    char *addr;        /* "" until the first heartbeat */
    char *zone;        /* "" = none */
    char *src;         /* source IP of the heartbeat that set addr ("" = unknown) */
    char *strs;
    uint16_t id_len, addr_len, zone_len;
    struct p2p_swarm_zone *zone_ref; /* NULL for the empty zone */
    uint64_t last_ms;  /* last heartbeat or report */
    bool heartbeated;  /* created or revived by a heartbeat since it (re)appeared */
    struct p2p_swarm_node *lru_prev, *lru_next; /* oldest first */
    struct p2p_swarm_holder **holders;
    uint32_t nholders, capholders;
    struct p2p_swarm_v1piece **v1;
    uint32_t nv1, capv1;
};

struct p2p_swarm_file {
    uint8_t hash[P2P_SWARM_HASH_LEN];
    char hex[2 * P2P_SWARM_HASH_LEN + 1];
    char *name;               /* "" if never given */
    uint32_t npieces;
    /* Per piece: how many holders have it. uint32_t, not uint16_t: a count reaches max_nodes
     * (default 100000, above 65535). */
    uint32_t *piece_holders;
    /* Histogram of piece_holders (hist[c] = pieces held by exactly c holders, c <= nholders),
     * so the rarest count is kept incrementally instead of by a scan of every piece. */
    uint32_t *hist;
    uint32_t hist_cap;
    uint32_t rarest;          /* min of piece_holders (0 when npieces == 0) */
    uint32_t nseeders;        /* holders with every piece */
    uint32_t nactive;         /* holders holding at least one piece (every holder if npieces 0) */
    struct p2p_swarm_holder **holders;
    uint32_t nholders, capholders;
};

struct p2p_swarm_v1piece {
    uint8_t id[P2P_SWARM_V1_ID_LEN];
    struct p2p_swarm_node **holders;
    uint32_t nholders, capholders;
};

struct p2p_swarm_limits {
    uint64_t expire_ms;      /* a node silent longer than this is dead */
    uint64_t max_nodes;      /* 0 = unlimited */
    uint64_t max_files;
    uint64_t max_pieces;     /* largest pieceCount accepted */
    uint64_t v1_max_pieces;  /* distinct v1 pieceIDs, and per node */
    uint64_t max_total_pieces; /* sum of pieceCount over all files; 0 = unlimited */
    uint64_t max_holder_bytes; /* bytes of holder entries (bits + P2P_SWARM_HOLDER_COST each)
                                * and v1 pairs (P2P_SWARM_V1_PAIR_COST each); 0 = unlimited */
};

struct p2p_swarm {
    struct p2p_hmap nodes;   /* id -> node */
    struct p2p_hmap files;   /* hash -> file */
    struct p2p_hmap v1;      /* pieceID -> v1piece */
    struct p2p_hmap zones;   /* name -> zone */
    struct p2p_swarm_holder **spill; /* scratch for peer selection */
    size_t spill_cap;
    struct p2p_swarm_node *lru_head, *lru_tail;
    struct p2p_swarm_limits lim;
    uint64_t nholders;
    uint64_t expired_total;  /* nodes removed by expiry */
    uint64_t total_pieces;   /* sum of npieces over files (budget max_total_pieces) */
    uint64_t holder_bytes;   /* charged against max_holder_bytes */
};

/** Initialises an empty swarm with the given limits (copied). */
void p2p_swarm_init(struct p2p_swarm *sw, const struct p2p_swarm_limits *lim);
/** Frees every node, file and piece. */
void p2p_swarm_cleanup(struct p2p_swarm *sw);

/**
 * A heartbeat from id (strings copied, each shorter than 64 KiB: callers validate them against
 * the P2P_SWARM_MAX_* sizes; addr non-empty, zone may be NULL or ""), sent from source IP src
 * (the request's peer address without its port; NULL or "" = unknown, not checked). Creates or
 * refreshes the node. *known is false when the node was absent, or present only through
 * reports since it (re)appeared: the node must then re-report everything in full.
 * A live session is bound to the source IP of the heartbeat that set its address: a heartbeat
 * from another IP may refresh it but not change its addr or zone.
 * Returns 0, -EUSERS when a new node would exceed max_nodes, or -EADDRINUSE for an address or
 * zone change of a live session from another source IP (nothing is changed then).
 */
int p2p_swarm_heartbeat(struct p2p_swarm *sw, const char *id, const char *addr, const char *zone,
                        const char *src, uint64_t now_ms, bool *known);

/**
 * Full report: node id holds exactly the pieces of bits[0..len) (BitTorrent bitfield of
 * npieces bits) of file hash; name may be NULL. Creates the node (not heartbeated, no address)
 * and the file if needed. A report holding no piece never creates a file (it is a no-op
 * returning 0 for an unknown file), and a file is removed as soon as none of its holders holds
 * a piece (so a squatter's piece count cannot outlive its claims).
 * Returns 0; -EINVAL if len or the spare bits are wrong; -EFBIG if npieces > max_pieces;
 * -EEXIST if the file is known with another piece count; -EUSERS when max_nodes, -ENFILE when
 * max_files is reached; -ENOBUFS when a new file would exceed max_total_pieces, -EDQUOT when a
 * new holder entry would exceed max_holder_bytes.
 */
int p2p_swarm_report_full(struct p2p_swarm *sw, const char *id, const uint8_t hash[32],
                          uint32_t npieces, const char *name, const uint8_t *bits, size_t len,
                          uint64_t now_ms);
/** Increment: node id now also holds pieces idx[0..n). Errors as report_full; -EINVAL if an
 *  index is >= npieces (nothing is applied then). n == 0 never creates a file. */
int p2p_swarm_report_have(struct p2p_swarm *sw, const char *id, const uint8_t hash[32],
                          uint32_t npieces, const char *name, const uint32_t *idx, size_t n,
                          uint64_t now_ms);
/** The node stopped sharing the file: its holder entry goes. Returns 0 (also if absent). */
int p2p_swarm_report_stopped(struct p2p_swarm *sw, const char *id, const uint8_t hash[32],
                             uint64_t now_ms);

/** The file with this infoHash (borrowed), or NULL. */
struct p2p_swarm_file *p2p_swarm_file_get(const struct p2p_swarm *sw, const uint8_t hash[32]);
/** The node with this id (borrowed), or NULL. */
struct p2p_swarm_node *p2p_swarm_node_get(const struct p2p_swarm *sw, const char *id);
/** node's entry for file (borrowed), or NULL; O(files the node holds). */
struct p2p_swarm_holder *p2p_swarm_holder_get(const struct p2p_swarm_node *node,
                                              const struct p2p_swarm_file *file);

/**
 * Peer selection for asker_id on file: live holders of at least one piece that have an address,
 * never the asker; those holding a piece the asker lacks first, then same zone first (zone, or
 * if NULL/"" the asker's own zone), random among equals. Writes at most max holders to out
 * (borrowed, valid until the swarm changes) and returns how many. Uses scratch space kept in
 * sw (hence not const).
 */
size_t p2p_swarm_peers(struct p2p_swarm *sw, const struct p2p_swarm_file *file,
                       const char *asker_id, const char *zone, size_t max, uint64_t now_ms,
                       struct p2p_swarm_holder **out);

/** Removes every node silent for more than expire_ms; returns how many went. */
size_t p2p_swarm_expire(struct p2p_swarm *sw, uint64_t now_ms);

/**
 * v1 compatibility: node id holds the piece with SHA-1 id pid. Creates the node if needed (no
 * address until it heartbeats). Returns 0, -EUSERS when max_nodes is reached, -ENOSPC when
 * the v1 piece limit (total or for this node) is reached, or -EDQUOT when max_holder_bytes is.
 */
int p2p_swarm_v1_report(struct p2p_swarm *sw, const char *id, const uint8_t pid[20],
                        uint64_t now_ms);
/** Up to P2P_SWARM_V1_LIST random live holders of pid that have an address; returns count. */
size_t p2p_swarm_v1_nodes(const struct p2p_swarm *sw, const uint8_t pid[20], uint64_t now_ms,
                          struct p2p_swarm_node **out);

/** Number of nodes. */
static inline size_t p2p_swarm_nnodes(const struct p2p_swarm *sw)
{
    return sw->nodes.count;
}
/** Number of files. */
static inline size_t p2p_swarm_nfiles(const struct p2p_swarm *sw)
{
    return sw->files.count;
}
/** Number of distinct v1 pieceIDs. ((node, file) pairs: sw->nholders.) */
static inline size_t p2p_swarm_nv1(const struct p2p_swarm *sw)
{
    return sw->v1.count;
}

#endif
