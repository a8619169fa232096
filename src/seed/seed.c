/* The seed model: parse and validate v1 (Go original) and v2 seeds, compute the infoHash,
 * serialize both formats. Every seed is hostile input; see docs/PROTOCOL.md "Seed files". */
#include "seed/seed.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/fsx.h"
#include "common/json.h"
#include "common/util.h"

#define CREATED_AT_MAX 64
#define INFO_HASH_MAGIC "p2p-sharer-seed-v2\n"
/* What Go's time.Time zero value marshals to: a createdAt original nodes can always parse. */
#define CREATED_AT_ZERO "0001-01-01T00:00:00Z"

size_t p2p_hash_len(enum p2p_hash_algo algo)
{
    return algo == P2P_HASH_SHA1 ? 20 : 32;
}

const char *p2p_hash_name(enum p2p_hash_algo algo)
{
    return algo == P2P_HASH_SHA1 ? "sha1" : "sha256";
}

static const EVP_MD *algo_md(enum p2p_hash_algo algo)
{
    return algo == P2P_HASH_SHA1 ? EVP_sha1() : EVP_sha256();
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) P2P_PRINTF(3, 4);

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The json.h getters say "field 'key': why"; seed messages say "prefix.key: why", like
 * "pieces[3].length: expected an integer, got a string". Rewrites err in place. */
static void refield(char *err, size_t errlen, const char *prefix)
{
    char tmp[512];
    const char *q;
    if (!err || errlen == 0 || strncmp(err, "field '", 7) != 0 || !(q = strstr(err + 7, "': ")))
        return;
    snprintf(tmp, sizeof tmp, "%s%.*s: %s", prefix, (int)(q - (err + 7)), err + 7, q + 3);
    snprintf(err, errlen, "%s", tmp);
}

uint64_t p2p_seed_piece_len(const struct p2p_seed *s, uint32_t i)
{
    if (i >= s->npieces)
        return 0;
    if (i + 1 < s->npieces)
        return s->piece_length;
    return s->length - (uint64_t)i * s->piece_length;
}

uint64_t p2p_seed_default_piece_length(uint64_t length)
{
    uint64_t want = length / 1000, p = 1;
    while (p < want && p < ((uint64_t)16 << 20))
        p <<= 1;
    if (p < P2P_SEED_V1_PIECE_LENGTH)
        p = P2P_SEED_V1_PIECE_LENGTH;
    if (p > ((uint64_t)16 << 20))
        p = (uint64_t)16 << 20;
    return p;
}

void p2p_seed_hash(enum p2p_hash_algo algo, const void *data, size_t len, uint8_t *digest)
{
    unsigned int dlen = 0;
    if (EVP_Digest(data, len, digest, &dlen, algo_md(algo), NULL) != 1) {
        fprintf(stderr, "p2p-sharer: EVP_Digest failed\n");
        abort();
    }
}

bool p2p_seed_verify_piece(const struct p2p_seed *s, uint32_t i, const void *data, size_t len)
{
    uint8_t d[P2P_SEED_MAX_DIGEST];
    if (i >= s->npieces || len != p2p_seed_piece_len(s, i))
        return false;
    p2p_seed_hash(s->algo, data, len, d);
    return CRYPTO_memcmp(d, s->pieces[i].digest, p2p_hash_len(s->algo)) == 0;
}

void p2p_seed_compute_info_hash(struct p2p_seed *s)
{
    size_t hl = p2p_hash_len(s->algo);
    char head[96], hex[2 * P2P_SEED_MAX_DIGEST + 2];
    uint8_t d[32];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        fprintf(stderr, "p2p-sharer: EVP sha256 init failed\n");
        abort();
    }
    EVP_DigestUpdate(ctx, INFO_HASH_MAGIC, strlen(INFO_HASH_MAGIC));
    EVP_DigestUpdate(ctx, s->file_name, strlen(s->file_name));
    int n = snprintf(head, sizeof head, "\n%" PRIu64 "\n%" PRIu64 "\n%s\n", s->length,
                     s->piece_length, p2p_hash_name(s->algo));
    EVP_DigestUpdate(ctx, head, (size_t)n);
    for (uint32_t i = 0; i < s->npieces; i++) {
        p2p_hex_encode(s->pieces[i].digest, hl, hex);
        hex[2 * hl] = '\n';
        EVP_DigestUpdate(ctx, hex, 2 * hl + 1);
    }
    EVP_DigestFinal_ex(ctx, d, NULL);
    EVP_MD_CTX_free(ctx);
    p2p_hex_encode(d, sizeof d, s->info_hash);
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static bool is_v6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.';
}

