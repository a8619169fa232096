/* Node storage: the download_dir/complete_dir layout (data, .seed, .bitfield, .ok), task
 * creation, resume, scan and finishing. Every file operation runs on the libuv thread pool. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsx.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "node/node_int.h"

struct p2p_node_file *p2p_node_find(struct p2p_node *n, const char *info_hash)
{
    for (struct p2p_node_file *f = n->files; f; f = f->next)
        if (strcmp(f->seed.info_hash, info_hash) == 0)
            return f;
    return NULL;
}

struct p2p_node_file *p2p_node_find_name(struct p2p_node *n, const char *name)
{
    for (struct p2p_node_file *f = n->files; f; f = f->next)
        if (strcmp(f->seed.file_name, name) == 0)
            return f;
    return NULL;
}

static char *join_ext(const char *dir, const char *name, const char *ext)
{
    char *base = p2p_xasprintf("%s%s", name, ext);
    char *p = p2p_path_join(dir, base);
    free(base);
    return p;
}

struct p2p_node_file *p2p_node_file_new(struct p2p_node *n, struct p2p_seed *seed)
{
    const char *name = seed->file_name;
    if (!name || !p2p_name_is_safe(name, strlen(name), NULL) || strlen(name) > P2P_NAME_MAX - 10)
        return NULL;
    struct p2p_node_file *f = p2p_xcalloc(1, sizeof *f);
    f->node = n;
    f->seed = *seed;
    memset(seed, 0, sizeof *seed);
    f->fd = -1;
    f->dfd = -1;
    f->dl_data = p2p_path_join(n->download_dir, name);
    f->dl_seed = join_ext(n->download_dir, name, ".seed");
    f->dl_bf = join_ext(n->download_dir, name, ".bitfield");
    f->cp_data = p2p_path_join(n->complete_dir, name);
    f->cp_seed = join_ext(n->complete_dir, name, ".seed");
    f->cp_ok = join_ext(n->complete_dir, name, ".ok");
    f->data_path = p2p_xstrdup(f->dl_data);
    f->created_ms = p2p_now_ms();
    p2p_bitfield_init(&f->have, f->seed.npieces);
    p2p_bitfield_init(&f->got, f->seed.npieces);
    return f;
}

void p2p_node_file_free(struct p2p_node_file *f)
{
    if (!f)
        return;
    p2p_node_download_stop(f);
    for (size_t i = 0; i < f->npeers; i++)
        p2p_node_peer_free(f->peers[i]);
    free(f->peers);
    free(f->avail);
    free(f->partial);
    free(f->ss);
    free(f->reqs);
    for (size_t i = 0; i < f->nann; i++) {
        free(f->ann[i].have);
        p2p_bitfield_cleanup(&f->ann[i].v1_sent);
    }
    free(f->ann);
    free(f->seed_json);
    free(f->v1_order);
    p2p_bitfield_cleanup(&f->have);
    p2p_bitfield_cleanup(&f->got);
    p2p_seed_cleanup(&f->seed);
    free(f->error);
    free(f->data_path);
    free(f->dl_data);
    free(f->dl_seed);
    free(f->dl_bf);
    free(f->cp_data);
    free(f->cp_seed);
    free(f->cp_ok);
    free(f);
}

void p2p_node_register(struct p2p_node *n, struct p2p_node_file *f)
{
    f->state = P2P_NODE_PENDING;
    f->in_store = true;
    /* append, so listings keep creation order */
    struct p2p_node_file **pp = &n->files;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    if (!f->ann) {
        f->nann = f->seed.ntrackers;
        f->ann = p2p_xcalloc(f->nann ? f->nann : 1, sizeof *f->ann);
        for (size_t i = 0; i < f->nann; i++)
            f->ann[i].t = p2p_node_tracker_get(n, f->seed.trackers[i]);
    }
}

void p2p_node_unregister(struct p2p_node *n, struct p2p_node_file *f)
{
    for (struct p2p_node_file **pp = &n->files; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    f->in_store = false;
    p2p_node_file_free(f);
}

static void set_error(struct p2p_node_file *f, const char *msg)
{
    free(f->error);
    f->error = msg ? p2p_xstrdup(msg) : NULL;
}

static bool path_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Reads and parses a seed file (pool thread). Returns 0 or -1 with err. */
static int read_seed(const char *path, struct p2p_seed *out, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = p2p_read_file(path, P2P_SEED_MAX_BYTES, &buf, &len);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
        return -1;
    }
    rc = p2p_seed_parse(buf, len, out, err, errlen);
    free(buf);
    return rc < 0 ? -1 : 0;
}

/* ---- create / resume ---- */

struct create_job {
    struct p2p_node_file *f;
    p2p_node_create_cb cb;
    void *ud;
    int rc;
    bool complete;
    uint8_t *bits;     /* bitfield loaded for a resume, or NULL */
    uint32_t rechecked_bad; /* claimed pieces that failed the resume re-hash */
    int fd, dfd;
    char *text;        /* the serialized seed (GET /v2/seed), built here off the loop */
    size_t text_len;
    uint32_t *order;   /* SHA-1 seeds: pieces by digest */
    char err[512];
};

