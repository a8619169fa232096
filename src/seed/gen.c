/* `p2p-sharer gen`: hash a file's pieces on every core (pthreads, OpenSSL EVP, large sequential
 * preads hashed while still in cache) and write <seedPath>/<name>.seed atomically. */
#include "seed/gen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/fsx.h"
#include "common/util.h"

#define GEN_DEFAULT_TRACKER "localhost:35330"
#define GEN_MAX_THREADS 64
/* Each pread fills this much and is hashed at once, while the bytes are still in L2. Chunks
 * from 64 KiB to 4 MiB measured the same here (docs/BENCHMARKS.md); whole-piece buffers of up
 * to 64 MiB per thread would only cost memory and cache. */
#define GEN_READ_CHUNK ((size_t)256 << 10)
/* Workers claim runs of contiguous pieces of about this many bytes: long sequential reads, and
 * at most this much left to one thread at the end. */
#define GEN_CLAIM_BYTES ((uint64_t)8 << 20)

/* `P2P_GEN_IO=mmap p2p-sharer gen ...` hashes from a mapping instead of pread (bench/gen.sh
 * compares them). CLI only: a file truncated under a mapping raises SIGBUS, which must never
 * happen inside a node calling p2p_gen_seed, and pread was within 5% anyway. */
static bool cli_use_mmap;

#define EXIT_USAGE 2
#define EXIT_RUNTIME 1

struct gen_job {
    int fd;
    const uint8_t *map;          /* whole file when P2P_GEN_IO=mmap, else NULL */
    const EVP_MD *md;
    struct p2p_seed *seed;
    uint32_t claim;              /* pieces per claim */
    atomic_uint_fast32_t next;   /* first unclaimed piece */
    atomic_int error;            /* first negative errno seen by a worker; 0 = none */
};

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

static void fail(struct gen_job *job, int code)
{
    int expected = 0;
    atomic_compare_exchange_strong(&job->error, &expected, code);
}

/* Hashes piece i into the seed; returns 0 or a negative errno (-EIO if the file shrank). */
static int hash_piece(struct gen_job *job, EVP_MD_CTX *ctx, uint8_t *buf, uint32_t i)
{
    const struct p2p_seed *s = job->seed;
    uint64_t off = (uint64_t)i * s->piece_length, left = p2p_seed_piece_len(s, i);

    if (EVP_DigestInit_ex2(ctx, job->md, NULL) != 1)
        return -EINVAL;
    while (left > 0) {
        size_t want = left < GEN_READ_CHUNK ? (size_t)left : GEN_READ_CHUNK;
        const uint8_t *p = buf;
        if (job->map) {
            p = job->map + off;
        } else {
            ssize_t r = pread(job->fd, buf, want, (off_t)off);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            if (r == 0)
                return -EIO;
            want = (size_t)r;
        }
        EVP_DigestUpdate(ctx, p, want);
        off += want;
        left -= want;
    }
    if (EVP_DigestFinal_ex(ctx, job->seed->pieces[i].digest, NULL) != 1)
        return -EINVAL;
    return 0;
}

static void *worker(void *arg)
{
    struct gen_job *job = arg;
    uint32_t n = job->seed->npieces;
    uint8_t *buf = job->map ? NULL : p2p_xmalloc(GEN_READ_CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) {
        fail(job, -ENOMEM);
        goto out;
    }
    for (;;) {
        uint32_t first = (uint32_t)atomic_fetch_add(&job->next, job->claim);
        if (first >= n || atomic_load(&job->error) != 0)
            break;
        uint32_t end = n - first < job->claim ? n : first + job->claim;
        for (uint32_t i = first; i < end; i++) {
            int rc = hash_piece(job, ctx, buf, i);
            if (rc < 0) {
                fail(job, rc);
                goto out;
            }
        }
    }
out:
    EVP_MD_CTX_free(ctx);
    free(buf);
    return NULL;
}

static unsigned cpu_count(void)
{
    cpu_set_t set;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 &&
        CPU_COUNT(&set) < n)
        n = CPU_COUNT(&set);
    return n < 1 ? 1 : (unsigned)n;
}