int p2p_seed_check_tracker(const char *addr, const char **why)
{
    const char *reason = NULL;
    size_t len = strlen(addr);
    const char *colon = strrchr(addr, ':');
    uint64_t port;

    if (len == 0) {
        reason = "empty address";
    } else if (len > P2P_SEED_MAX_TRACKER_LEN) {
        reason = "address too long";
    } else if (strstr(addr, "://")) {
        reason = "must be host:port without a scheme";
    } else if (!colon) {
        reason = "must be host:port";
    } else if (p2p_parse_u64(colon + 1, strlen(colon + 1), &port) < 0 || port == 0 ||
               port > 65535 || colon[1] == '0') {
        reason = "port must be a number 1..65535";
    } else if (addr[0] == '[') {
        /* "[v6]:port" */
        if (colon == addr || colon[-1] != ']' || colon - addr < 4) {
            reason = "bad IPv6 literal (expected [addr]:port)";
        } else {
            for (const char *p = addr + 1; p < colon - 1; p++)
                if (!is_v6_char(*p)) {
                    reason = "bad character in IPv6 literal";
                    break;
                }
        }
    } else if (colon == addr) {
        reason = "missing host";
    } else if (colon - addr > 253) {
        reason = "host too long";
    } else {
        for (const char *p = addr; p < colon; p++)
            if (!is_host_char(*p)) {
                reason = "host may hold only letters, digits, '.', '-', '_' (no path, space or "
                         "scheme)";
                break;
            }
    }
    if (why)
        *why = reason;
    return reason ? -1 : 0;
}

void p2p_seed_cleanup(struct p2p_seed *s)
{
    if (!s)
        return;
    free(s->file_name);
    free(s->tracker_addr);
    for (size_t i = 0; i < s->ntrackers; i++)
        free(s->trackers[i]);
    free(s->trackers);
    free(s->pieces);
    free(s->created_at);
    memset(s, 0, sizeof *s);
}

/* A createdAt we can pass on to Go nodes: short, printable, RFC 3339 alphabet only. */
static bool created_at_ok(const char *v, size_t len)
{
    if (len == 0 || len > CREATED_AT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == ':' || c == '.' || c == '+' || c == 'T' ||
              c == 'Z' || c == 't' || c == 'z'))
            return false;
    }
    return true;
}

static int parse_trackers(json_t *obj, struct p2p_seed *s, char *err, size_t errlen)
{
    const char *why, *addr = NULL;
    /* v1 has no list (and we write none back): it is read as [trackerAddr]. null = absent. */
    json_t *arr = s->version == 2 ? json_object_get(obj, "trackers") : NULL;
    if (json_is_null(arr))
        arr = NULL;
    int r = p2p_json_get_str(obj, "trackerAddr", false, &addr, err, errlen);
    if (r < 0)
        return -1;
    if (r == 0 && p2p_seed_check_tracker(addr, &why) < 0) {
        seterr(err, errlen, "trackerAddr: %s", why);
        return -1;
    }
    if (arr) {
        if (!json_is_array(arr)) {
            seterr(err, errlen, "trackers: expected an array of \"host:port\" strings");
            return -1;
        }
        size_t n = json_array_size(arr);
        if (n == 0 || n > P2P_SEED_MAX_TRACKERS) {
            seterr(err, errlen, "trackers: expected 1 to %d entries, got %zu",
                   P2P_SEED_MAX_TRACKERS, n);
            return -1;
        }
        s->trackers = p2p_xcalloc(n, sizeof *s->trackers);
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(arr, i);
            if (!json_is_string(v)) {
                seterr(err, errlen, "trackers[%zu]: expected a \"host:port\" string", i);
                return -1;
            }
            const char *t = json_string_value(v);
            if (strlen(t) != json_string_length(v) || p2p_seed_check_tracker(t, &why) < 0) {
                seterr(err, errlen, "trackers[%zu]: %s", i,
                       strlen(t) != json_string_length(v) ? "contains NUL" : why);
                return -1;
            }
            for (size_t j = 0; j < i; j++)
                if (strcmp(s->trackers[j], t) == 0) {
                    seterr(err, errlen, "trackers[%zu]: duplicate of trackers[%zu]", i, j);
                    return -1;
                }
            s->trackers[i] = p2p_xstrdup(t);
            s->ntrackers = i + 1;
        }
        if (addr) {
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                found = strcmp(s->trackers[i], addr) == 0;
            if (!found) {
                seterr(err, errlen, "trackerAddr: not one of trackers");
                return -1;
            }
        }
        s->tracker_addr = p2p_xstrdup(addr ? addr : s->trackers[0]);
        return 0;
    }
    if (!addr) {
        seterr(err, errlen, "trackerAddr: missing (a seed needs trackerAddr or trackers)");
        return -1;
    }
    s->tracker_addr = p2p_xstrdup(addr);
    s->trackers = p2p_xcalloc(1, sizeof *s->trackers);
    s->trackers[0] = p2p_xstrdup(addr);
    s->ntrackers = 1;
    return 0;
}