static int load_bits(const char *path, uint32_t nbits, uint8_t **out)
{
    char *buf = NULL;
    size_t len = 0;
    size_t want = P2P_BITFIELD_BYTES(nbits);
    if (p2p_read_file(path, want + 1, &buf, &len) < 0)
        return -1;
    struct p2p_bitfield bf;
    p2p_bitfield_init(&bf, nbits);
    int rc = p2p_bitfield_load(&bf, (const uint8_t *)buf, len);
    free(buf);
    if (rc < 0) {
        p2p_bitfield_cleanup(&bf);
        return -1;
    }
    *out = bf.bits;
    return 0;
}

/* Reads piece i of s from fd into buf (pool thread); false on a short file or an I/O error. */
static bool read_piece(int fd, const struct p2p_seed *s, uint32_t i, uint8_t *buf)
{
    uint64_t len = p2p_seed_piece_len(s, i), got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)((uint64_t)i * s->piece_length + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (uint64_t)r;
    }
    return true;
}

/* Resume check (pool thread): clears the bits of claimed pieces whose data does not match,
 * e.g. after a power loss. Returns how many were cleared. */
static uint32_t recheck_bits(const struct p2p_seed *s, int fd, uint8_t *bits,
                             const atomic_bool *abandon)
{
    struct p2p_bitfield bf = {.bits = bits, .nbits = s->npieces};
    uint8_t *buf = p2p_xmalloc(s->piece_length ? s->piece_length : 1);
    uint32_t bad = 0;
    for (uint32_t i = 0; i < s->npieces; i++) {
        if (!p2p_bitfield_get(&bf, i))
            continue;
        if (atomic_load_explicit(abandon, memory_order_relaxed))
            break; /* stopping: the caller sees the flag and drops the result */
        if (!read_piece(fd, s, i, buf) ||
            !p2p_seed_verify_piece(s, i, buf, p2p_seed_piece_len(s, i))) {
            bits[i >> 3] &= (uint8_t) ~(0x80u >> (i & 7));
            bad++;
        }
    }
    free(buf);
    return bad;
}

/* Opens path again with O_DIRECT for whole-block piece writes, which go to the device without a
 * copy into the page cache. On this project's 2-vCPU test VM that copy was 38 % of every node's
 * CPU in bench/swarm S3 (fresh page-cache pages are expensive to touch in a VM), and a verified
 * piece is read back only if a peer asks for it. Returns -1 where the filesystem refuses
 * O_DIRECT (writes stay buffered) or if path is no longer the file fd has open. */
