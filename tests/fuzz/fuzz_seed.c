/* Fuzz target: the seed parser (p2p_seed_parse, src/seed/seed.c). A seed that parses must be
 * self-consistent, and serialize -> parse -> serialize must give the same seed and bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsx.h"
#include "seed/seed.h"
#include "fuzz.h"

#define MAX_SEED (1u << 20) /* bigger inputs only slow the fuzzer down */

static void check_valid(const struct p2p_seed *s)
{
    FUZZ_CHECK(s->version == 1 || s->version == 2);
    FUZZ_CHECK(s->file_name && p2p_name_is_safe(s->file_name, strlen(s->file_name), NULL));
    FUZZ_CHECK(s->ntrackers >= 1 && s->ntrackers <= P2P_SEED_MAX_TRACKERS);
    for (size_t i = 0; i < s->ntrackers; i++)
        FUZZ_CHECK(p2p_seed_check_tracker(s->trackers[i], NULL) == 0);
    FUZZ_CHECK(s->tracker_addr == NULL || p2p_seed_check_tracker(s->tracker_addr, NULL) == 0);
    FUZZ_CHECK(s->algo == P2P_HASH_SHA1 || s->algo == P2P_HASH_SHA256);
    FUZZ_CHECK(s->length <= P2P_SEED_MAX_LENGTH);
    FUZZ_CHECK(s->piece_length >= 1);
    if (s->version == 1)
        FUZZ_CHECK(s->piece_length == P2P_SEED_V1_PIECE_LENGTH);
    /* The pieces tile the file exactly: all full but the last, which is 1..piece_length. */
    uint64_t want = s->length / s->piece_length + (s->length % s->piece_length ? 1 : 0);
    FUZZ_CHECK(s->npieces == want);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < s->npieces; i++) {
        uint64_t pl = p2p_seed_piece_len(s, i);
        FUZZ_CHECK(pl >= 1 && pl <= s->piece_length);
        sum += pl;
    }
    FUZZ_CHECK(sum == s->length);
    FUZZ_CHECK(p2p_seed_piece_len(s, s->npieces) == 0);
    FUZZ_CHECK(strlen(s->info_hash) == 64);
    struct p2p_seed copy = *s;
    p2p_seed_compute_info_hash(&copy);
    FUZZ_CHECK(memcmp(copy.info_hash, s->info_hash, 65) == 0);
}

static void check_same(const struct p2p_seed *a, const struct p2p_seed *b)
{
    FUZZ_CHECK(a->version == b->version);
    FUZZ_CHECK(strcmp(a->file_name, b->file_name) == 0);
    FUZZ_CHECK(a->length == b->length && a->piece_length == b->piece_length);
    FUZZ_CHECK(a->algo == b->algo && a->npieces == b->npieces);
    FUZZ_CHECK(strcmp(a->info_hash, b->info_hash) == 0);
    size_t hl = p2p_hash_len(a->algo);
    for (uint32_t i = 0; i < a->npieces; i++)
        FUZZ_CHECK(memcmp(a->pieces[i].digest, b->pieces[i].digest, hl) == 0);
    /* v1 seeds carry one tracker; v2 keep the whole list in order. */
    if (a->version == 2) {
        FUZZ_CHECK(a->ntrackers == b->ntrackers);
        for (size_t i = 0; i < a->ntrackers; i++)
            FUZZ_CHECK(strcmp(a->trackers[i], b->trackers[i]) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_SEED)
        return 0;
    struct p2p_seed s, s2;
    char err[256];
    memset(&s, 0, sizeof(s));
    memset(&s2, 0, sizeof(s2));
    err[0] = '\0';
    if (p2p_seed_parse((const char *)data, size, &s, err, sizeof(err)) < 0) {
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
        p2p_seed_cleanup(&s); /* must be safe on what a failed parse leaves */
        return 0;
    }
    check_valid(&s);

    size_t len1 = 0, len2 = 0;
    char *ser1 = p2p_seed_serialize(&s, &len1);
    FUZZ_CHECK(ser1 && strlen(ser1) == len1);
    int rc = p2p_seed_parse(ser1, len1, &s2, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "re-parse of a serialized seed failed: %s\n", err);
    FUZZ_CHECK(rc == 0);
    check_valid(&s2);
    check_same(&s, &s2);
    char *ser2 = p2p_seed_serialize(&s2, &len2);
    FUZZ_CHECK(len1 == len2 && memcmp(ser1, ser2, len1) == 0);
    free(ser1);
    free(ser2);
    p2p_seed_cleanup(&s2);
    p2p_seed_cleanup(&s);
    return 0;
}
