/* Fuzz target: TUS header parsing (src/node/tus_proto.c): Upload-Metadata, Upload-Checksum,
 * Upload-Concat, upload URLs and ids, Host, Content-Type, base64, integer headers and the
 * collision-name helper. Every input goes through all of them (they are cheap), each with an
 * invariant: strict parsers must accept exactly what re-serializes to the same text. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/bitfield.h"
#include "common/fsx.h"
#include "common/util.h"
#include "node/tus_int.h"
#include "fuzz.h"

#define MAX_HDR (16 * 1024)
#define BASE "/files/"

static bool key_ok(const char *k)
{
    if (!*k)
        return false;
    for (; *k; k++)
        if ((unsigned char)*k <= 0x20 || (unsigned char)*k >= 0x7f || *k == ',')
            return false;
    return true;
}

static void check_meta(const char *s)
{
    struct p2p_tus_meta m, m2;
    const char *why = "unset";
    if (p2p_tus_meta_parse(s, &m, &why) < 0) {
        FUZZ_CHECK(why != NULL && m.n == 0);
        return;
    }
    FUZZ_CHECK(why == NULL && m.n >= 1 && m.n <= P2P_TUS_MAX_META);
    /* Rebuild the header from what was parsed: it must parse to the same pairs. */
    size_t cap = 16, len = 0;
    char *re = p2p_xmalloc(cap);
    re[0] = '\0';
    for (size_t i = 0; i < m.n; i++) {
        FUZZ_CHECK(key_ok(m.kv[i].key));
        FUZZ_CHECK(m.kv[i].val[m.kv[i].vlen] == '\0');
        size_t vl = 0;
        FUZZ_CHECK(p2p_tus_meta_get(&m, m.kv[i].key, &vl) == m.kv[i].val && vl == m.kv[i].vlen);
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(strcmp(m.kv[k].key, m.kv[i].key) != 0);
        char *b64 = p2p_base64_encode(m.kv[i].val, m.kv[i].vlen);
        char *part = p2p_xasprintf("%s%s%s%s", i ? "," : "", m.kv[i].key,
                                   m.kv[i].vlen ? " " : "", b64);
        size_t pl = strlen(part);
        if (len + pl + 1 > cap) {
            cap = (len + pl + 1) * 2;
            re = p2p_xrealloc(re, cap);
        }
        memcpy(re + len, part, pl + 1);
        len += pl;
        free(part);
        free(b64);
    }
    FUZZ_CHECK(p2p_tus_meta_parse(re, &m2, &why) == 0);
    FUZZ_CHECK(m2.n == m.n);
    for (size_t i = 0; i < m.n; i++) {
        FUZZ_CHECK(strcmp(m.kv[i].key, m2.kv[i].key) == 0);
        FUZZ_CHECK(m.kv[i].vlen == m2.kv[i].vlen &&
                   memcmp(m.kv[i].val, m2.kv[i].val, m.kv[i].vlen) == 0);
    }
    p2p_tus_meta_cleanup(&m2);
    p2p_tus_meta_cleanup(&m);
    FUZZ_CHECK(m.n == 0);
    free(re);
}

static void check_b64(const char *s, size_t len)
{
    /* Exactly sized output buffer so ASan catches an overrun. */
    uint8_t *out = p2p_xmalloc(len / 4 * 3 + 1);
    long n = p2p_tus_b64_decode(s, len, out);
    size_t n2 = 0;
    uint8_t *ref = p2p_base64_decode(s, len, &n2);
    /* Both are strict canonical base64: they must agree on what they accept and produce. */
    FUZZ_CHECK((n >= 0) == (ref != NULL));
    if (n >= 0) {
        FUZZ_CHECK((size_t)n == n2 && memcmp(out, ref, n2) == 0);
        char *enc = p2p_base64_encode(out, (size_t)n);
        FUZZ_CHECK(strlen(enc) == len && memcmp(enc, s, len) == 0);
        free(enc);
    }
    free(ref);
    free(out);
}