/* Runs the workers (the calling thread is one of them). Returns 0 or a negative errno. */
static int hash_all(struct gen_job *job, unsigned nthreads)
{
    pthread_t tids[GEN_MAX_THREADS];
    unsigned started = 0;

    if (nthreads == 0)
        nthreads = cpu_count();
    if (nthreads > GEN_MAX_THREADS)
        nthreads = GEN_MAX_THREADS;
    uint64_t claim = GEN_CLAIM_BYTES / job->seed->piece_length;
    job->claim = claim < 1 ? 1 : (uint32_t)claim;
    uint64_t claims = (job->seed->npieces + (uint64_t)job->claim - 1) / job->claim;
    if (claims < nthreads) {
        /* Few pieces: smaller claims so every core gets work. */
        job->claim = (uint32_t)((job->seed->npieces + (uint64_t)nthreads - 1) / nthreads);
        if (job->claim == 0)
            job->claim = 1;
    }
    atomic_init(&job->next, 0);
    atomic_init(&job->error, 0);
    for (unsigned t = 1; t < nthreads && t < job->seed->npieces; t++) {
        int rc = pthread_create(&tids[started], NULL, worker, job);
        if (rc != 0)
            break; /* fewer threads is still correct */
        started++;
    }
    worker(job);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    return atomic_load(&job->error);
}

static const EVP_MD *fetch_md(enum p2p_hash_algo algo)
{
    /* An explicit fetch once, rather than an implicit one per EVP_DigestInit (OpenSSL 3). */
    return EVP_MD_fetch(NULL, algo == P2P_HASH_SHA1 ? "SHA1" : "SHA256", NULL);
}

