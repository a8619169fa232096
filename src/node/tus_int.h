/* TUS internals shared by tus.c (protocol, locking, streaming), tus_store.c (disk state, jobs on
 * the thread pool) and tus_proto.c (pure header parsing, unit-tested on its own). */
#ifndef P2P_NODE_TUS_INT_H
#define P2P_NODE_TUS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/evp.h>

#include "node/tus.h"

#define P2P_TUS_VERSION "1.0.0"
#define P2P_TUS_EXTENSIONS                                                                         \
    "creation,creation-with-upload,creation-defer-length,termination,concatenation,checksum,"     \
    "checksum-trailer,expiration"
#define P2P_TUS_CK_ALGOS "sha1,md5,sha256"
#define P2P_TUS_CT "application/offset+octet-stream"

#define P2P_TUS_ID_LEN 32                /* 16 random bytes in hex */
#define P2P_TUS_BUF (256u * 1024)       /* one write buffer (P2P_TUS_NBUF per writer) */
#define P2P_TUS_BUF_SLACK (64u * 1024)   /* httpd data chunks are at most this */
#define P2P_TUS_MAX_UPLOADS 100000       /* uploads remembered at once (503 beyond) */
#define P2P_TUS_MAX_WRITERS 64           /* bodies streamed at once (503 beyond): 2.5 MiB each */
#define P2P_TUS_LOCK_WAIT_MS 10000       /* a request waits this long for the upload's lock */
#define P2P_TUS_MAX_PARTS 1024           /* partial uploads in one final */
#define P2P_TUS_MAX_META 64              /* Upload-Metadata pairs */
#define P2P_TUS_MAX_META_LEN (16u * 1024) /* Upload-Metadata header length (400 beyond) */
#define P2P_TUS_MAX_UNFINISHED 4096      /* unfinished uploads at once (503 beyond) */
#define P2P_TUS_META_BUDGET (64u << 20)  /* metadata + concat bytes held by all uploads */
#define P2P_TUS_FINISHED_KEEP_MS (24ull * 3600 * 1000) /* minimum record retention */
#define P2P_TUS_INFO_MAX (1u << 20)      /* .info files larger than this are ignored */
#define P2P_TUS_HOOK_TRIES 5             /* hook POST attempts (backoff 1, 2, 4, 8 s) */
#define P2P_TUS_MAX_HOOKS 1024           /* hook calls queued at once */

enum p2p_tus_algo { P2P_TUS_CK_NONE = 0, P2P_TUS_CK_SHA1, P2P_TUS_CK_MD5, P2P_TUS_CK_SHA256 };

/* ---- tus_proto.c: pure parsing (no I/O, no loop) ---- */

struct p2p_tus_meta_kv {
    char *key;
    uint8_t *val; /* decoded, NUL-terminated for convenience (may hold NULs) */
    size_t vlen;
};

struct p2p_tus_meta {
    struct p2p_tus_meta_kv kv[P2P_TUS_MAX_META];
    size_t n;
};

/**
 * Parses an Upload-Metadata value strictly: comma-separated "key" or "key SP base64" pairs
 * (spaces around a pair are allowed), keys non-empty printable ASCII without space or comma,
 * unique, values standard base64 with padding. Returns 0 and fills out (free with
 * p2p_tus_meta_cleanup), or -1 with a static reason in *why.
 */
int p2p_tus_meta_parse(const char *s, struct p2p_tus_meta *out, const char **why);
/** Frees the parsed pairs of m (m itself is caller storage); safe to call twice. */
void p2p_tus_meta_cleanup(struct p2p_tus_meta *m);
/** The decoded value of key (borrowed) and its length, or NULL if absent. */
const uint8_t *p2p_tus_meta_get(const struct p2p_tus_meta *m, const char *key, size_t *len);

/**
 * Strict standard base64 (RFC 4648 alphabet, '=' padding, length a multiple of 4) decode of
 * s[0..len) into out (at least len / 4 * 3 bytes). Returns the decoded length or -1.
 */
long p2p_tus_b64_decode(const char *s, size_t len, uint8_t *out);

/**
 * Parses "Upload-Checksum: <algo> <base64 digest>". Returns 0 (algo and digest set), -1 for a
 * malformed value or a digest of the wrong length, -2 for an unsupported algorithm.
 */
int p2p_tus_checksum_parse(const char *s, enum p2p_tus_algo *algo, uint8_t digest[64],
                           size_t *dlen);
/** OpenSSL digest of algo (NULL for NONE). */
const EVP_MD *p2p_tus_algo_md(enum p2p_tus_algo algo);

/** True if s[0..len) is an upload id: exactly 32 lowercase hex digits. */
bool p2p_tus_id_valid(const char *s, size_t len);

/**
 * Extracts the upload id from a URL naming an upload of this server: an absolute http(s) URL or
 * an absolute path, whose path is base_path + id. Returns 0 and the id, or -1.
 */
int p2p_tus_id_from_url(const char *url, size_t len, const char *base_path,
                        char id[P2P_TUS_ID_LEN + 1]);

/**
 * Parses an Upload-Concat value: "partial", or "final;" followed by one or more
 * space-separated upload URLs. On success returns 0, *partial, and for final the ids (new
 * array of *nids ids, free with free()). Returns -1 on any malformed value.
 */
int p2p_tus_concat_parse(const char *s, const char *base_path, bool *partial,
                         char (**ids)[P2P_TUS_ID_LEN + 1], size_t *nids);

/** Formats epoch seconds as an RFC 9110 IMF-fixdate ("Wed, 25 Jun 2014 16:00:00 GMT"). */
void p2p_tus_http_date(uint64_t epoch_s, char out[40]);

/** True if v is a safe Host header value (host or host:port; letters, digits, '.', '-', ':',
 *  '[', ']', '_'), so it can be echoed into a Location URL. */
bool p2p_tus_host_valid(const char *v);

/** True if the Content-Type value is application/offset+octet-stream (case-insensitive). */
bool p2p_tus_ct_ok(const char *v);

/**
 * The name a finished upload gets from its filename metadata (fn[0..len), arbitrary bytes):
 * p2p_name_sanitize(), and a name ending in a suffix the node reads as one of its own files
 * (".ok", ".seed", ".bitfield") has that last '.' turned into '_' ("x.ok" -> "x_ok"), so an
 * upload can never pose as another file's marker. Returns a new string.
 */
char *p2p_tus_file_name(const uint8_t *fn, size_t len);

/**
 * Name for the n-th attempt to place name in complete_dir: n == 0 is name itself, then
 * "stem-n.ext" (the extension is kept when there is one). Returns a new string, always a safe
 * name when name is.
 */
char *p2p_tus_name_candidate(const char *name, unsigned n);

#endif
