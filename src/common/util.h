/* Small shared utilities: allocation that aborts on OOM, strict number parsing, hex, time. */
#ifndef P2P_COMMON_UTIL_H
#define P2P_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define P2P_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define P2P_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define P2P_PRINTF(a, b) __attribute__((format(printf, a, b)))

/** Allocation wrappers: abort the process on out-of-memory, so callers need no OOM branches. */
void *p2p_xmalloc(size_t n);
void *p2p_xcalloc(size_t n, size_t size);
void *p2p_xrealloc(void *p, size_t n);
char *p2p_xstrdup(const char *s);
char *p2p_xstrndup(const char *s, size_t n);
/** Formats into a new heap string (caller frees). */
char *p2p_xasprintf(const char *fmt, ...) P2P_PRINTF(1, 2);

/**
 * Parses a decimal unsigned integer that is the whole of s[0..len): digits only, no sign, no
 * spaces, no leading '+', overflow rejected. Returns 0 and sets *out, or -1.
 */
int p2p_parse_u64(const char *s, size_t len, uint64_t *out);

/** Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void p2p_hex_encode(const uint8_t *in, size_t n, char *out);
/** Decodes exactly 2n hex chars (either case) from s into out; returns 0 or -1 on a bad digit. */
int p2p_hex_decode(const char *s, size_t n, uint8_t *out);
/** True if s[0..len) is non-empty lowercase hex. */
bool p2p_is_lower_hex(const char *s, size_t len);

/** Monotonic milliseconds (uv_hrtime based) and wall-clock seconds since the epoch. */
uint64_t p2p_now_ms(void);
/** Writes the current UTC time as RFC 3339 ("2026-11-21T23:33:46Z") into out (>= 32 bytes). */
void p2p_rfc3339_now(char *out, size_t outlen);

/** Fills buf with n cryptographically random bytes (OpenSSL RAND_bytes; aborts on failure). */
void p2p_random_bytes(void *buf, size_t n);
/** Uniform random integer in [0, n) from a fast per-thread PRNG seeded from p2p_random_bytes. */
uint32_t p2p_rand_below(uint32_t n);
/** Writes a random UUIDv4 string (37 bytes with NUL). */
void p2p_uuid4(char out[37]);

/** Percent-encodes s for a URL query value (RFC 3986: every byte but A-Z a-z 0-9 - . _ ~ as
 *  %XX). Returns a new string. */
char *p2p_url_escape(const char *s);

#endif