static const char *path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int p2p_gen_seed(const char *path, const char *file_name, enum p2p_hash_algo algo, int version,
                 uint64_t piece_length, char *const *trackers, size_t ntrackers,
                 unsigned nthreads, struct p2p_seed *out, char *err, size_t errlen)
{
    struct p2p_seed s;
    struct gen_job job;
    struct stat st, st2;
    EVP_MD *md = NULL;
    void *map = NULL;
    const char *why;
    char now[32];
    int rc = -1, fd = -1, r;

    memset(&s, 0, sizeof s);
    memset(&job, 0, sizeof job);
    if (version != 1 && version != 2) {
        seterr(err, errlen, "unsupported seed version %d", version);
        goto out;
    }
    if (algo != P2P_HASH_SHA1 && algo != P2P_HASH_SHA256) {
        seterr(err, errlen, "unsupported hash algorithm");
        goto out;
    }
    if (version == 1 && (algo != P2P_HASH_SHA1 ||
                         (piece_length != 0 && piece_length != P2P_SEED_V1_PIECE_LENGTH))) {
        seterr(err, errlen, "a version 1 seed uses sha1 and %u-byte pieces",
               P2P_SEED_V1_PIECE_LENGTH);
        goto out;
    }
    if (piece_length != 0 && (piece_length < P2P_SEED_MIN_PIECE ||
                              piece_length > P2P_SEED_MAX_PIECE ||
                              (piece_length & (piece_length - 1)) != 0)) {
        seterr(err, errlen, "piece size must be a power of two from %u to %u bytes",
               P2P_SEED_MIN_PIECE, P2P_SEED_MAX_PIECE);
        goto out;
    }
    if (ntrackers == 0 || ntrackers > P2P_SEED_MAX_TRACKERS ||
        (version == 1 && ntrackers != 1)) {
        seterr(err, errlen, "a seed needs 1 to %d trackers (exactly 1 for version 1)",
               P2P_SEED_MAX_TRACKERS);
        goto out;
    }
    for (size_t i = 0; i < ntrackers; i++) {
        if (p2p_seed_check_tracker(trackers[i], &why) < 0) {
            seterr(err, errlen, "tracker '%.64s': %s", trackers[i], why);
            goto out;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(trackers[i], trackers[j]) == 0) {
                seterr(err, errlen, "tracker '%.64s' given twice", trackers[i]);
                goto out;
            }
    }
    if (!file_name)
        file_name = path_basename(path);
    if (!p2p_name_is_safe(file_name, strlen(file_name), &why)) {
        seterr(err, errlen, "file name '%.64s' cannot be used in a seed: %s", file_name, why);
        goto out;
    }

    /* O_NONBLOCK: opening a FIFO must not hang; it is refused just below. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        seterr(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > P2P_SEED_MAX_LENGTH) {
        seterr(err, errlen, "%s: larger than %llu bytes", path, P2P_SEED_MAX_LENGTH);
        goto out;
    }
    s.version = version;
    s.algo = algo;
    s.length = (uint64_t)st.st_size;
    s.piece_length = piece_length ? piece_length
                     : version == 1 ? P2P_SEED_V1_PIECE_LENGTH
                                    : p2p_seed_default_piece_length(s.length);
    uint64_t npieces = s.length == 0 ? 0 : (s.length - 1) / s.piece_length + 1;
    /* Every serialized piece takes more than its hex checksum plus 40 bytes: refuse, before
     * allocating or hashing, a seed that could not fit the cap nodes enforce. */
    if (npieces > (P2P_SEED_MAX_BYTES / (2 * p2p_hash_len(algo) + 40))) {
        seterr(err, errlen,
               "%s: %" PRIu64 " pieces would not fit a %u-byte seed; use a larger piece size",
               path, npieces, P2P_SEED_MAX_BYTES);
        goto out;
    }
    s.npieces = (uint32_t)npieces;
    s.pieces = p2p_xcalloc(s.npieces ? s.npieces : 1, sizeof *s.pieces);
    s.file_name = p2p_xstrdup(file_name);
    s.trackers = p2p_xcalloc(ntrackers, sizeof *s.trackers);
    for (size_t i = 0; i < ntrackers; i++)
        s.trackers[i] = p2p_xstrdup(trackers[i]);
    s.ntrackers = ntrackers;
    s.tracker_addr = p2p_xstrdup(trackers[0]);

    if (s.npieces > 0) {
        md = (EVP_MD *)fetch_md(algo);
        if (!md) {
            seterr(err, errlen, "OpenSSL has no %s", p2p_hash_name(algo));
            goto out;
        }
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        if (cli_use_mmap) {
            map = mmap(NULL, (size_t)s.length, PROT_READ, MAP_SHARED, fd, 0);
            if (map == MAP_FAILED) {
                map = NULL;
            } else {
                madvise(map, (size_t)s.length, MADV_SEQUENTIAL);
            }
        }
        job.fd = fd;
        job.map = map;
        job.md = md;
        job.seed = &s;
        r = hash_all(&job, nthreads);
        if (r < 0) {
            seterr(err, errlen, "%s: %s", path,
                   r == -EIO ? "file shrank while hashing" : strerror(-r));
            goto out;
        }
    }
    /* A file written to while we hashed gives a seed nobody can download: refuse it. */
    if (fstat(fd, &st2) < 0 || st2.st_size != st.st_size ||
        st2.st_mtim.tv_sec != st.st_mtim.tv_sec || st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
        seterr(err, errlen, "%s: file changed while hashing", path);
        goto out;
    }
    p2p_rfc3339_now(now, sizeof now);
    s.created_at = p2p_xstrdup(now);
    p2p_seed_compute_info_hash(&s);
    *out = s;
    memset(&s, 0, sizeof s);
    rc = 0;
out:
    if (map)
        munmap(map, (size_t)st.st_size);
    EVP_MD_free(md);
    if (fd >= 0)
        close(fd);
    p2p_seed_cleanup(&s);
    return rc;
}

/* ---- command line ---- */

static const char usage_text[] =
    "Usage: p2p-sharer gen --filePath FILE [--seedPath DIR] [--tracker HOST:PORT]\n"
    "                      [--trackers HOST:PORT,...] [--pieceSize N] [--format v1|v2]\n"
    "\n"
    "Hashes FILE and writes DIR/<name>.seed (name = FILE's last path component).\n"
    "\n"
    "  --filePath FILE        the file to share (required)\n"
    "  --seedPath DIR         existing directory for the seed (default ./)\n"
    "  --tracker HOST:PORT    primary tracker, the seed's trackerAddr (default " GEN_DEFAULT_TRACKER
    ")\n"
    "  --trackers A,B,...     more trackers (v2 only); the first is primary if --tracker is absent\n"
    "  --pieceSize N          piece length, a power of two from 16KiB to 64MiB; plain bytes or\n"
    "                         with a K/KiB/M/MiB suffix (default: length/1000 rounded up to a\n"
    "                         power of two, clamped to 1MiB..16MiB)\n"
    "  --format v1|v2         v2 (default): sha256 and every field; v1: the Go original's format\n"
    "                         (sha1, 1MiB pieces, one tracker)\n"
    "  --help                 this text\n"
    "\n"
    "Flags may be written --name VALUE or --name=VALUE. On success prints the seed path and the\n"
    "infoHash. Exit status: 0 ok, 1 runtime error (file, directory, I/O), 2 usage error.\n";