static int open_direct(const char *path, int fd)
{
    int dfd = open(path, O_WRONLY | O_DIRECT | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    struct stat a, b;
    if (fstat(fd, &a) < 0 || fstat(dfd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
        close(dfd);
        return -1;
    }
    return dfd;
}

static void create_work(void *arg)
{
    struct create_job *j = arg;
    struct p2p_node_file *f = j->f;
    const struct p2p_seed *s = &f->seed;
    struct p2p_seed other = {0};
    char perr[256];
    j->fd = -1;
    j->dfd = -1;

    if (path_exists(f->cp_ok)) {
        struct stat st;
        if (read_seed(f->cp_seed, &other, perr, sizeof perr) == 0 &&
            strcmp(other.info_hash, s->info_hash) == 0 && stat(f->cp_data, &st) == 0 &&
            (uint64_t)st.st_size == s->length) {
            j->complete = true;
            j->text = p2p_seed_serialize(s, &j->text_len);
            if (s->algo == P2P_HASH_SHA1)
                j->order = p2p_node_v1_index_build(s);
            goto out;
        }
        j->rc = -EEXIST;
        snprintf(j->err, sizeof j->err, "a different complete file named '%s' exists",
                 s->file_name);
        goto out;
    }
    if (strcmp(f->cp_data, f->dl_data) != 0 && path_exists(f->cp_data)) {
        /* the final move would fail at the very end: refuse now */
        j->rc = -EEXIST;
        snprintf(j->err, sizeof j->err, "a file named '%s' already exists in complete_dir",
                 s->file_name);
        goto out;
    }
    bool have_seed = path_exists(f->dl_seed);
    if (have_seed) {
        if (read_seed(f->dl_seed, &other, perr, sizeof perr) < 0 ||
            strcmp(other.info_hash, s->info_hash) != 0) {
            j->rc = -EEXIST;
            snprintf(j->err, sizeof j->err, "a different download named '%s' exists",
                     s->file_name);
            goto out;
        }
        if (load_bits(f->dl_bf, s->npieces, &j->bits) < 0)
            j->bits = NULL; /* no or bad bitfield: start over, data is re-verified by hash */
    } else {
        if (path_exists(f->dl_data)) {
            j->rc = -EEXIST;
            snprintf(j->err, sizeof j->err, "a file named '%s' already exists", s->file_name);
            goto out;
        }
        size_t len = 0;
        char *text = p2p_seed_serialize(s, &len);
        int rc = p2p_atomic_write(f->dl_seed, text, len);
        free(text);
        if (rc < 0) {
            j->rc = rc;
            snprintf(j->err, sizeof j->err, "writing %s: %s", f->dl_seed, strerror(-rc));
            goto out;
        }
    }
    /* a new download never opens an existing file or follows a symlink planted in its place */
    int fd = open(f->dl_data, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (have_seed ? 0 : O_EXCL),
                  0644);
    if (fd < 0) {
        j->rc = -errno;
        snprintf(j->err, sizeof j->err, "opening %s: %s", f->dl_data, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != s->length) {
        if (ftruncate(fd, (off_t)s->length) < 0) {
            j->rc = -errno;
            snprintf(j->err, sizeof j->err, "sizing %s: %s", f->dl_data, strerror(errno));
            close(fd);
            goto out;
        }
    }
    /* Reserve the blocks now (holes only; written data is kept): a full disk fails the task at
     * the start with a clear error instead of midway, and pieces written in scattered order into
     * a sparse file cost the filesystem a block allocation and extent split per piece at
     * writeback: bench/pagecache_write with 64 writers, 2.8-3.8 s of system time instead of
     * 6-12 s. Filesystems without fallocate keep the sparse file. A new download that does
     * not fit is removed again (a failed fallocate may keep what it allocated); a resume goes on
     * sparse, as before, and a full disk surfaces at a piece write. */
    int fa;
    do
        fa = s->length > 0 ? fallocate(fd, 0, 0, (off_t)s->length) : 0;
    while (fa < 0 && errno == EINTR);
    if (fa < 0 && errno != EOPNOTSUPP && errno != ENOSYS && !have_seed) {
        int e = errno;
        j->rc = -e;
        snprintf(j->err, sizeof j->err, "allocating %" PRIu64 " bytes for %s: %s", s->length,
                 f->dl_data, strerror(e));
        close(fd);
        unlink(f->dl_data);
        unlink(f->dl_seed);
        goto out;
    }
    if (!j->bits) {
        size_t nb = P2P_BITFIELD_BYTES(s->npieces);
        uint8_t *zero = p2p_xcalloc(nb ? nb : 1, 1);
        int rc = p2p_atomic_write(f->dl_bf, zero, nb);
        free(zero);
        if (rc < 0) {
            j->rc = rc;
            snprintf(j->err, sizeof j->err, "writing %s: %s", f->dl_bf, strerror(-rc));
            close(fd);
            goto out;
        }
    }
    if (j->bits)
        j->rechecked_bad = recheck_bits(s, fd, j->bits, &f->node->abandon);
    if (atomic_load(&f->node->abandon)) {
        close(fd); /* stopping: the resume is found again at the next start */
        j->rc = -ECANCELED;
        snprintf(j->err, sizeof j->err, "node is stopping");
        goto out;
    }
    j->fd = fd;
    j->dfd = open_direct(f->dl_data, fd);
    j->text = p2p_seed_serialize(s, &j->text_len);
    if (s->algo == P2P_HASH_SHA1)
        j->order = p2p_node_v1_index_build(s);
out:
    p2p_seed_cleanup(&other);
}

static void create_after(void *arg)
{
    struct create_job *j = arg;
    struct p2p_node_file *f = j->f;
    f->busy--;
    if (j->rc == 0 && !f->seed_json) {
        f->seed_json = j->text;
        f->seed_json_len = j->text_len;
        j->text = NULL;
        free(f->v1_order);
        f->v1_order = j->order;
        j->order = NULL;
    }
    if (j->rc == 0 && f->state == P2P_NODE_CANCELED) {
        f->fd = j->fd; /* deleted while its files were prepared: closed (and removed) below */
        f->dfd = j->dfd;
        if (j->complete) {
            /* it was complete on disk: a DELETE never removes a finished file */
            f->remove_on_close = false;
            free(f->data_path);
            f->data_path = p2p_xstrdup(f->cp_data);
        }
    } else if (j->rc == 0) {
        if (j->complete) {
            f->state = P2P_NODE_SEEDING;
            free(f->data_path);
            f->data_path = p2p_xstrdup(f->cp_data);
            p2p_bitfield_set_all(&f->have);
            p2p_bitfield_set_all(&f->got);
            f->bytes_done = f->seed.length;
            p2p_info("%s: already complete (%s)", f->seed.file_name, f->seed.info_hash);
        } else {
            f->fd = j->fd;
            f->dfd = j->dfd;
            if (j->bits) {
                p2p_bitfield_load(&f->have, j->bits, P2P_BITFIELD_BYTES(f->seed.npieces));
                p2p_bitfield_load(&f->got, j->bits, P2P_BITFIELD_BYTES(f->seed.npieces));
            }
            f->bytes_done = 0;
            for (uint32_t i = 0; i < f->seed.npieces; i++)
                if (p2p_bitfield_get(&f->have, i))
                    f->bytes_done += p2p_seed_piece_len(&f->seed, i);
            f->state = P2P_NODE_DOWNLOADING;
            if (j->rechecked_bad) {
                p2p_warn("%s: %u pieces of the bitfield did not match their hash: refetching",
                         f->seed.file_name, j->rechecked_bad);
                f->bf_dirty = true;
            }
            p2p_info("%s: %s, %u/%u pieces held", f->seed.file_name,
                     j->bits ? "resuming" : "downloading", f->have.count, f->seed.npieces);
        }
        set_error(f, NULL);
    }
    p2p_node_create_cb cb = j->cb;
    void *ud = j->ud;
    int rc = j->rc;
    char err[sizeof j->err];
    memcpy(err, j->err, sizeof err);
    free(j->bits);
    free(j->text);
    free(j->order);
    free(j);
    struct p2p_node *n = f->node;
    if (rc == 0 && (f->closing || n->stopping || f->state == P2P_NODE_CANCELED)) {
        /* cancelled or stopping while the files were prepared */
        p2p_node_store_idle(f);
    } else if (rc == 0) {
        p2p_node_announce_full(f);
        if (f->state == P2P_NODE_DOWNLOADING)
            p2p_node_download_start(f);
        p2p_node_store_idle(f);
    }
    if (cb) {
        cb(f, rc, err, ud);
    } else if (rc < 0) {
        p2p_warn("%s: cannot resume: %s", f->seed.file_name, err);
        p2p_node_unregister(n, f);
    }
    if (n->stopping)
        p2p_node_stop_check(n);
}

void p2p_node_store_create(struct p2p_node_file *f, p2p_node_create_cb cb, void *ud)
{
    struct create_job *j = p2p_xcalloc(1, sizeof *j);
    j->f = f;
    j->cb = cb;
    j->ud = ud;
    f->state = P2P_NODE_PENDING;
    f->busy++;
    p2p_node_job(f->node, create_work, create_after, j);
}

/* ---- piece bookkeeping and bitfield saves ---- */

void p2p_node_store_piece_done(struct p2p_node_file *f, uint32_t index)
{
    if (!p2p_bitfield_set(&f->got, index))
        return;
    f->speed_bytes += p2p_seed_piece_len(&f->seed, index);
    f->bf_dirty = true;
    f->node->m.pieces_verified++;
    p2p_node_store_save(f);
}

struct save_job {
    struct p2p_node_file *f;
    uint8_t *bits;
    size_t len;
    int rc;
};

static void save_work(void *arg)
{
    struct save_job *j = arg;
    /* The pieces were pwrite()n before this snapshot was taken, so after a crash or kill -9 the
     * file (page cache or device: O_DIRECT) holds them and the bitfield never claims a piece that is not in the file. Neither
     * the data nor the bitfield is synced: a resume re-hashes every claimed piece (recheck_bits)
     * and starts over on a missing or malformed bitfield, so a power loss costs refetches, never
     * a bad piece. The bitfield is overwritten in place: an fsync per save (one per verified
     * piece) forced an ext4 journal commit, and a rename waited on I/O, each stalling a pool
     * thread that piece writes and uploads were queued behind (p90 65 ms, max 0.4 s in
     * bench/swarm S2). Bits are only added while downloading, so even a torn write claims a
     * subset of what was written. */
    j->rc = p2p_overwrite_file(j->f->dl_bf, j->bits, j->len);
}

static void save_after(void *arg)
{
    struct save_job *j = arg;
    struct p2p_node_file *f = j->f;
    f->bf_saving = false;
    f->busy--;
    if (j->rc < 0) {
        p2p_warn("%s: saving bitfield: %s", f->seed.file_name, strerror(-j->rc));
        f->bf_dirty = true; /* the tick retries */
        f->bf_next_ms = p2p_now_ms() + P2P_NODE_SAVE_MS;
    } else {
        /* now durable: served, counted and reported */
        for (uint32_t b = 0; b < j->len; b++) {
            uint8_t fresh = j->bits[b] & (uint8_t)~f->have.bits[b];
            for (uint32_t i = b * 8; fresh && i < b * 8 + 8; i++) {
                if (!(fresh & (0x80u >> (i & 7))))
                    continue;
                p2p_bitfield_set(&f->have, i);
                f->bytes_done += p2p_seed_piece_len(&f->seed, i);
                if (f->state == P2P_NODE_DOWNLOADING)
                    p2p_node_announce_have(f, i);
            }
        }
        if (f->bf_dirty && !f->remove_on_close)
            p2p_node_store_save(f);
    }
    free(j->bits);
    free(j);
    p2p_node_store_idle(f);
    if (f->node->stopping)
        p2p_node_stop_check(f->node);
}

void p2p_node_store_save(struct p2p_node_file *f)
{
    if (!f->bf_dirty || f->bf_saving || f->fd < 0 || f->finishing)
        return;
    struct save_job *j = p2p_xcalloc(1, sizeof *j);
    j->f = f;
    j->len = P2P_BITFIELD_BYTES(f->got.nbits);
    j->bits = p2p_xmalloc(j->len ? j->len : 1);
    memcpy(j->bits, f->got.bits, j->len);
    f->bf_dirty = false;
    f->bf_saving = true;
    f->busy++;
    p2p_node_job(f->node, save_work, save_after, j);
}

/* ---- finishing: fsync, move to complete_dir, .seed, .ok ---- */

struct finish_job {
    struct p2p_node_file *f;
    int fd, dfd;
    int rc;
    char err[512];
};

static int copy_file(const char *from, const char *to, const atomic_bool *abandon)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = 0;
    if (out < 0) {
        rc = -errno;
        close(in);
        return rc;
    }
    char *buf = p2p_xmalloc(1 << 20);
    for (;;) {
        if (atomic_load_explicit(abandon, memory_order_relaxed)) {
            rc = -ECANCELED; /* stopping: the download is finished again at the next start */
            break;
        }
        ssize_t r = read(in, buf, 1 << 20);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        for (ssize_t o = 0; o < r;) {
            ssize_t w = write(out, buf + o, (size_t)(r - o));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                goto out;
            }
            o += w;
        }
    }
out:
    free(buf);
    if (rc == 0 && fsync(out) < 0)
        rc = -errno;
    close(out);
    close(in);
    if (rc == 0)
        unlink(from);
    else if (rc != -EEXIST)
        unlink(to);
    return rc;
}

/* Moves from to to without ever replacing an existing to: renameat2(RENAME_NOREPLACE), else
 * link + unlink, else (another filesystem) a copy. Returns 0 or a negative errno. */
static int move_noreplace(const char *from, const char *to, const atomic_bool *abandon)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EXDEV)
        return copy_file(from, to, abandon);
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -errno;
    if (link(from, to) == 0) {
        unlink(from);
        return 0;
    }
    if (errno == EXDEV)
        return copy_file(from, to, abandon);
    return -errno;
}