/* v2: "pieceLength" and "hashAlgo" required; v1: optional, but must agree with v1's fixed
 * SHA-1 / 1 MiB if a v1 seed carries them. */
static int parse_geometry(json_t *obj, struct p2p_seed *s, char *err, size_t errlen)
{
    bool v2 = s->version == 2;
    const char *algo = NULL;
    uint64_t pl = P2P_SEED_V1_PIECE_LENGTH;
    int r = p2p_json_get_u64(obj, "pieceLength", v2, P2P_SEED_MAX_PIECE, &pl, err, errlen);
    if (r < 0)
        return -1;
    if (v2 && (pl < P2P_SEED_MIN_PIECE || (pl & (pl - 1)) != 0)) {
        seterr(err, errlen, "pieceLength: must be a power of two from %u to %u, got %" PRIu64,
               P2P_SEED_MIN_PIECE, P2P_SEED_MAX_PIECE, pl);
        return -1;
    }
    if (!v2 && pl != P2P_SEED_V1_PIECE_LENGTH) {
        seterr(err, errlen, "pieceLength: a version 1 seed has %u-byte pieces, got %" PRIu64,
               P2P_SEED_V1_PIECE_LENGTH, pl);
        return -1;
    }
    s->piece_length = pl;

    r = p2p_json_get_str(obj, "hashAlgo", v2, &algo, err, errlen);
    if (r < 0)
        return -1;
    if (r == 1 || strcmp(algo, "sha1") == 0) {
        s->algo = P2P_HASH_SHA1;
    } else if (strcmp(algo, "sha256") == 0) {
        s->algo = P2P_HASH_SHA256;
    } else {
        seterr(err, errlen, "hashAlgo: unsupported (expected \"sha1\" or \"sha256\")");
        return -1;
    }
    if (!v2 && s->algo != P2P_HASH_SHA1) {
        seterr(err, errlen, "hashAlgo: a version 1 seed uses sha1");
        return -1;
    }
    return 0;
}

static int parse_piece(json_t *p, uint32_t i, struct p2p_seed *s, char *err, size_t errlen)
{
    char prefix[32];
    uint64_t index, plen, want = p2p_seed_piece_len(s, i);
    const char *sum;
    size_t hl = p2p_hash_len(s->algo);

    if (!json_is_object(p)) {
        seterr(err, errlen, "pieces[%" PRIu32 "]: expected an object", i);
        return -1;
    }
    snprintf(prefix, sizeof prefix, "pieces[%" PRIu32 "].", i);
    if (p2p_json_get_u64(p, "index", true, UINT32_MAX, &index, err, errlen) < 0) {
        refield(err, errlen, prefix);
        return -1;
    }
    if (index != i) {
        seterr(err, errlen, "pieces[%" PRIu32 "].index: expected %" PRIu32 ", got %" PRIu64, i, i,
               index);
        return -1;
    }
    if (p2p_json_get_u64(p, "length", true, P2P_SEED_MAX_PIECE, &plen, err, errlen) < 0) {
        refield(err, errlen, prefix);
        return -1;
    }
    if (plen != want) {
        seterr(err, errlen, "pieces[%" PRIu32 "].length: expected %" PRIu64 ", got %" PRIu64, i,
               want, plen);
        return -1;
    }
    if (p2p_json_get_str(p, "checksum", true, &sum, err, errlen) < 0) {
        refield(err, errlen, prefix);
        return -1;
    }
    size_t slen = json_string_length(json_object_get(p, "checksum"));
    /* Lowercase only: the form Go and we write, and the form piece ids and the infoHash use. */
    if (slen != 2 * hl || !p2p_is_lower_hex(sum, slen) ||
        p2p_hex_decode(sum, hl, s->pieces[i].digest) < 0) {
        seterr(err, errlen, "pieces[%" PRIu32 "].checksum: expected %zu lowercase hex digits (%s)",
               i, 2 * hl, p2p_hash_name(s->algo));
        return -1;
    }
    return 0;
}