static void check_checksum(const char *s)
{
    enum p2p_tus_algo algo = P2P_TUS_CK_NONE;
    uint8_t digest[64];
    size_t dlen = 0;
    int rc = p2p_tus_checksum_parse(s, &algo, digest, &dlen);
    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2);
    if (rc == 0) {
        const EVP_MD *md = p2p_tus_algo_md(algo);
        FUZZ_CHECK(md != NULL && dlen == (size_t)EVP_MD_get_size(md));
        const char *name = algo == P2P_TUS_CK_SHA1 ? "sha1 " : algo == P2P_TUS_CK_MD5 ? "md5 "
                                                                                  : "sha256 ";
        FUZZ_CHECK(strncmp(s, name, strlen(name)) == 0);
    }
}

static void check_urls(const char *s, size_t len)
{
    char id[P2P_TUS_ID_LEN + 1];
    if (p2p_tus_id_from_url(s, len, BASE, id) == 0) {
        FUZZ_CHECK(strlen(id) == P2P_TUS_ID_LEN && p2p_tus_id_valid(id, P2P_TUS_ID_LEN));
        FUZZ_CHECK(len >= P2P_TUS_ID_LEN && memcmp(s + len - P2P_TUS_ID_LEN, id, 32) == 0);
    }
    bool partial = false;
    char (*ids)[P2P_TUS_ID_LEN + 1] = NULL;
    size_t nids = 0;
    if (p2p_tus_concat_parse(s, BASE, &partial, &ids, &nids) == 0) {
        if (partial) {
            FUZZ_CHECK(nids == 0 && ids == NULL && strcmp(s, "partial") == 0);
        } else {
            FUZZ_CHECK(nids >= 1 && nids <= P2P_TUS_MAX_PARTS && ids != NULL);
            for (size_t i = 0; i < nids; i++)
                FUZZ_CHECK(p2p_tus_id_valid(ids[i], strlen(ids[i])));
        }
    } else {
        FUZZ_CHECK(ids == NULL && nids == 0);
    }
    free(ids);
}

static void check_misc(const char *s, size_t len, const uint8_t *data, size_t size)
{
    if (p2p_tus_host_valid(s))
        FUZZ_CHECK(len >= 1 && strpbrk(s, "/?#@ \r\n") == NULL);
    if (p2p_tus_ct_ok(s))
        FUZZ_CHECK(strcasecmp(s, P2P_TUS_CT) == 0);
    /* Integer headers (Upload-Offset, Upload-Length) go through p2p_parse_u64. */
    uint64_t v;
    if (p2p_parse_u64(s, len, &v) == 0)
        FUZZ_CHECK(len >= 1 && strspn(s, "0123456789") == len);

    /* Collision names stay safe for any safe name and any attempt number. */
    char *name = p2p_name_sanitize(s, len);
    unsigned n = size >= 2 ? (unsigned)data[0] | (unsigned)data[1] << 8 : 0;
    char *cand = p2p_tus_name_candidate(name, n);
    FUZZ_CHECK(p2p_name_is_safe(cand, strlen(cand), NULL));
    if (n == 0)
        FUZZ_CHECK(strcmp(cand, name) == 0);
    free(cand);
    free(name);

    /* Dates: any time up to the year 9999. */
    if (size >= 8) {
        uint64_t t;
        memcpy(&t, data, sizeof(t));
        char date[40];
        p2p_tus_http_date(t % 253402300800ull, date);
        FUZZ_CHECK(strlen(date) == 29 && strcmp(date + 25, " GMT") == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_HDR)
        return 0;
    /* Header values reach the parsers as C strings: cut at the first NUL, as httpd would. */
    char *s = p2p_xstrndup((const char *)data, size);
    size_t len = strlen(s);
    check_meta(s);
    check_b64(s, len);
    check_checksum(s);
    check_urls(s, len);
    check_misc(s, len, data, size);
    free(s);
    return 0;
}