static void finish_work(void *arg)
{
    struct finish_job *j = arg;
    struct p2p_node_file *f = j->f;
    if (j->dfd >= 0)
        close(j->dfd);
    if (fsync(j->fd) < 0) {
        j->rc = -errno;
        snprintf(j->err, sizeof j->err, "fsync %s: %s", f->dl_data, strerror(errno));
        close(j->fd);
        return;
    }
    close(j->fd);
    bool moved = strcmp(f->dl_data, f->cp_data) != 0;
    if (moved) {
        int rc = p2p_mkdirs(f->node->complete_dir);
        if (rc == 0 && path_exists(f->cp_data))
            rc = -EEXIST;
        if (rc == 0)
            rc = move_noreplace(f->dl_data, f->cp_data, &f->node->abandon);
        if (rc < 0) {
            j->rc = rc;
            snprintf(j->err, sizeof j->err, "moving to %s: %s", f->cp_data, strerror(-rc));
            return;
        }
        size_t len = 0;
        char *text = p2p_seed_serialize(&f->seed, &len);
        rc = p2p_atomic_write(f->cp_seed, text, len);
        free(text);
        if (rc < 0) {
            j->rc = rc;
            snprintf(j->err, sizeof j->err, "writing %s: %s", f->cp_seed, strerror(-rc));
            return;
        }
    }
    int rc = p2p_atomic_write(f->cp_ok, "", 0);
    if (rc < 0) {
        j->rc = rc;
        snprintf(j->err, sizeof j->err, "writing %s: %s", f->cp_ok, strerror(-rc));
        return;
    }
    unlink(f->dl_bf);
    if (moved)
        unlink(f->dl_seed);
}

