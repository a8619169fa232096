/* Piece bitfields as in BitTorrent (piece 0 = high bit of byte 0, spare bits zero) and base64. */
#ifndef P2P_COMMON_BITFIELD_H
#define P2P_COMMON_BITFIELD_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

struct p2p_bitfield {
    uint8_t *bits;   /* ceil(nbits/8) bytes, owned */
    uint32_t nbits;
    uint32_t count;  /* number of set bits, kept current by set/clear */
};

#define P2P_BITFIELD_BYTES(n) (((size_t)(n) + 7) / 8)

/** Initialises an all-zero bitfield of nbits bits (nbits may be 0). */
void p2p_bitfield_init(struct p2p_bitfield *bf, uint32_t nbits);
/** Frees the bits (not the struct); safe on a zeroed struct. */
void p2p_bitfield_cleanup(struct p2p_bitfield *bf);
static inline bool p2p_bitfield_get(const struct p2p_bitfield *bf, uint32_t i)
{
    return i < bf->nbits && (bf->bits[i >> 3] & (0x80u >> (i & 7)));
}
/** Sets/clears bit i; returns true if it changed. Out-of-range i is ignored (false). */
bool p2p_bitfield_set(struct p2p_bitfield *bf, uint32_t i);
bool p2p_bitfield_clear(struct p2p_bitfield *bf, uint32_t i);
void p2p_bitfield_set_all(struct p2p_bitfield *bf);
static inline bool p2p_bitfield_full(const struct p2p_bitfield *bf)
{
    return bf->count == bf->nbits;
}
/**
 * Replaces the contents from raw bytes: len must be exactly P2P_BITFIELD_BYTES(nbits) and the
 * spare bits zero. Returns 0, or -1 (bitfield unchanged).
 */
int p2p_bitfield_load(struct p2p_bitfield *bf, const uint8_t *raw, size_t len);
/** Counts set bits of raw bytes. */
uint32_t p2p_bitfield_popcount(const uint8_t *raw, size_t len);

/** Standard base64 with padding of n bytes; returns a new NUL-terminated string (caller frees). */
char *p2p_base64_encode(const uint8_t *in, size_t n);
/**
 * Strict standard base64 decode (padding required, no whitespace, canonical trailing bits).
 * Returns a new buffer (caller frees) and its length in *outlen, or NULL on bad input.
 */
uint8_t *p2p_base64_decode(const char *s, size_t len, size_t *outlen);

#endif