struct gen_opts {
    const char *tracker;
    const char *trackers;
    const char *file_path;
    const char *seed_path;
    const char *piece_size;
    const char *format;
};

static int usage_error(const char *fmt, ...) P2P_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("p2p-sharer gen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nRun 'p2p-sharer gen --help' for usage.\n", stderr);
    return EXIT_USAGE;
}

/* Plain bytes, or a K/KiB/M/MiB suffix (powers of 1024). Returns 0 or -1. */
static int parse_size(const char *v, uint64_t *out)
{
    size_t n = 0, len = strlen(v);
    uint64_t mult = 1, x;
    while (n < len && v[n] >= '0' && v[n] <= '9')
        n++;
    const char *suf = v + n;
    if (*suf == '\0')
        mult = 1;
    else if (strcmp(suf, "K") == 0 || strcmp(suf, "KiB") == 0 || strcmp(suf, "k") == 0)
        mult = 1024;
    else if (strcmp(suf, "M") == 0 || strcmp(suf, "MiB") == 0 || strcmp(suf, "m") == 0)
        mult = 1024 * 1024;
    else
        return -1;
    if (p2p_parse_u64(v, n, &x) < 0 || x > UINT64_MAX / mult)
        return -1;
    *out = x * mult;
    return 0;
}

/* Fills o from argv; returns 0, -1 (usage error printed) or 1 (--help printed). */
static int parse_args(int argc, char **argv, struct gen_opts *o)
{
    static const struct {
        const char *name;
        size_t off;
    } flags[] = {
        {"tracker", offsetof(struct gen_opts, tracker)},
        {"trackers", offsetof(struct gen_opts, trackers)},
        {"filePath", offsetof(struct gen_opts, file_path)},
        {"seedPath", offsetof(struct gen_opts, seed_path)},
        {"pieceSize", offsetof(struct gen_opts, piece_size)},
        {"format", offsetof(struct gen_opts, format)},
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            usage_error("unexpected argument '%.64s'", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        size_t k;
        for (k = 0; k < P2P_ARRAY_LEN(flags); k++)
            if (strlen(flags[k].name) == nlen && strncmp(flags[k].name, name, nlen) == 0)
                break;
        if (k == P2P_ARRAY_LEN(flags)) {
            usage_error("unknown flag '--%.*s'", (int)(nlen > 64 ? 64 : nlen), name);
            return -1;
        }
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            value = argv[++i];
        } else {
            usage_error("flag '--%s' needs a value", flags[k].name);
            return -1;
        }
        if (value[0] == '\0') {
            usage_error("flag '--%s' has an empty value", flags[k].name);
            return -1;
        }
        const char **slot = (const char **)((char *)o + flags[k].off);
        if (*slot) {
            usage_error("flag '--%s' given twice", flags[k].name);
            return -1;
        }
        *slot = value;
    }
    return 0;
}