static void finish_after(void *arg)
{
    struct finish_job *j = arg;
    struct p2p_node_file *f = j->f;
    struct p2p_node *n = f->node;
    f->busy--;
    f->finishing = false;
    f->fd = -1;
    f->dfd = -1;
    /* cancelled (DELETE) or stopping while the file was moved: it stays so, nothing announced */
    bool cancelled = f->closing || f->state == P2P_NODE_CANCELED || n->stopping;
    if (j->rc < 0) {
        if (f->state != P2P_NODE_CANCELED)
            f->state = P2P_NODE_FAILED;
        set_error(f, j->err);
        if (j->rc == -ECANCELED)
            p2p_info("%s: finishing abandoned (stopping)", f->seed.file_name);
        else
            p2p_error("%s: %s", f->seed.file_name, j->err);
    } else {
        free(f->data_path);
        f->data_path = p2p_xstrdup(f->cp_data);
        if (f->state != P2P_NODE_CANCELED)
            f->state = P2P_NODE_SEEDING;
        p2p_info("%s: complete, %llu bytes verified, %s", f->seed.file_name,
                 (unsigned long long)f->seed.length,
                 f->state == P2P_NODE_SEEDING ? "seeding" : "not seeding (cancelled)");
        if (!cancelled)
            p2p_node_announce_full(f);
    }
    free(j);
    p2p_node_store_idle(f);
    if (n->stopping)
        p2p_node_stop_check(n);
}

