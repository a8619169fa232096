/* Unit tests for the seed model (src/seed/seed.c) and the gen hasher (src/seed/gen.c): DESIGN.md
 * test vectors, the valid/hostile corpus in fixtures/seeds/, serialization formats. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/fsx.h"
#include "common/util.h"
#include "seed/gen.h"
#include "seed/seed.h"

#define FIXTURES "fixtures/seeds"

static char *slurp(const char *path, size_t *len)
{
    char *buf = NULL;
    int rc = p2p_read_file(path, P2P_SEED_MAX_BYTES + 1, &buf, len);
    if (rc != 0)
        fail_msg("cannot read %s: %s", path, strerror(-rc));
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/p2p-test-seed-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return p2p_xstrdup(d);
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = p2p_xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static void hex_of_piece(const struct p2p_seed *s, uint32_t i, char *out)
{
    p2p_hex_encode(s->pieces[i].digest, p2p_hash_len(s->algo), out);
}

/* ---- DESIGN.md §3 test vectors ---- */

static void gen_one(const char *dir, const char *name, const void *data, size_t len,
                    enum p2p_hash_algo algo, int version, struct p2p_seed *out)
{
    char err[256];
    char *path = p2p_xasprintf("%s/%s", dir, name);
    char *trackers[] = {"127.0.0.1:35330"};
    write_file(path, data, len);
    int rc = p2p_gen_seed(path, NULL, algo, version, 0, trackers, 1, 0, out, err, sizeof err);
    if (rc != 0)
        fail_msg("gen %s: %s", name, err);
    free(path);
}

static void test_vectors(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char hex[65];
    struct p2p_seed s;

    gen_one(dir, "hello.txt", "hello world\n", 12, P2P_HASH_SHA256, 2, &s);
    assert_string_equal(s.file_name, "hello.txt");
    assert_int_equal(s.length, 12);
    assert_int_equal(s.piece_length, 1048576);
    assert_int_equal(s.npieces, 1);
    hex_of_piece(&s, 0, hex);
    assert_string_equal(hex, "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");
    assert_string_equal(s.info_hash,
                        "75310ef2025a5e77fdc38960577351df973f0c484c8337bc321c11e85621a2e0");
    p2p_seed_cleanup(&s);

    gen_one(dir, "hello.txt", "hello world\n", 12, P2P_HASH_SHA1, 1, &s);
    hex_of_piece(&s, 0, hex);
    assert_string_equal(hex, "22596363b3de40b06f981fb85d82312e8c0ed511");
    assert_string_equal(s.info_hash,
                        "e25983581434c6e4dc8772c2df89a00dd97a7f6d303cb4481dc112fc523ccbd0");
    p2p_seed_cleanup(&s);

    gen_one(dir, "empty.bin", "", 0, P2P_HASH_SHA256, 2, &s);
    assert_int_equal(s.npieces, 0);
    assert_string_equal(s.info_hash,
                        "69916c977bb2bb59afcb0589bd39fb243e53440e89732b7a675ab3f8f55146e1");
    p2p_seed_cleanup(&s);

    /* The same vectors built by hand, through p2p_seed_hash and compute_info_hash. */
    struct p2p_seed h;
    memset(&h, 0, sizeof h);
    h.version = 2;
    h.file_name = p2p_xstrdup("hello.txt");
    h.length = 12;
    h.piece_length = 1048576;
    h.algo = P2P_HASH_SHA256;
    h.npieces = 1;
    h.pieces = p2p_xcalloc(1, sizeof *h.pieces);
    p2p_seed_hash(P2P_HASH_SHA256, "hello world\n", 12, h.pieces[0].digest);
    p2p_seed_compute_info_hash(&h);
    assert_string_equal(h.info_hash,
                        "75310ef2025a5e77fdc38960577351df973f0c484c8337bc321c11e85621a2e0");
    assert_true(p2p_seed_verify_piece(&h, 0, "hello world\n", 12));
    assert_false(p2p_seed_verify_piece(&h, 0, "hello world!", 12));
    assert_false(p2p_seed_verify_piece(&h, 0, "hello world\n", 11));
    assert_false(p2p_seed_verify_piece(&h, 1, "hello world\n", 12));
    p2p_seed_cleanup(&h);

    rm_tree(dir);
    free(dir);
}