/* Builds the tracker list: --tracker first, then --trackers entries. Returns count or -1. */
static int build_trackers(const struct gen_opts *o, char **list, char **store)
{
    size_t n = 0;
    const char *why;
    if (o->tracker)
        list[n++] = (char *)o->tracker;
    if (o->trackers) {
        size_t tl = strlen(o->trackers);
        if (o->trackers[0] == ',' || o->trackers[tl - 1] == ',' || strstr(o->trackers, ",,")) {
            usage_error("--trackers has an empty entry");
            return -1;
        }
        *store = p2p_xstrdup(o->trackers);
        char *save = NULL;
        for (char *t = strtok_r(*store, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (o->tracker && strcmp(t, o->tracker) == 0)
                continue;
            if (n == P2P_SEED_MAX_TRACKERS) {
                usage_error("at most %d trackers", P2P_SEED_MAX_TRACKERS);
                return -1;
            }
            list[n++] = t;
        }
    }
    if (n == 0)
        list[n++] = (char *)GEN_DEFAULT_TRACKER;
    for (size_t i = 0; i < n; i++) {
        if (p2p_seed_check_tracker(list[i], &why) < 0) {
            usage_error("bad tracker '%.64s': %s", list[i], why);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(list[i], list[j]) == 0) {
                usage_error("tracker '%.64s' given twice", list[i]);
                return -1;
            }
    }
    return (int)n;
}

int p2p_gen_main(int argc, char **argv)
{
    struct gen_opts o;
    struct p2p_seed seed;
    struct stat st;
    char *trackers[P2P_SEED_MAX_TRACKERS];
    char *tracker_store = NULL, *seed_file = NULL, *seed_name = NULL, *text = NULL;
    char err[512];
    const char *why;
    uint64_t piece = 0;
    int version = 2, ntr, rc = EXIT_USAGE;
    size_t len;

    memset(&o, 0, sizeof o);
    memset(&seed, 0, sizeof seed);
    const char *io = getenv("P2P_GEN_IO");
    cli_use_mmap = io && strcmp(io, "mmap") == 0;
    int pr = parse_args(argc, argv, &o);
    if (pr != 0) {
        rc = pr > 0 ? 0 : EXIT_USAGE;
        goto out;
    }
    if (!o.file_path) {
        usage_error("--filePath is required");
        goto out;
    }
    if (o.format) {
        if (strcmp(o.format, "v1") == 0) {
            version = 1;
        } else if (strcmp(o.format, "v2") != 0) {
            usage_error("--format must be v1 or v2");
            goto out;
        }
    }
    if (o.piece_size) {
        if (parse_size(o.piece_size, &piece) < 0 || piece < P2P_SEED_MIN_PIECE ||
            piece > P2P_SEED_MAX_PIECE || (piece & (piece - 1)) != 0) {
            usage_error("--pieceSize must be a power of two from 16KiB to 64MiB");
            goto out;
        }
        if (version == 1 && piece != P2P_SEED_V1_PIECE_LENGTH) {
            usage_error("--format v1 uses 1MiB pieces; --pieceSize cannot change that");
            goto out;
        }
    }
    ntr = build_trackers(&o, trackers, &tracker_store);
    if (ntr < 0)
        goto out;
    if (version == 1 && ntr > 1) {
        usage_error("--format v1 holds one tracker; drop --trackers or use v2");
        goto out;
    }

    /* Runtime checks before hashing, so a bad destination costs nothing. */
    rc = EXIT_RUNTIME;
    const char *base = path_basename(o.file_path);
    if (!p2p_name_is_safe(base, strlen(base), &why)) {
        fprintf(stderr, "p2p-sharer gen: file name '%.64s' cannot be used in a seed: %s\n", base,
                why);
        goto out;
    }
    const char *dir = o.seed_path ? o.seed_path : "./";
    if (stat(dir, &st) < 0) {
        fprintf(stderr, "p2p-sharer gen: --seedPath %s: %s\n", dir, strerror(errno));
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "p2p-sharer gen: --seedPath %s: not a directory\n", dir);
        goto out;
    }
    seed_name = p2p_xasprintf("%s.seed", base);
    seed_file = p2p_path_join(dir, seed_name);
    if (!seed_file || strlen(seed_name) > P2P_NAME_MAX) {
        fprintf(stderr, "p2p-sharer gen: seed name '%.64s...' is too long\n", seed_name);
        goto out;
    }
    if (p2p_gen_seed(o.file_path, base, version == 1 ? P2P_HASH_SHA1 : P2P_HASH_SHA256, version,
                     piece, trackers, (size_t)ntr, 0, &seed, err, sizeof err) < 0) {
        fprintf(stderr, "p2p-sharer gen: %s\n", err);
        goto out;
    }
    text = p2p_seed_serialize(&seed, &len);
    if (len > P2P_SEED_MAX_BYTES) {
        fprintf(stderr, "p2p-sharer gen: the seed would be %zu bytes, over the %u-byte limit; "
                "use a larger --pieceSize\n", len, P2P_SEED_MAX_BYTES);
        goto out;
    }
    int wr = p2p_atomic_write(seed_file, text, len);
    if (wr < 0) {
        fprintf(stderr, "p2p-sharer gen: writing %s: %s\n", seed_file, strerror(-wr));
        goto out;
    }
    printf("seed: %s\ninfoHash: %s\n", seed_file, seed.info_hash);
    rc = fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
out:
    free(text);
    free(seed_file);
    free(seed_name);
    free(tracker_store);
    p2p_seed_cleanup(&seed);
    return rc;
}