static void start_finish(struct p2p_node_file *f)
{
    struct finish_job *j = p2p_xcalloc(1, sizeof *j);
    j->f = f;
    j->fd = f->fd;
    j->dfd = f->dfd;
    f->finishing = true;
    f->bf_dirty = false;
    f->busy++;
    p2p_info("%s: all %u pieces held; syncing and moving to complete_dir", f->seed.file_name,
             f->seed.npieces);
    p2p_node_download_stop(f);
    p2p_node_job(f->node, finish_work, finish_after, j);
}

/* ---- closing (cancel / stop) ---- */

struct close_job {
    struct p2p_node_file *f;
    int fd, dfd;
    bool remove;
};

static void close_work(void *arg)
{
    struct close_job *j = arg;
    struct p2p_node_file *f = j->f;
    if (j->dfd >= 0)
        close(j->dfd);
    if (j->fd >= 0) {
        fdatasync(j->fd);
        close(j->fd);
    }
    if (!j->remove)
        return;
    /* a finished file (its .ok beside it) is never removed by a cancel */
    char *ok = join_ext(f->node->download_dir, f->seed.file_name, ".ok");
    bool finished = ok && path_exists(ok);
    free(ok);
    if (finished)
        return;
    unlink(f->dl_data);
    unlink(f->dl_bf);
    unlink(f->dl_seed);
}

static void close_after(void *arg)
{
    struct close_job *j = arg;
    struct p2p_node *n = j->f->node;
    j->f->busy--;
    free(j);
    if (n->stopping)
        p2p_node_stop_check(n);
}

void p2p_node_store_close(struct p2p_node_file *f, bool remove_files)
{
    p2p_node_download_stop(f);
    f->closing = true;
    if (remove_files) {
        f->remove_on_close = true;
        f->bf_dirty = false;
    }
    p2p_node_store_idle(f);
}

void p2p_node_store_idle(struct p2p_node_file *f)
{
    if (f->busy)
        return;
    if (f->closing) {
        if (f->finishing)
            return;
        if (f->bf_dirty && f->fd >= 0 && !f->remove_on_close) {
            p2p_node_store_save(f); /* verified pieces are kept across a stop */
            return;
        }
        f->closing = false;
        bool remove = f->remove_on_close && f->state != P2P_NODE_SEEDING;
        f->remove_on_close = false;
        if (f->fd < 0 && !remove)
            return;
        struct close_job *j = p2p_xcalloc(1, sizeof *j);
        j->f = f;
        j->fd = f->fd;
        j->dfd = f->dfd;
        j->remove = remove;
        f->fd = -1;
        f->dfd = -1;
        f->busy++;
        p2p_node_job(f->node, close_work, close_after, j);
        return;
    }
    if (f->state == P2P_NODE_DOWNLOADING && p2p_bitfield_full(&f->have) && !f->finishing &&
        f->fd >= 0 && !f->node->stopping)
        start_finish(f);
}

void p2p_node_store_tick(struct p2p_node *n, uint64_t now)
{
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        if (f->bf_dirty && !f->bf_saving && now >= f->bf_next_ms) {
            f->bf_next_ms = now + P2P_NODE_SAVE_MS;
            p2p_node_store_save(f);
        }
    }
}

static void seed_copy(struct p2p_seed *dst, const struct p2p_seed *src)
{
    dst->version = src->version;
    dst->file_name = src->file_name ? p2p_xstrdup(src->file_name) : NULL;
    dst->tracker_addr = src->tracker_addr ? p2p_xstrdup(src->tracker_addr) : NULL;
    dst->ntrackers = src->ntrackers;
    dst->trackers = p2p_xcalloc(src->ntrackers ? src->ntrackers : 1, sizeof *dst->trackers);
    for (size_t i = 0; i < src->ntrackers; i++)
        dst->trackers[i] = p2p_xstrdup(src->trackers[i]);
    dst->length = src->length;
    dst->piece_length = src->piece_length;
    dst->algo = src->algo;
    dst->npieces = src->npieces;
    dst->pieces = p2p_xmalloc(src->npieces ? src->npieces * sizeof *src->pieces : 1);
    if (src->npieces)
        memcpy(dst->pieces, src->pieces, src->npieces * sizeof *src->pieces);
    memcpy(dst->info_hash, src->info_hash, sizeof dst->info_hash);
    dst->created_at = src->created_at ? p2p_xstrdup(src->created_at) : NULL;
}

