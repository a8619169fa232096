/* TUS header parsing without I/O: Upload-Metadata, Upload-Checksum, Upload-Concat, upload ids
 * and URLs, HTTP dates. Strict by design (TUS.md §3: follow the spec, not tusd's leniency). */
#include "node/tus_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/evp.h>

#include "common/fsx.h"
#include "common/util.h"

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

long p2p_tus_b64_decode(const char *s, size_t len, uint8_t *out)
{
    if (len % 4 != 0)
        return -1;
    if (len == 0)
        return 0;
    size_t pad = 0;
    if (s[len - 1] == '=')
        pad = s[len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char((unsigned char)s[i]))
            return -1;
    /* Non-canonical encodings (stray bits under the padding) are rejected too. */
    if (pad == 2 && (strchr("AQgw", s[len - 3]) == NULL))
        return -1;
    if (pad == 1) {
        static const char ok[] = "AEIMQUYcgkosw048";
        if (strchr(ok, s[len - 2]) == NULL)
            return -1;
    }
    int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
    if (n < 0)
        return -1;
    return (long)n - (long)pad;
}

static bool key_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != ',';
}

void p2p_tus_meta_cleanup(struct p2p_tus_meta *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->kv[i].key);
        free(m->kv[i].val);
    }
    m->n = 0;
}

const uint8_t *p2p_tus_meta_get(const struct p2p_tus_meta *m, const char *key, size_t *len)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->kv[i].key, key) == 0) {
            if (len)
                *len = m->kv[i].vlen;
            return m->kv[i].val;
        }
    }
    return NULL;
}

int p2p_tus_meta_parse(const char *s, struct p2p_tus_meta *out, const char **why)
{
    const char *reason = NULL;
    out->n = 0;
    const char *p = s;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        /* trim optional whitespace around the pair */
        while (plen > 0 && (*p == ' ' || *p == '\t'))
            p++, plen--;
        while (plen > 0 && (p[plen - 1] == ' ' || p[plen - 1] == '\t'))
            plen--;
        size_t klen = 0;
        while (klen < plen && key_char((unsigned char)p[klen]))
            klen++;
        if (klen == 0) {
            reason = "empty metadata key";
            goto out;
        }
        const char *v = NULL;
        size_t vlen = 0;
        if (klen < plen) {
            if (p[klen] != ' ') {
                reason = "bad character in metadata key";
                goto out;
            }
            v = p + klen + 1;
            vlen = plen - klen - 1;
            if (memchr(v, ' ', vlen) || memchr(v, '\t', vlen)) {
                reason = "metadata pair has more than two parts";
                goto out;
            }
        }
        if (out->n == P2P_TUS_MAX_META) {
            reason = "too many metadata pairs";
            goto out;
        }
        for (size_t i = 0; i < out->n; i++) {
            if (strlen(out->kv[i].key) == klen && memcmp(out->kv[i].key, p, klen) == 0) {
                reason = "duplicate metadata key";
                goto out;
            }
        }
        uint8_t *val = p2p_xmalloc(vlen / 4 * 3 + 1);
        long n = p2p_tus_b64_decode(v ? v : "", vlen, val);
        if (n < 0) {
            free(val);
            reason = "metadata value is not valid base64";
            goto out;
        }
        val[n] = '\0';
        out->kv[out->n].key = p2p_xstrndup(p, klen);
        out->kv[out->n].val = val;
        out->kv[out->n].vlen = (size_t)n;
        out->n++;
        if (!end)
            break;
        p = end + 1;
    }
out:
    if (reason)
        p2p_tus_meta_cleanup(out);
    if (why)
        *why = reason;
    return reason ? -1 : 0;
}

const EVP_MD *p2p_tus_algo_md(enum p2p_tus_algo algo)
{
    switch (algo) {
    case P2P_TUS_CK_SHA1:
        return EVP_sha1();
    case P2P_TUS_CK_MD5:
        return EVP_md5();
    case P2P_TUS_CK_SHA256:
        return EVP_sha256();
    default:
        return NULL;
    }
}

int p2p_tus_checksum_parse(const char *s, enum p2p_tus_algo *algo, uint8_t digest[64],
                           size_t *dlen)
{
    const char *sp = strchr(s, ' ');
    if (!sp || sp == s)
        return -1;
    size_t alen = (size_t)(sp - s);
    enum p2p_tus_algo a = P2P_TUS_CK_NONE;
    if (alen == 4 && memcmp(s, "sha1", 4) == 0)
        a = P2P_TUS_CK_SHA1;
    else if (alen == 3 && memcmp(s, "md5", 3) == 0)
        a = P2P_TUS_CK_MD5;
    else if (alen == 6 && memcmp(s, "sha256", 6) == 0)
        a = P2P_TUS_CK_SHA256;
    for (size_t i = 0; i < alen; i++)
        if (!key_char((unsigned char)s[i]))
            return -1;
    const char *b = sp + 1;
    size_t blen = strlen(b);
    if (blen == 0 || blen > 88)
        return -1;
    uint8_t tmp[66];
    long n = p2p_tus_b64_decode(b, blen, tmp);
    if (n < 0)
        return -1;
    if (a == P2P_TUS_CK_NONE)
        return -2;
    if ((size_t)n != (size_t)EVP_MD_get_size(p2p_tus_algo_md(a)))
        return -1;
    memcpy(digest, tmp, (size_t)n);
    *dlen = (size_t)n;
    *algo = a;
    return 0;
}

