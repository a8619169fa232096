/* The seed model (docs/PROTOCOL.md "Seed files"): parse and validate v1/v2, serialize, infoHash. */
#ifndef P2P_SEED_SEED_H
#define P2P_SEED_SEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define P2P_SEED_MAX_BYTES (64u << 20)      /* seed files are capped at 64 MiB */
#define P2P_SEED_V1_PIECE_LENGTH 1048576u
#define P2P_SEED_MIN_PIECE (16u << 10)
#define P2P_SEED_MAX_PIECE (64u << 20)
#define P2P_SEED_MAX_TRACKERS 16
#define P2P_SEED_MAX_DIGEST 32
#define P2P_SEED_MAX_LENGTH (1ull << 50)    /* 1 PiB: larger "length" values are rejected */
#define P2P_SEED_MAX_TRACKER_LEN 261        /* "[" 253-byte host "]:" 5-digit port */

enum p2p_hash_algo { P2P_HASH_SHA1 = 1, P2P_HASH_SHA256 = 2 };

struct p2p_seed_piece {
    uint8_t digest[P2P_SEED_MAX_DIGEST]; /* first p2p_hash_len(algo) bytes used */
};

struct p2p_seed {
    int version;                 /* 1 (no "version" key) or 2 */
    char *file_name;
    char *tracker_addr;          /* "host:port" (trackers[0] if absent in v2) */
    char **trackers;             /* at least one */
    size_t ntrackers;
    uint64_t length;
    uint64_t piece_length;
    enum p2p_hash_algo algo;
    struct p2p_seed_piece *pieces;
    uint32_t npieces;
    char info_hash[65];          /* lowercase hex */
    char *created_at;            /* as read, or set on creation */
};

/** Digest length of algo (20 or 32) and its name ("sha1", "sha256"). */
size_t p2p_hash_len(enum p2p_hash_algo algo);
const char *p2p_hash_name(enum p2p_hash_algo algo);

/**
 * Checks that addr is a tracker address as seeds carry it: "host:port" or "[v6]:port", host of
 * letters, digits, '.', '-', '_' (or an IPv6 literal in brackets), port 1..65535, no scheme,
 * path or whitespace, at most P2P_SEED_MAX_TRACKER_LEN bytes. Returns 0, or -1 with a static
 * reason in *why (if why is non-NULL).
 */
int p2p_seed_check_tracker(const char *addr, const char **why);

/** Length of piece i (the last one may be short). */
uint64_t p2p_seed_piece_len(const struct p2p_seed *s, uint32_t i);

/**
 * Parses and validates a seed from JSON text (buf[0..len), len <= P2P_SEED_MAX_BYTES) with every
 * rule of the seed format; on failure returns -1 and a message naming the field in err.
 * On success fills *out (free with p2p_seed_cleanup) and computes info_hash.
 */
int p2p_seed_parse(const char *buf, size_t len, struct p2p_seed *out, char *err, size_t errlen);

/** Same from an already-parsed jansson object (json_t *, declared void * to keep jansson out). */
int p2p_seed_from_json(void *obj, struct p2p_seed *out, char *err, size_t errlen);

/** Computes the infoHash of s into s->info_hash. */
void p2p_seed_compute_info_hash(struct p2p_seed *s);

/**
 * Serializes s as pretty JSON (v1: exactly the original's fields; v2: all fields). Returns a new
 * NUL-terminated string (caller frees).
 */
char *p2p_seed_serialize(const struct p2p_seed *s, size_t *len);
/** The seed as a jansson object (new reference, returned as void *). */
void *p2p_seed_to_json(const struct p2p_seed *s);

/** Frees members (not the struct); safe on a zeroed struct. */
void p2p_seed_cleanup(struct p2p_seed *s);

/** Default piece length: clamp(next_pow2(length / 1000), 1 MiB, 16 MiB). */
uint64_t p2p_seed_default_piece_length(uint64_t length);

/** Hashes one buffer with algo into digest (OpenSSL EVP). Thread-safe. */
void p2p_seed_hash(enum p2p_hash_algo algo, const void *data, size_t len, uint8_t *digest);
/** True if data matches piece i's digest. */
bool p2p_seed_verify_piece(const struct p2p_seed *s, uint32_t i, const void *data, size_t len);

#endif