int p2p_node_adopt_complete(struct p2p_node *n, const struct p2p_seed *seed)
{
    if (p2p_node_find(n, seed->info_hash))
        return 0;
    if (p2p_node_find_name(n, seed->file_name))
        return -EEXIST;
    /* a plain copy: the seed was validated (and its infoHash computed) by the TUS module, so
     * nothing is re-parsed or re-hashed on the loop thread */
    struct p2p_seed copy = {0};
    seed_copy(&copy, seed);
    struct p2p_node_file *f = p2p_node_file_new(n, &copy);
    p2p_seed_cleanup(&copy);
    if (!f)
        return -EINVAL;
    p2p_node_register(n, f);
    f->state = P2P_NODE_SEEDING;
    free(f->data_path);
    f->data_path = p2p_xstrdup(f->cp_data);
    p2p_bitfield_set_all(&f->have);
    p2p_bitfield_set_all(&f->got);
    f->bytes_done = f->seed.length;
    p2p_info("seeding %s (%s)", f->seed.file_name, f->seed.info_hash);
    p2p_node_announce_full(f);
    p2p_node_seed_cache(f);
    return 0;
}

/* ---- scan ---- */

struct scan_item {
    struct p2p_seed seed;
    bool complete;
    char *text;            /* complete files: serialized seed and SHA-1 piece order */
    size_t text_len;
    uint32_t *order;
    struct scan_item *next;
};

struct scan_job {
    struct p2p_node *n;
    bool full;
    struct scan_item *items;
    void (*done)(struct p2p_node *, int, void *);
    void *ud;
};

static bool has_suffix(const char *s, const char *suf, size_t *baselen)
{
    size_t a = strlen(s), b = strlen(suf);
    if (a <= b || strcmp(s + a - b, suf) != 0)
        return false;
    *baselen = a - b;
    return true;
}

static bool verify_full(const struct p2p_seed *s, const char *path, const atomic_bool *abandon)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = true;
    uint8_t *buf = p2p_xmalloc(s->piece_length ? s->piece_length : 1);
    for (uint32_t i = 0; i < s->npieces && ok; i++) {
        if (atomic_load_explicit(abandon, memory_order_relaxed)) {
            ok = false; /* stopping: the file is scanned again at the next start */
            break;
        }
        ok = read_piece(fd, s, i, buf) &&
             p2p_seed_verify_piece(s, i, buf, p2p_seed_piece_len(s, i));
    }
    free(buf);
    close(fd);
    return ok;
}

static void scan_dir(struct scan_job *j, const char *dir, bool complete)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char err[256];
    while (!atomic_load(&j->n->abandon) && (e = readdir(d))) {
        size_t bl;
        if (!has_suffix(e->d_name, complete ? ".ok" : ".seed", &bl))
            continue;
        char *base = p2p_xstrndup(e->d_name, bl);
        char *okp = NULL, *seedp = NULL, *datap = NULL;
        if (!p2p_name_is_safe(base, bl, NULL))
            goto next;
        okp = p2p_xasprintf("%s/%s.ok", dir, base);
        seedp = p2p_xasprintf("%s/%s.seed", dir, base);
        datap = p2p_xasprintf("%s/%s", dir, base);
        if (!complete && path_exists(okp))
            goto next; /* complete in this directory: taken by the complete pass */
        struct scan_item *it = p2p_xcalloc(1, sizeof *it);
        if (read_seed(seedp, &it->seed, err, sizeof err) < 0 ||
            strcmp(it->seed.file_name, base) != 0) {
            p2p_warn("scan: skipping %s: %s", seedp,
                     it->seed.file_name ? "fileName does not match the file" : err);
            p2p_seed_cleanup(&it->seed);
            free(it);
            goto next;
        }
        if (complete) {
            struct stat st;
            if (stat(datap, &st) < 0 || !S_ISREG(st.st_mode) ||
                (uint64_t)st.st_size != it->seed.length) {
                p2p_warn("scan: skipping %s: missing or wrong size", datap);
                p2p_seed_cleanup(&it->seed);
                free(it);
                goto next;
            }
            if (j->full && !verify_full(&it->seed, datap, &j->n->abandon)) {
                if (!atomic_load(&j->n->abandon))
                    p2p_warn("scan: skipping %s: content does not match its seed", datap);
                p2p_seed_cleanup(&it->seed);
                free(it);
                goto next;
            }
        }
        it->complete = complete;
        if (complete) {
            it->text = p2p_seed_serialize(&it->seed, &it->text_len);
            if (it->seed.algo == P2P_HASH_SHA1)
                it->order = p2p_node_v1_index_build(&it->seed);
        }
        it->next = j->items;
        j->items = it;
    next:
        free(base);
        free(okp);
        free(seedp);
        free(datap);
    }
    closedir(d);
}

static void scan_work(void *arg)
{
    struct scan_job *j = arg;
    scan_dir(j, j->n->complete_dir, true);
    scan_dir(j, j->n->download_dir, false);
}