/* ---- corpus ---- */

static void assert_seeds_equal(const struct p2p_seed *a, const struct p2p_seed *b)
{
    assert_int_equal(a->version, b->version);
    assert_string_equal(a->file_name, b->file_name);
    assert_string_equal(a->tracker_addr, b->tracker_addr);
    assert_int_equal(a->length, b->length);
    assert_int_equal(a->piece_length, b->piece_length);
    assert_int_equal(a->algo, b->algo);
    assert_int_equal(a->npieces, b->npieces);
    for (uint32_t i = 0; i < a->npieces; i++)
        assert_memory_equal(a->pieces[i].digest, b->pieces[i].digest, p2p_hash_len(a->algo));
    assert_string_equal(a->info_hash, b->info_hash);
    if (a->created_at && b->created_at)
        assert_string_equal(a->created_at, b->created_at);
    if (a->version == 2) {
        assert_int_equal(a->ntrackers, b->ntrackers);
        for (size_t i = 0; i < a->ntrackers; i++)
            assert_string_equal(a->trackers[i], b->trackers[i]);
    }
}

/* Parses text, serializes, re-parses; the two seeds must match and re-serializing must give the
 * same bytes. */
static void round_trip(const char *what, const char *text, size_t len)
{
    char err[512];
    struct p2p_seed a, b;
    size_t n1, n2;
    if (p2p_seed_parse(text, len, &a, err, sizeof err) != 0)
        fail_msg("%s: rejected: %s", what, err);
    assert_int_equal(a.info_hash[64], '\0');
    assert_true(p2p_is_lower_hex(a.info_hash, 64));
    assert_true(a.ntrackers >= 1);
    assert_non_null(a.tracker_addr);
    char *out1 = p2p_seed_serialize(&a, &n1);
    assert_int_equal(strlen(out1), n1);
    if (p2p_seed_parse(out1, n1, &b, err, sizeof err) != 0)
        fail_msg("%s: own output rejected: %s\n%s", what, err, out1);
    assert_seeds_equal(&a, &b);
    char *out2 = p2p_seed_serialize(&b, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(out1, out2, n1);
    free(out1);
    free(out2);
    p2p_seed_cleanup(&a);
    p2p_seed_cleanup(&b);
}

static void test_valid_corpus(void **state)
{
    (void)state;
    DIR *d = opendir(FIXTURES "/valid");
    assert_non_null(d);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = p2p_xasprintf(FIXTURES "/valid/%s", e->d_name);
        size_t len;
        char *text = slurp(path, &len);
        round_trip(e->d_name, text, len);
        free(text);
        free(path);
        count++;
    }
    closedir(d);
    assert_true(count >= 15);
}