static bool host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_';
}

bool p2p_tus_id_valid(const char *s, size_t len)
{
    return len == P2P_TUS_ID_LEN && p2p_is_lower_hex(s, len);
}

int p2p_tus_id_from_url(const char *url, size_t len, const char *base_path,
                        char id[P2P_TUS_ID_LEN + 1])
{
    const char *p = url, *end = url + len;
    if (len > 7 && strncasecmp(p, "http://", 7) == 0)
        p += 7;
    else if (len > 8 && strncasecmp(p, "https://", 8) == 0)
        p += 8;
    if (p != url) {
        /* the authority: only host[:port] characters, as the whole value is echoed in HEAD */
        const char *a = p;
        while (p < end && *p != '/') {
            if (!host_char((unsigned char)*p))
                return -1;
            p++;
        }
        if (p == a)
            return -1;
    }
    size_t blen = strlen(base_path);
    if ((size_t)(end - p) != blen + P2P_TUS_ID_LEN || memcmp(p, base_path, blen) != 0)
        return -1;
    p += blen;
    if (!p2p_tus_id_valid(p, P2P_TUS_ID_LEN))
        return -1;
    memcpy(id, p, P2P_TUS_ID_LEN);
    id[P2P_TUS_ID_LEN] = '\0';
    return 0;
}

int p2p_tus_concat_parse(const char *s, const char *base_path, bool *partial,
                         char (**ids)[P2P_TUS_ID_LEN + 1], size_t *nids)
{
    *ids = NULL;
    *nids = 0;
    if (strcmp(s, "partial") == 0) {
        *partial = true;
        return 0;
    }
    if (strncmp(s, "final;", 6) != 0)
        return -1;
    *partial = false;
    const char *p = s + 6;
    char (*v)[P2P_TUS_ID_LEN + 1] = NULL;
    size_t n = 0;
    while (*p == ' ')
        p++;
    while (*p) {
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        if (n == P2P_TUS_MAX_PARTS)
            goto out;
        v = p2p_xrealloc(v, (n + 1) * sizeof *v);
        if (p2p_tus_id_from_url(p, (size_t)(e - p), base_path, v[n]) < 0)
            goto out;
        n++;
        p = e;
        while (*p == ' ')
            p++;
    }
    if (n == 0)
        goto out;
    *ids = v;
    *nids = n;
    return 0;
out:
    free(v);
    return -1;
}

void p2p_tus_http_date(uint64_t epoch_s, char out[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)epoch_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             mons[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

bool p2p_tus_host_valid(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 261)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!host_char((unsigned char)v[i]))
            return false;
    return true;
}

bool p2p_tus_ct_ok(const char *v)
{
    return v && strcasecmp(v, P2P_TUS_CT) == 0;
}

char *p2p_tus_name_candidate(const char *name, unsigned n)
{
    if (n == 0)
        return p2p_xstrdup(name);
    const char *dot = strrchr(name, '.');
    size_t stem = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    char suffix[16];
    int sl = snprintf(suffix, sizeof suffix, "-%u", n);
    size_t ext = strlen(name) - stem;
    /* keep the result within the name limit by cutting the stem (at a UTF-8 boundary) */
    while (stem + (size_t)sl + ext > P2P_NAME_MAX && stem > 0) {
        stem--;
        while (stem > 0 && ((unsigned char)name[stem] & 0xc0) == 0x80)
            stem--;
    }
    if (stem + (size_t)sl + ext > P2P_NAME_MAX)
        ext = 0;
    return p2p_xasprintf("%.*s%s%.*s", (int)stem, name, suffix, (int)ext,
                         name + strlen(name) - ext);
}

char *p2p_tus_file_name(const uint8_t *fn, size_t len)
{
    static const char *const reserved[] = {".ok", ".seed", ".bitfield"};
    char *name = p2p_name_sanitize((const char *)fn, len);
    size_t n = strlen(name);
    for (size_t i = 0; i < P2P_ARRAY_LEN(reserved); i++) {
        size_t rl = strlen(reserved[i]);
        if (n > rl && strcmp(name + n - rl, reserved[i]) == 0) {
            name[n - rl] = '_';
            break;
        }
    }
    return name;
}
