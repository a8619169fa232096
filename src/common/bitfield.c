/* Piece bitfields (BitTorrent bit order) and strict base64 over OpenSSL's EVP block coder. */
#include "common/bitfield.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "common/util.h"

void p2p_bitfield_init(struct p2p_bitfield *bf, uint32_t nbits)
{
    bf->bits = p2p_xcalloc(P2P_BITFIELD_BYTES(nbits) ? P2P_BITFIELD_BYTES(nbits) : 1, 1);
    bf->nbits = nbits;
    bf->count = 0;
}

void p2p_bitfield_cleanup(struct p2p_bitfield *bf)
{
    free(bf->bits);
    bf->bits = NULL;
    bf->nbits = bf->count = 0;
}

bool p2p_bitfield_set(struct p2p_bitfield *bf, uint32_t i)
{
    if (i >= bf->nbits || p2p_bitfield_get(bf, i))
        return false;
    bf->bits[i >> 3] |= (uint8_t)(0x80u >> (i & 7));
    bf->count++;
    return true;
}

bool p2p_bitfield_clear(struct p2p_bitfield *bf, uint32_t i)
{
    if (i >= bf->nbits || !p2p_bitfield_get(bf, i))
        return false;
    bf->bits[i >> 3] &= (uint8_t)~(0x80u >> (i & 7));
    bf->count--;
    return true;
}

void p2p_bitfield_set_all(struct p2p_bitfield *bf)
{
    size_t n = P2P_BITFIELD_BYTES(bf->nbits);
    if (n == 0)
        return;
    memset(bf->bits, 0xff, n);
    if (bf->nbits & 7)
        bf->bits[n - 1] = (uint8_t)(0xff00u >> (bf->nbits & 7));
    bf->count = bf->nbits;
}

uint32_t p2p_bitfield_popcount(const uint8_t *raw, size_t len)
{
    uint32_t c = 0;
    for (size_t i = 0; i < len; i++)
        c += (uint32_t)__builtin_popcount(raw[i]);
    return c;
}

int p2p_bitfield_load(struct p2p_bitfield *bf, const uint8_t *raw, size_t len)
{
    size_t n = P2P_BITFIELD_BYTES(bf->nbits);
    if (len != n)
        return -1;
    if (n && (bf->nbits & 7) && (raw[n - 1] & (uint8_t)(0xffu >> (bf->nbits & 7))))
        return -1; /* spare bits must be zero */
    if (n)
        memcpy(bf->bits, raw, n);
    bf->count = p2p_bitfield_popcount(raw, n);
    return 0;
}

char *p2p_base64_encode(const uint8_t *in, size_t n)
{
    char *out = p2p_xmalloc(4 * ((n + 2) / 3) + 1);
    int w = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    out[w] = '\0';
    return out;
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : 63;
}

uint8_t *p2p_base64_decode(const char *s, size_t len, size_t *outlen)
{
    if (len % 4 != 0 || len > (size_t)1 << 30)
        return NULL;
    size_t pad = 0;
    if (len >= 1 && s[len - 1] == '=')
        pad++;
    if (len >= 2 && s[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (!b64_char(s[i]))
            return NULL;
    /* Canonical form: the bits beyond the data in the last symbol must be zero. */
    if (pad == 1 && (b64_val(s[len - 2]) & 0x03))
        return NULL;
    if (pad == 2 && (b64_val(s[len - 3]) & 0x0f))
        return NULL;
    uint8_t *out = p2p_xmalloc(len / 4 * 3 + 1);
    int w = len ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)len) : 0;
    if (w < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts padding as zero bytes; drop them. */
    *outlen = (size_t)w - pad;
    return out;
}