static void test_valid_details(void **state)
{
    (void)state;
    char err[512];
    struct p2p_seed s;
    size_t len;
    char *text;

    text = slurp(FIXTURES "/valid/v1-go.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    assert_int_equal(s.version, 1);
    assert_int_equal(s.algo, P2P_HASH_SHA1);
    assert_int_equal(s.piece_length, 1048576);
    assert_int_equal(s.npieces, 3);
    assert_int_equal(p2p_seed_piece_len(&s, 2), 2500000 - 2 * 1048576);
    assert_int_equal(s.ntrackers, 1);
    assert_string_equal(s.trackers[0], "127.0.0.1:35330");
    assert_string_equal(s.created_at, "2019-09-05T10:11:12.123456789+08:00");
    p2p_seed_cleanup(&s);
    free(text);

    text = slurp(FIXTURES "/valid/v1-empty-null.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    assert_int_equal(s.npieces, 0);
    assert_int_equal(s.length, 0);
    p2p_seed_cleanup(&s);
    free(text);

    text = slurp(FIXTURES "/valid/v1-trackers-ignored.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    assert_int_equal(s.ntrackers, 1);
    assert_string_equal(s.trackers[0], "127.0.0.1:35330");
    p2p_seed_cleanup(&s);
    free(text);

    text = slurp(FIXTURES "/valid/v2-trackers-only.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    assert_string_equal(s.tracker_addr, "127.0.0.1:35330");
    assert_int_equal(s.ntrackers, 2);
    p2p_seed_cleanup(&s);
    free(text);

    text = slurp(FIXTURES "/valid/v2-trackeraddr-only.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    assert_int_equal(s.ntrackers, 1);
    assert_string_equal(s.trackers[0], "127.0.0.1:35330");
    p2p_seed_cleanup(&s);
    free(text);

    text = slurp(FIXTURES "/valid/v2-trackeraddr-second.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    assert_string_equal(s.tracker_addr, "10.0.0.6:35330");
    p2p_seed_cleanup(&s);
    free(text);

    /* The infoHash the fixture generator computed (in Python) is accepted: same formula. */
    text = slurp(FIXTURES "/valid/v2-basic.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    assert_int_equal(s.npieces, 3);
    assert_int_equal(p2p_seed_piece_len(&s, 0), 16384);
    assert_int_equal(p2p_seed_piece_len(&s, 2), 40000 - 2 * 16384);
    assert_int_equal(p2p_seed_piece_len(&s, 3), 0);
    json_t *doc = json_loadb(text, len, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "infoHash")), s.info_hash);
    json_decref(doc);
    p2p_seed_cleanup(&s);
    free(text);
}

static void test_invalid_corpus(void **state)
{
    (void)state;
    char err[512];
    size_t elen;
    char *expected = slurp(FIXTURES "/invalid/EXPECTED", &elen);
    int count = 0;
    char *save = NULL;

    for (char *line = strtok_r(expected, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        *tab = '\0';
        const char *want = tab + 1;
        char *path = p2p_xasprintf(FIXTURES "/invalid/%s", line);
        size_t len;
        char *text = slurp(path, &len);
        struct p2p_seed s;
        memset(err, 0, sizeof err);
        if (p2p_seed_parse(text, len, &s, err, sizeof err) == 0) {
            p2p_seed_cleanup(&s);
            fail_msg("%s: accepted, expected rejection naming '%s'", line, want);
        }
        if (!strstr(err, want))
            fail_msg("%s: message '%s' does not name '%s'", line, err, want);
        free(text);
        free(path);
        count++;
    }
    free(expected);

    /* Every file in the directory is covered by EXPECTED. */
    DIR *d = opendir(FIXTURES "/invalid");
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, "EXPECTED") != 0)
            files++;
    closedir(d);
    assert_int_equal(files, count);
    assert_true(count >= 100);
}

/* A seed that passes with a valid JSON head, padded with whitespace to size. */
static void test_size_cap(void **state)
{
    (void)state;
    char err[512];
    struct p2p_seed s;
    size_t len;
    char *text = slurp(FIXTURES "/valid/v2-basic.seed", &len);
    char *big = p2p_xmalloc((size_t)P2P_SEED_MAX_BYTES + 1);
    memcpy(big, text, len);
    memset(big + len, ' ', (size_t)P2P_SEED_MAX_BYTES + 1 - len);

    assert_int_equal(p2p_seed_parse(big, P2P_SEED_MAX_BYTES, &s, err, sizeof err), 0);
    p2p_seed_cleanup(&s);
    assert_int_equal(p2p_seed_parse(big, (size_t)P2P_SEED_MAX_BYTES + 1, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit"));
    free(big);
    free(text);
}

/* Many pieces: parse/serialize stay correct at scale (64 Mi pieces would not fit the cap). */
static void test_many_pieces(void **state)
{
    (void)state;
    struct p2p_seed s, b;
    char err[256];
    size_t len;
    memset(&s, 0, sizeof s);
    s.version = 2;
    s.file_name = p2p_xstrdup("many.bin");
    s.tracker_addr = p2p_xstrdup("t:1");
    s.trackers = p2p_xcalloc(1, sizeof *s.trackers);
    s.trackers[0] = p2p_xstrdup("t:1");
    s.ntrackers = 1;
    s.piece_length = P2P_SEED_MIN_PIECE;
    s.npieces = 200000;
    s.length = (uint64_t)s.npieces * s.piece_length - 1;
    s.algo = P2P_HASH_SHA256;
    s.pieces = p2p_xcalloc(s.npieces, sizeof *s.pieces);
    for (uint32_t i = 0; i < s.npieces; i++)
        memcpy(s.pieces[i].digest, &i, sizeof i);
    p2p_seed_compute_info_hash(&s);
    char *text = p2p_seed_serialize(&s, &len);
    assert_true(len < P2P_SEED_MAX_BYTES);
    assert_int_equal(p2p_seed_parse(text, len, &b, err, sizeof err), 0);
    assert_seeds_equal(&s, &b);
    assert_int_equal(p2p_seed_piece_len(&b, b.npieces - 1), P2P_SEED_MIN_PIECE - 1);
    free(text);
    p2p_seed_cleanup(&s);
    p2p_seed_cleanup(&b);
}

/* ---- serialization formats ---- */

static void assert_keys(json_t *obj, const char *const *keys, size_t n)
{
    size_t i = 0;
    const char *k;
    json_t *v;
    assert_int_equal(json_object_size(obj), n);
    json_object_foreach(obj, k, v)
    {
        (void)v;
        assert_true(i < n);
        assert_string_equal(k, keys[i]);
        i++;
    }
}

static void test_v1_serialize(void **state)
{
    (void)state;
    static const char *const top[] = {"fileName", "trackerAddr", "length", "pieces", "createdAt"};
    static const char *const piece[] = {"index", "length", "checksum"};
    char err[256];
    struct p2p_seed s;
    size_t len;
    char *text = slurp(FIXTURES "/valid/v1-go.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    char *out = p2p_seed_serialize(&s, &len);

    /* Go's json.MarshalIndent(v, "", "\t") of the original's SeedInfo, byte for byte. */
    static const char want_head[] =
        "{\n\t\"fileName\": \"data.bin\",\n\t\"trackerAddr\": \"127.0.0.1:35330\",\n"
        "\t\"length\": 2500000,\n\t\"pieces\": [\n\t\t{\n\t\t\t\"index\": 0,\n"
        "\t\t\t\"length\": 1048576,\n"
        "\t\t\t\"checksum\": \"0101010101010101010101010101010101010101\"\n\t\t},\n";
    static const char want_tail[] =
        "\t\t}\n\t],\n\t\"createdAt\": \"2019-09-05T10:11:12.123456789+08:00\"\n}";
    assert_memory_equal(out, want_head, strlen(want_head));
    assert_true(len > strlen(want_tail));
    assert_string_equal(out + len - strlen(want_tail), want_tail);
    /* The committed fixture was written the way Go writes it, so the output equals it. */
    assert_int_equal(len, strlen(text));
    assert_string_equal(out, text);
    for (const char *p = out; (p = strchr(p, '\n')); p++)
        assert_true(p[1] == '\t' || p[1] == '}');

    json_t *doc = json_loadb(out, len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(doc);
    assert_keys(doc, top, P2P_ARRAY_LEN(top));
    json_t *pieces = json_object_get(doc, "pieces");
    assert_int_equal(json_array_size(pieces), 3);
    for (size_t i = 0; i < json_array_size(pieces); i++)
        assert_keys(json_array_get(pieces, i), piece, P2P_ARRAY_LEN(piece));
    json_decref(doc);
    free(out);
    free(text);

    /* Empty v1: pieces [] (as the original's gen writes), still no version/infoHash. */
    s.npieces = 0;
    s.length = 0;
    s.version = 1;
    out = p2p_seed_serialize(&s, &len);
    assert_non_null(strstr(out, "\"pieces\": [],"));
    assert_null(strstr(out, "version"));
    assert_null(strstr(out, "infoHash"));
    free(out);
    p2p_seed_cleanup(&s);
}

static void test_v2_serialize(void **state)
{
    (void)state;
    static const char *const top[] = {"version", "fileName", "trackerAddr", "trackers",
                                      "length", "pieceLength", "hashAlgo", "pieces",
                                      "infoHash", "createdAt"};
    char err[256];
    struct p2p_seed s;
    size_t len;
    char *text = slurp(FIXTURES "/valid/v2-no-createdat.seed", &len);
    assert_int_equal(p2p_seed_parse(text, len, &s, err, sizeof err), 0);
    assert_null(s.created_at);
    char *out = p2p_seed_serialize(&s, &len);
    assert_int_equal(out[len - 1], '\n');
    json_t *doc = json_loadb(out, len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(doc);
    assert_keys(doc, top, P2P_ARRAY_LEN(top));
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 2);
    assert_string_equal(json_string_value(json_object_get(doc, "hashAlgo")), "sha256");
    assert_string_equal(json_string_value(json_object_get(doc, "infoHash")), s.info_hash);
    /* An absent createdAt is written as Go's zero time, which Go nodes can unmarshal. */
    assert_string_equal(json_string_value(json_object_get(doc, "createdAt")),
                        "0001-01-01T00:00:00Z");
    json_decref(doc);

    /* to_json gives the same document. */
    json_t *obj = p2p_seed_to_json(&s);
    struct p2p_seed b;
    assert_int_equal(p2p_seed_from_json(obj, &b, err, sizeof err), 0);
    assert_seeds_equal(&s, &b);
    json_decref(obj);
    p2p_seed_cleanup(&b);
    json_t *arr = json_array();
    assert_int_equal(p2p_seed_from_json(arr, &b, err, sizeof err), -1);
    json_decref(arr);
    free(out);
    free(text);
    p2p_seed_cleanup(&s);
}

/* ---- helpers ---- */

static void test_check_tracker(void **state)
{
    (void)state;
    static const char *const good[] = {"localhost:35330", "127.0.0.1:1", "a.b-c_d.example:65535",
                                       "[::1]:80", "[::]:1", "[::ffff:10.0.0.1]:35330"};
    static const char *const bad[] = {"", "localhost", ":80", "h:0", "h:65536", "h:08", "h:+1",
                                      "h:1/", "http://h:1", "h :1", "h:1 ", "h\n:1", "[::1]",
                                      "[]:1", "[::g]:1", "::1:80", "h?x:1", "h:99999999999999999999",
                                      "h/p:1"};
    const char *why;
    for (size_t i = 0; i < P2P_ARRAY_LEN(good); i++)
        if (p2p_seed_check_tracker(good[i], &why) != 0)
            fail_msg("'%s' rejected: %s", good[i], why);
    for (size_t i = 0; i < P2P_ARRAY_LEN(bad); i++) {
        why = NULL;
        if (p2p_seed_check_tracker(bad[i], &why) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(why);
    }
    char longhost[300];
    memset(longhost, 'h', sizeof longhost);
    strcpy(longhost + 254, ":1");
    assert_int_equal(p2p_seed_check_tracker(longhost, NULL), -1);
    strcpy(longhost + 253, ":1");
    assert_int_equal(p2p_seed_check_tracker(longhost, NULL), 0);
}

static void test_default_piece_length(void **state)
{
    (void)state;
    const uint64_t MiB = 1048576;
    assert_int_equal(p2p_seed_default_piece_length(0), MiB);
    assert_int_equal(p2p_seed_default_piece_length(12), MiB);
    assert_int_equal(p2p_seed_default_piece_length(1000 * MiB), MiB);
    assert_int_equal(p2p_seed_default_piece_length(1000 * MiB + 1000), 2 * MiB);
    assert_int_equal(p2p_seed_default_piece_length((uint64_t)1 << 32), 8 * MiB);
    assert_int_equal(p2p_seed_default_piece_length((uint64_t)16000 * MiB), 16 * MiB);
    assert_int_equal(p2p_seed_default_piece_length(P2P_SEED_MAX_LENGTH), 16 * MiB);
    assert_int_equal(p2p_hash_len(P2P_HASH_SHA1), 20);
    assert_int_equal(p2p_hash_len(P2P_HASH_SHA256), 32);
    assert_string_equal(p2p_hash_name(P2P_HASH_SHA1), "sha1");
    assert_string_equal(p2p_hash_name(P2P_HASH_SHA256), "sha256");
}

/* ---- gen ---- */

static void test_gen_pieces(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 16383, 16384, 16385, 5 * 16384 + 77, 1 << 20};
    static const unsigned threads[] = {1, 2, 3, 7};
    char *dir = make_tmpdir();
    char *path = p2p_xasprintf("%s/data.bin", dir);
    char *trackers[] = {"a:1", "b:2"};
    char err[256];
    size_t maxlen = 1 << 20;
    uint8_t *data = p2p_xmalloc(maxlen);
    p2p_random_bytes(data, maxlen);

    for (size_t si = 0; si < P2P_ARRAY_LEN(sizes); si++) {
        write_file(path, data, sizes[si]);
        for (size_t ti = 0; ti < P2P_ARRAY_LEN(threads); ti++) {
            for (int algo = P2P_HASH_SHA1; algo <= P2P_HASH_SHA256; algo++) {
                struct p2p_seed s;
                uint8_t want[32];
                assert_int_equal(p2p_gen_seed(path, "named.bin", (enum p2p_hash_algo)algo, 2,
                                              16384, trackers, 2, threads[ti], &s, err,
                                              sizeof err),
                                 0);
                assert_string_equal(s.file_name, "named.bin");
                assert_int_equal(s.length, sizes[si]);
                assert_int_equal(s.npieces, (sizes[si] + 16383) / 16384);
                assert_string_equal(s.tracker_addr, "a:1");
                assert_int_equal(s.ntrackers, 2);
                assert_non_null(s.created_at);
                for (uint32_t i = 0; i < s.npieces; i++) {
                    uint64_t pl = p2p_seed_piece_len(&s, i);
                    p2p_seed_hash(s.algo, data + (size_t)i * 16384, (size_t)pl, want);
                    assert_memory_equal(want, s.pieces[i].digest, p2p_hash_len(s.algo));
                    assert_true(p2p_seed_verify_piece(&s, i, data + (size_t)i * 16384, pl));
                }
                /* The generated seed passes our own validation. */
                size_t len;
                char *text = p2p_seed_serialize(&s, &len);
                struct p2p_seed b;
                if (p2p_seed_parse(text, len, &b, err, sizeof err) != 0)
                    fail_msg("own seed rejected: %s", err);
                assert_seeds_equal(&s, &b);
                p2p_seed_cleanup(&b);
                free(text);
                p2p_seed_cleanup(&s);
            }
        }
    }
    /* Default piece length for v2, fixed 1 MiB for v1. */
    struct p2p_seed s;
    assert_int_equal(p2p_gen_seed(path, NULL, P2P_HASH_SHA256, 2, 0, trackers, 1, 0, &s, err,
                                  sizeof err),
                     0);
    assert_int_equal(s.piece_length, 1048576);
    assert_string_equal(s.file_name, "data.bin");
    p2p_seed_cleanup(&s);
    free(data);
    unlink(path);
    free(path);
    rm_tree(dir);
    free(dir);
}

static void test_gen_errors(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *file = p2p_xasprintf("%s/f.bin", dir);
    char *fifo = p2p_xasprintf("%s/fifo", dir);
    char *hidden = p2p_xasprintf("%s/.hidden", dir);
    char *missing = p2p_xasprintf("%s/missing", dir);
    char *one[] = {"t:1"}, *two[] = {"t:1", "u:2"}, *dup[] = {"t:1", "t:1"};
    char *badt[] = {"http://t:1"};
    char err[256];
    struct p2p_seed s;
    write_file(file, "abc", 3);
    write_file(hidden, "abc", 3);
    assert_int_equal(mkfifo(fifo, 0600), 0);

#define GEN_FAILS(p, name, algo, ver, pl, tr, ntr, want)                                          \
    do {                                                                                           \
        err[0] = '\0';                                                                             \
        assert_int_equal(p2p_gen_seed(p, name, algo, ver, pl, tr, ntr, 2, &s, err, sizeof err),   \
                         -1);                                                                      \
        if (!strstr(err, want))                                                                    \
            fail_msg("message '%s' lacks '%s'", err, want);                                        \
    } while (0)

    GEN_FAILS(missing, NULL, P2P_HASH_SHA256, 2, 0, one, 1, "No such file");
    GEN_FAILS(dir, "x", P2P_HASH_SHA256, 2, 0, one, 1, "not a regular file");
    GEN_FAILS(fifo, NULL, P2P_HASH_SHA256, 2, 0, one, 1, "not a regular file");
    GEN_FAILS(hidden, NULL, P2P_HASH_SHA256, 2, 0, one, 1, "file name");
    GEN_FAILS(file, "../x", P2P_HASH_SHA256, 2, 0, one, 1, "file name");
    GEN_FAILS(file, NULL, P2P_HASH_SHA256, 1, 0, one, 1, "version 1");
    GEN_FAILS(file, NULL, P2P_HASH_SHA1, 1, 4 << 20, one, 1, "version 1");
    GEN_FAILS(file, NULL, P2P_HASH_SHA1, 1, 0, two, 2, "trackers");
    GEN_FAILS(file, NULL, P2P_HASH_SHA256, 2, 0, one, 0, "trackers");
    GEN_FAILS(file, NULL, P2P_HASH_SHA256, 2, 0, dup, 2, "twice");
    GEN_FAILS(file, NULL, P2P_HASH_SHA256, 2, 0, badt, 1, "scheme");
    GEN_FAILS(file, NULL, P2P_HASH_SHA256, 2, 20000, one, 1, "power of two");
    GEN_FAILS(file, NULL, P2P_HASH_SHA256, 2, 8192, one, 1, "power of two");
    GEN_FAILS(file, NULL, P2P_HASH_SHA256, 3, 0, one, 1, "version");
    GEN_FAILS(file, NULL, (enum p2p_hash_algo)9, 2, 0, one, 1, "hash");
    /* A sparse 1 TiB file: too many pieces for a 64 MiB seed, refused before any hashing. */
    char *sparse = p2p_xasprintf("%s/sparse.bin", dir);
    int fd = open(sparse, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    if (ftruncate(fd, (off_t)1 << 40) == 0) {
        GEN_FAILS(sparse, NULL, P2P_HASH_SHA256, 2, 16384, one, 1, "larger piece size");
        GEN_FAILS(sparse, NULL, P2P_HASH_SHA1, 1, 0, one, 1, "larger piece size");
    }
    close(fd);
    free(sparse);
#undef GEN_FAILS
    /* Unreadable file (skipped as root, who can read anything). */
    if (geteuid() != 0) {
        chmod(file, 0);
        assert_int_equal(p2p_gen_seed(file, NULL, P2P_HASH_SHA256, 2, 0, one, 1, 1, &s, err,
                                      sizeof err),
                         -1);
        assert_non_null(strstr(err, "Permission denied"));
    }
    rm_tree(dir);
    free(dir);
    free(file);
    free(fifo);
    free(hidden);
    free(missing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_valid_corpus),
        cmocka_unit_test(test_valid_details),
        cmocka_unit_test(test_invalid_corpus),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_many_pieces),
        cmocka_unit_test(test_v1_serialize),
        cmocka_unit_test(test_v2_serialize),
        cmocka_unit_test(test_check_tracker),
        cmocka_unit_test(test_default_piece_length),
        cmocka_unit_test(test_gen_pieces),
        cmocka_unit_test(test_gen_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