static int parse_pieces(json_t *obj, struct p2p_seed *s, char *err, size_t errlen)
{
    uint64_t want = s->length == 0 ? 0 : (s->length - 1) / s->piece_length + 1;
    json_t *arr = json_object_get(obj, "pieces");
    if (!arr) {
        seterr(err, errlen, "pieces: missing");
        return -1;
    }
    if (json_is_null(arr) && want == 0)
        return 0; /* Go marshals an empty slice read back from JSON as null */
    if (!json_is_array(arr)) {
        seterr(err, errlen, "pieces: expected an array");
        return -1;
    }
    size_t n = json_array_size(arr);
    if (n != want) {
        seterr(err, errlen,
               "pieces: expected %" PRIu64 " pieces for length %" PRIu64 " and pieceLength %" PRIu64
               ", got %zu",
               want, s->length, s->piece_length, n);
        return -1;
    }
    if (n == 0)
        return 0;
    s->pieces = p2p_xcalloc(n, sizeof *s->pieces);
    s->npieces = (uint32_t)n; /* n <= array size, bounded by the 64 MiB seed cap */
    for (size_t i = 0; i < n; i++)
        if (parse_piece(json_array_get(arr, i), (uint32_t)i, s, err, errlen) < 0)
            return -1;
    return 0;
}

int p2p_seed_from_json(void *vobj, struct p2p_seed *out, char *err, size_t errlen)
{
    json_t *obj = vobj;
    struct p2p_seed s;
    const char *name, *why, *created, *ih;
    uint64_t version = 1;
    int rc = -1, r;

    memset(&s, 0, sizeof s);
    if (!json_is_object(obj)) {
        seterr(err, errlen, "seed: expected a JSON object");
        goto out;
    }
    r = p2p_json_get_u64(obj, "version", false, 1000, &version, err, errlen);
    if (r < 0)
        goto out;
    if (version != 1 && version != 2) {
        seterr(err, errlen, "version: unsupported seed version %" PRIu64 " (expected 1 or 2)",
               version);
        goto out;
    }
    s.version = (int)version;

    if (p2p_json_get_str(obj, "fileName", true, &name, err, errlen) < 0)
        goto out;
    size_t nlen = json_string_length(json_object_get(obj, "fileName"));
    if (strlen(name) != nlen) {
        seterr(err, errlen, "fileName: contains NUL");
        goto out;
    }
    if (!p2p_name_is_safe(name, nlen, &why)) {
        seterr(err, errlen, "fileName: %s", why ? why : "not a plain file name");
        goto out;
    }
    s.file_name = p2p_xstrndup(name, nlen);

    if (parse_trackers(obj, &s, err, errlen) < 0)
        goto out;
    if (p2p_json_get_u64(obj, "length", true, P2P_SEED_MAX_LENGTH, &s.length, err, errlen) < 0)
        goto out;
    if (parse_geometry(obj, &s, err, errlen) < 0)
        goto out;
    if (parse_pieces(obj, &s, err, errlen) < 0)
        goto out;

    r = p2p_json_get_str(obj, "createdAt", false, &created, err, errlen);
    if (r < 0)
        goto out;
    if (r == 0) {
        size_t clen = json_string_length(json_object_get(obj, "createdAt"));
        if (strlen(created) != clen || !created_at_ok(created, clen)) {
            seterr(err, errlen, "createdAt: expected an RFC 3339 time of at most %d characters",
                   CREATED_AT_MAX);
            goto out;
        }
        s.created_at = p2p_xstrdup(created);
    }

    p2p_seed_compute_info_hash(&s);
    r = p2p_json_get_str(obj, "infoHash", false, &ih, err, errlen);
    if (r < 0)
        goto out;
    if (r == 0 && (json_string_length(json_object_get(obj, "infoHash")) != 64 ||
                   memcmp(ih, s.info_hash, 64) != 0)) {
        seterr(err, errlen, "infoHash: does not match the seed's content (computed %s)",
               s.info_hash);
        goto out;
    }
    *out = s;
    memset(&s, 0, sizeof s);
    rc = 0;
out:
    if (rc < 0)
        refield(err, errlen, "");
    p2p_seed_cleanup(&s);
    return rc;
}

