/* Fuzz target: the small parsers of src/common that see network input: strict base64
 * (p2p_base64_decode), file-name checks (p2p_name_is_safe / p2p_name_sanitize), hex and
 * decimal parsing. Each is checked against an invariant or a reference, not only for crashes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/bitfield.h"
#include "common/fsx.h"
#include "common/util.h"
#include "fuzz.h"

/* Reference decimal parser: digits only, 1..20 of them, no overflow. */
static bool ref_parse_u64(const uint8_t *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = s[i] - '0';
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, d, &v))
            return false;
    }
    *out = v;
    return true;
}

static void check_base64(const uint8_t *data, size_t size)
{
    size_t outlen = 0;
    uint8_t *dec = p2p_base64_decode((const char *)data, size, &outlen);
    if (dec) {
        /* Strict and canonical: what decodes must encode back to exactly the input. */
        FUZZ_CHECK(outlen <= size / 4 * 3);
        char *enc = p2p_base64_encode(dec, outlen);
        FUZZ_CHECK(strlen(enc) == size && memcmp(enc, data, size) == 0);
        free(enc);
        free(dec);
    }
    /* Any bytes survive an encode/decode round trip. */
    char *enc = p2p_base64_encode(data, size);
    dec = p2p_base64_decode(enc, strlen(enc), &outlen);
    FUZZ_CHECK(dec != NULL);
    FUZZ_CHECK(outlen == size && memcmp(dec, data, size) == 0);
    free(dec);
    free(enc);
}

static void check_names(const uint8_t *data, size_t size)
{
    const char *why = "unset";
    bool safe = p2p_name_is_safe((const char *)data, size, &why);
    FUZZ_CHECK(safe == (why == NULL));
    char *san = p2p_name_sanitize((const char *)data, size);
    size_t sl = strlen(san);
    FUZZ_CHECK(p2p_name_is_safe(san, sl, NULL));
    if (safe) /* a name that is already safe is kept as it is */
        FUZZ_CHECK(sl == size && memcmp(san, data, size) == 0);
    /* Sanitizing is idempotent. */
    char *again = p2p_name_sanitize(san, sl);
    FUZZ_CHECK(strcmp(again, san) == 0);
    free(again);
    free(san);

    /* p2p_path_join refuses exactly the unsafe names (it takes a C string: stop at a NUL). */
    char *cname = p2p_xstrndup((const char *)data, size);
    char *joined = p2p_path_join("/data", cname);
    FUZZ_CHECK((joined != NULL) == p2p_name_is_safe(cname, strlen(cname), NULL));
    if (joined)
        FUZZ_CHECK(strncmp(joined, "/data/", 6) == 0 && strcmp(joined + 6, cname) == 0);
    free(joined);
    free(cname);
}

static void check_numbers(const uint8_t *data, size_t size)
{
    uint64_t v = 0, ref = 0;
    int rc = p2p_parse_u64((const char *)data, size, &v);
    bool ok = ref_parse_u64(data, size, &ref);
    FUZZ_CHECK((rc == 0) == ok);
    if (ok)
        FUZZ_CHECK(v == ref);

    if (size % 2 == 0 && size <= 256) {
        uint8_t bin[128];
        if (p2p_hex_decode((const char *)data, size / 2, bin) == 0) {
            char hex[257];
            p2p_hex_encode(bin, size / 2, hex);
            FUZZ_CHECK(strncasecmp(hex, (const char *)data, size) == 0);
            FUZZ_CHECK(p2p_is_lower_hex((const char *)data, size) ==
                       (size > 0 && memcmp(hex, data, size) == 0));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    check_base64(data, size);
    check_names(data, size);
    check_numbers(data, size);
    return 0;
}