static void scan_after(void *arg)
{
    struct scan_job *j = arg;
    struct p2p_node *n = j->n;
    int added = 0;
    n->scanning = false;
    for (struct scan_item *it = j->items, *next; it; it = next) {
        next = it->next;
        struct p2p_node_file *f = p2p_node_find(n, it->seed.info_hash);
        if (f && f->busy == 0 && f->fd < 0 && !f->closing &&
            (f->state == P2P_NODE_CANCELED || f->state == P2P_NODE_FAILED))
            p2p_node_unregister(n, f); /* a cancelled file found again: register it anew */
        f = NULL;
        if (!n->stopping && !p2p_node_find(n, it->seed.info_hash) &&
            !p2p_node_find_name(n, it->seed.file_name))
            f = p2p_node_file_new(n, &it->seed);
        if (f) {
            p2p_node_register(n, f);
            added++;
            if (it->complete) {
                f->state = P2P_NODE_SEEDING;
                free(f->data_path);
                f->data_path = p2p_xstrdup(f->cp_data);
                p2p_bitfield_set_all(&f->have);
                p2p_bitfield_set_all(&f->got);
                f->bytes_done = f->seed.length;
                f->seed_json = it->text;
                f->seed_json_len = it->text_len;
                f->v1_order = it->order;
                it->text = NULL;
                it->order = NULL;
                p2p_info("scan: seeding %s (%s)", f->seed.file_name, f->seed.info_hash);
                p2p_node_announce_full(f);
            } else {
                p2p_node_store_create(f, NULL, NULL);
            }
        }
        p2p_seed_cleanup(&it->seed);
        free(it->text);
        free(it->order);
        free(it);
    }
    if (j->done)
        j->done(n, added, j->ud);
    free(j);
    if (n->stopping)
        p2p_node_stop_check(n);
}

void p2p_node_store_scan(struct p2p_node *n, void (*done)(struct p2p_node *, int, void *),
                         void *ud)
{
    struct scan_job *j = p2p_xcalloc(1, sizeof *j);
    j->n = n;
    j->full = n->cfg.verify_on_scan && strcmp(n->cfg.verify_on_scan, "full") == 0;
    j->done = done;
    j->ud = ud;
    n->scanning = true;
    p2p_node_job(n, scan_work, scan_after, j);
}

/* ---- seed cache: GET /v2/seed bytes and the /v1/pieceData index, built off the loop ---- */

static int cmp_digest(const void *a, const void *b, void *ud)
{
    const struct p2p_seed *s = ud;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = memcmp(s->pieces[x].digest, s->pieces[y].digest, 20);
    return c ? c : (x > y) - (x < y);
}

uint32_t *p2p_node_v1_index_build(const struct p2p_seed *s)
{
    uint32_t *order = p2p_xmalloc((s->npieces ? s->npieces : 1) * sizeof *order);
    for (uint32_t i = 0; i < s->npieces; i++)
        order[i] = i;
    qsort_r(order, s->npieces, sizeof *order, cmp_digest, (void *)s);
    return order;
}

int64_t p2p_node_v1_index_find(const struct p2p_seed *s, const uint32_t *order,
                               const uint8_t *want)
{
    uint32_t lo = 0, hi = s->npieces; /* first position whose digest is >= want */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (memcmp(s->pieces[order[mid]].digest, want, 20) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->npieces && memcmp(s->pieces[order[lo]].digest, want, 20) == 0)
        return lo;
    return -1;
}

struct cache_job {
    struct p2p_node_file *f;
    char *text;
    size_t len;
    uint32_t *order;
};

static void cache_work(void *arg)
{
    struct cache_job *j = arg;
    const struct p2p_seed *s = &j->f->seed;
    j->text = p2p_seed_serialize(s, &j->len);
    if (s->algo == P2P_HASH_SHA1)
        j->order = p2p_node_v1_index_build(s);
}

static void cache_after(void *arg)
{
    struct cache_job *j = arg;
    struct p2p_node_file *f = j->f;
    f->busy--;
    f->seed_cache_job = false;
    if (!f->seed_json) {
        f->seed_json = j->text;
        f->seed_json_len = j->len;
        j->text = NULL;
    }
    if (!f->v1_order) {
        f->v1_order = j->order;
        j->order = NULL;
    }
    free(j->text);
    free(j->order);
    free(j);
    p2p_node_store_idle(f);
}

void p2p_node_seed_cache(struct p2p_node_file *f)
{
    if (f->seed_cache_job || f->node->stopping ||
        (f->seed_json && (f->v1_order || f->seed.algo != P2P_HASH_SHA1)))
        return;
    struct cache_job *j = p2p_xcalloc(1, sizeof *j);
    j->f = f;
    f->seed_cache_job = true;
    f->busy++;
    p2p_node_job(f->node, cache_work, cache_after, j);
}