int p2p_seed_parse(const char *buf, size_t len, struct p2p_seed *out, char *err, size_t errlen)
{
    char jerr[256];
    int rc = -1;
    json_t *obj = NULL;

    if (len > P2P_SEED_MAX_BYTES) {
        seterr(err, errlen, "seed: %zu bytes is larger than the %u-byte limit", len,
               P2P_SEED_MAX_BYTES);
        goto out;
    }
    obj = p2p_json_parse_object(buf, len, jerr, sizeof jerr);
    if (!obj) {
        seterr(err, errlen, "seed: not a JSON object: %s", jerr);
        goto out;
    }
    rc = p2p_seed_from_json(obj, out, err, errlen);
out:
    json_decref(obj);
    return rc;
}

/* Constructors return NULL only for invalid UTF-8 or OOM; a validated seed has neither. */
static json_t *must(json_t *v)
{
    if (!v) {
        fprintf(stderr, "p2p-sharer: cannot build seed JSON (invalid UTF-8 or out of memory)\n");
        abort();
    }
    return v;
}

static void set(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, must(v)) < 0)
        must(NULL);
}

void *p2p_seed_to_json(const struct p2p_seed *s)
{
    char hex[2 * P2P_SEED_MAX_DIGEST + 1];
    size_t hl = p2p_hash_len(s->algo);
    bool v2 = s->version != 1;
    json_t *obj = must(json_object());
    json_t *pieces = must(json_array());

    if (v2)
        set(obj, "version", json_integer(2));
    set(obj, "fileName", json_string(s->file_name));
    set(obj, "trackerAddr", json_string(s->tracker_addr ? s->tracker_addr : s->trackers[0]));
    if (v2) {
        json_t *tr = must(json_array());
        for (size_t i = 0; i < s->ntrackers; i++)
            json_array_append_new(tr, must(json_string(s->trackers[i])));
        set(obj, "trackers", tr);
    }
    set(obj, "length", json_integer((json_int_t)s->length));
    if (v2) {
        set(obj, "pieceLength", json_integer((json_int_t)s->piece_length));
        set(obj, "hashAlgo", json_string(p2p_hash_name(s->algo)));
    }
    for (uint32_t i = 0; i < s->npieces; i++) {
        json_t *p = must(json_object());
        p2p_hex_encode(s->pieces[i].digest, hl, hex);
        set(p, "index", json_integer(i));
        set(p, "length", json_integer((json_int_t)p2p_seed_piece_len(s, i)));
        set(p, "checksum", json_string(hex));
        json_array_append_new(pieces, p);
    }
    set(obj, "pieces", pieces);
    if (v2)
        set(obj, "infoHash", json_string(s->info_hash));
    set(obj, "createdAt", json_string(s->created_at ? s->created_at : CREATED_AT_ZERO));
    return obj;
}

/* Go's MarshalIndent(v, "", "\t"): jansson indents with spaces only, so dump with one space per
 * level and turn each line's leading spaces into tabs (JSON strings never hold a raw newline). */
static char *tabify(const char *in, size_t *len)
{
    size_t n = strlen(in), o = 0;
    char *out = p2p_xmalloc(n + 1);
    bool bol = true;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (bol && c == ' ') {
            out[o++] = '\t';
            continue;
        }
        bol = c == '\n';
        out[o++] = c;
    }
    out[o] = '\0';
    *len = o;
    return out;
}

char *p2p_seed_serialize(const struct p2p_seed *s, size_t *len)
{
    json_t *obj = p2p_seed_to_json(s);
    size_t n;
    char *res;
    char *text = json_dumps(obj, JSON_PRESERVE_ORDER | JSON_INDENT(s->version == 1 ? 1 : 2));
    json_decref(obj);
    if (!text)
        must(NULL);
    if (s->version == 1) {
        res = tabify(text, &n); /* no trailing newline, as Go writes it */
    } else {
        res = p2p_xasprintf("%s\n", text);
        n = strlen(res);
    }
    free(text);
    if (len)
        *len = n;
    return res;
}
