/* TUS disk state in tus.dir: <id> data (offset = its size), <id>.info (JSON, written
 * atomically), <id>.stage (a checksummed chunk awaiting verification), sha256.idx (whole-file
 * digests for instant upload); thread-pool work: writes, piece hashing, finishing into a seed. */
#include "node/tus_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "common/fsx.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#define HASH_BUF (1u << 20)

/* ------------------------------------------------------------------------------------------ */
/* uploads and the table */

struct p2p_tus_upload *p2p_tus_up_new(struct p2p_tus *t, const char *id)
{
    struct p2p_tus_upload *u = p2p_xcalloc(1, sizeof *u);
    u->t = t;
    u->fd = -1;
    if (id) {
        memcpy(u->id, id, P2P_TUS_ID_LEN);
    } else {
        uint8_t b[16];
        p2p_random_bytes(b, sizeof b);
        p2p_hex_encode(b, sizeof b, u->id);
    }
    u->id[P2P_TUS_ID_LEN] = '\0';
    return u;
}

void p2p_tus_up_free(struct p2p_tus_upload *u)
{
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    if (u->pctx)
        EVP_MD_CTX_free(u->pctx);
    free(u->digests);
    free(u->metadata);
    free(u->concat);
    free(u->parts);
    free(u->want_name);
    free(u->file_name);
    free(u->data_path);
    free(u);
}

void p2p_tus_up_set_finished(struct p2p_tus_upload *u, const char *info_hash, const char *file_name,
                             const char *data_path, const uint8_t *sha256)
{
    snprintf(u->info_hash, sizeof u->info_hash, "%s", info_hash);
    free(u->file_name);
    u->file_name = p2p_xstrdup(file_name);
    free(u->data_path);
    u->data_path = p2p_xstrdup(data_path);
    if (sha256) {
        memcpy(u->sha256, sha256, 32);
        u->have_sha = true;
    }
}

size_t p2p_tus_id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < P2P_TUS_ID_LEN && id[i]; i++)
        h = (h ^ (uint8_t)id[i]) * 16777619u;
    return h % P2P_TUS_BUCKETS;
}

size_t p2p_tus_up_meta_cost(const struct p2p_tus_upload *u)
{
    return (u->metadata ? strlen(u->metadata) : 0) + (u->concat ? strlen(u->concat) : 0) +
           u->nparts * sizeof *u->parts;
}

void p2p_tus_up_set_state(struct p2p_tus_upload *u, enum p2p_tus_up_state st)
{
    if (u->in_table && u->state != st) {
        if (u->state == P2P_TUS_UP_ACTIVE)
            u->t->nunfinished--;
        else if (st == P2P_TUS_UP_ACTIVE)
            u->t->nunfinished++;
    }
    u->state = st;
}

void p2p_tus_table_add(struct p2p_tus *t, struct p2p_tus_upload *u)
{
    size_t b = p2p_tus_id_hash(u->id);
    u->hnext = t->table[b];
    t->table[b] = u;
    u->in_table = true;
    t->nuploads++;
    if (u->state == P2P_TUS_UP_ACTIVE)
        t->nunfinished++;
    u->charged = p2p_tus_up_meta_cost(u);
    t->meta_bytes += u->charged;
    if (u->expires_s && u->expires_s < t->next_expire_s)
        t->next_expire_s = u->expires_s;
}

void p2p_tus_table_remove(struct p2p_tus *t, struct p2p_tus_upload *u)
{
    if (!u->in_table)
        return;
    struct p2p_tus_upload **pp = &t->table[p2p_tus_id_hash(u->id)];
    while (*pp && *pp != u)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = u->hnext;
    u->in_table = false;
    t->nuploads--;
    if (u->state == P2P_TUS_UP_ACTIVE)
        t->nunfinished--;
    t->meta_bytes -= u->charged;
    u->charged = 0;
    if (u->refs == 0)
        p2p_tus_up_free(u);
}

void p2p_tus_job_free(struct p2p_tus_job *j)
{
    p2p_seed_cleanup(&j->seed);
    free(j->parts);
    free(j->path);
    free(j);
}

static char *up_path(const struct p2p_tus *t, const char *id, const char *suffix)
{
    return p2p_xasprintf("%s/%s%s", t->dir, id, suffix);
}

/* ------------------------------------------------------------------------------------------ */
/* the .info file */

static json_t *info_json(const struct p2p_tus_upload *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(u->id));
    if (u->state == P2P_TUS_UP_GONE) {
        json_object_set_new(o, "gone", json_true());
        json_object_set_new(o, "goneAt", json_integer((json_int_t)u->gone_s));
        return o;
    }
    if (!u->deferred)
        json_object_set_new(o, "length", json_integer((json_int_t)u->length));
    json_object_set_new(o, "deferred", json_boolean(u->deferred));
    if (u->metadata)
        json_object_set_new(o, "metadata", json_string(u->metadata));
    if (u->concat)
        json_object_set_new(o, "concat", json_string(u->concat));
    json_object_set_new(o, "partial", json_boolean(u->partial));
    json_object_set_new(o, "final", json_boolean(u->final));
    if (u->nparts) {
        json_t *a = json_array();
        for (size_t i = 0; i < u->nparts; i++)
            json_array_append_new(a, json_string(u->parts[i]));
        json_object_set_new(o, "parts", a);
    }
    json_object_set_new(o, "created", json_integer((json_int_t)u->created_s));
    if (u->want_name)
        json_object_set_new(o, "wantName", json_string(u->want_name));
    if (u->info_hash[0]) {
        json_object_set_new(o, "infoHash", json_string(u->info_hash));
        json_object_set_new(o, "fileName", json_string(u->file_name));
        json_object_set_new(o, "dataPath", json_string(u->data_path));
    }
    return o;
}

static int info_write(const struct p2p_tus *t, const struct p2p_tus_upload *u)
{
    json_t *o = info_json(u);
    size_t len = 0;
    char *s = p2p_json_dump(o, &len);
    json_decref(o);
    char *path = up_path(t, u->id, ".info");
    int rc = p2p_atomic_write(path, s, len);
    free(path);
    free(s);
    return rc;
}

static int unlink_quiet(const char *path)
{
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

static int unlink_up(const struct p2p_tus *t, const char *id, const char *suffix)
{
    char *p = up_path(t, id, suffix);
    int rc = unlink_quiet(p);
    free(p);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* piece hashing (pool) */

static void piece_feed(struct p2p_tus_upload *u, const uint8_t *data, size_t n)
{
    while (n > 0) {
        if (!u->pctx) {
            u->pctx = EVP_MD_CTX_new();
            if (!u->pctx || EVP_DigestInit_ex(u->pctx, EVP_sha256(), NULL) != 1)
                abort();
        }
        uint64_t in_piece = u->piece_off % u->piece_len;
        size_t take = n;
        if ((uint64_t)take > u->piece_len - in_piece)
            take = (size_t)(u->piece_len - in_piece);
        EVP_DigestUpdate(u->pctx, data, take);
        u->piece_off += take;
        data += take;
        n -= take;
        if (u->piece_off % u->piece_len == 0) {
            if (u->ndig == u->capdig) {
                u->capdig = u->capdig ? u->capdig * 2 : 64;
                u->digests = p2p_xrealloc(u->digests, (size_t)u->capdig * 32);
            }
            EVP_DigestFinal_ex(u->pctx, u->digests + (size_t)u->ndig * 32, NULL);
            u->ndig++;
            EVP_DigestInit_ex(u->pctx, EVP_sha256(), NULL);
        }
    }
}

static void piece_reset(struct p2p_tus_upload *u)
{
    u->piece_off = 0;
    u->ndig = 0;
    if (u->pctx)
        EVP_DigestInit_ex(u->pctx, EVP_sha256(), NULL);
}

/* Feeds the hasher from the data file up to `upto` (after a restart, a deferred length, or a
 * committed staged chunk). */
static int piece_catch_up(struct p2p_tus *t, struct p2p_tus_upload *u, uint64_t upto)
{
    if (!u->piece_len || u->piece_off >= upto)
        return 0;
    char *path = up_path(t, u->id, "");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -errno;
    uint8_t *buf = p2p_xmalloc(HASH_BUF);
    int rc = 0;
    while (u->piece_off < upto) {
        size_t want = upto - u->piece_off > HASH_BUF ? HASH_BUF : (size_t)(upto - u->piece_off);
        ssize_t r = pread(fd, buf, want, (off_t)u->piece_off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            break;
        }
        piece_feed(u, buf, (size_t)r);
    }
    free(buf);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* finishing (pool): seed, move into complete_dir, .seed + .ok, .info */

static int copy_range(int in, uint64_t in_off, int out, uint64_t out_off, uint64_t n)
{
    loff_t io = (loff_t)in_off, oo = (loff_t)out_off;
    bool fallback = false;
    char *buf = NULL;
    int rc = 0;
    while (n > 0) {
        size_t want = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t r;
        if (!fallback) {
            r = copy_file_range(in, &io, out, &oo, want, 0);
            if (r < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                          errno == EOPNOTSUPP)) {
                fallback = true;
                continue;
            }
        } else {
            if (!buf)
                buf = p2p_xmalloc(HASH_BUF);
            r = pread(in, buf, want > HASH_BUF ? HASH_BUF : want, io);
            if (r > 0) {
                ssize_t w = pwrite(out, buf, (size_t)r, oo);
                if (w != r) {
                    rc = w < 0 ? -errno : -EIO;
                    break;
                }
                io += r;
                oo += r;
            }
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            break;
        }
        n -= (uint64_t)r;
    }
    free(buf);
    return rc;
}

static int copy_file(const char *src, const char *dst, uint64_t len)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -errno;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int e = -errno;
        close(in);
        return e;
    }
    int rc = copy_range(in, 0, out, 0, len);
    if (rc == 0 && fdatasync(out) < 0)
        rc = -errno;
    close(in);
    close(out);
    if (rc != 0)
        unlink(dst);
    return rc;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Moves src to a free name in complete_dir (never overwriting, renameat2 NOREPLACE); *name and
 * *dest get the chosen name and path. */
static int place_file(struct p2p_tus *t, const char *src, const char *want, uint64_t len,
                      char **name, char **dest)
{
    char *tmp = NULL;
    int rc = -EEXIST;
    for (unsigned n = 0; n < 10000 && rc == -EEXIST; n++) {
        char *cand = p2p_tus_name_candidate(want, n);
        char *d = p2p_path_join(t->complete_dir, cand);
        if (!d) {
            free(cand);
            rc = -EINVAL;
            break;
        }
        char *ds = p2p_xasprintf("%s.seed", d), *dok = p2p_xasprintf("%s.ok", d);
        bool taken = exists(ds) || exists(dok);
        free(ds);
        free(dok);
        rc = -EEXIST;
        if (!taken) {
            const char *from = tmp ? tmp : src;
            if (renameat2(AT_FDCWD, from, AT_FDCWD, d, RENAME_NOREPLACE) == 0) {
                rc = 0;
            } else if (errno == EXDEV && !tmp) {
                /* complete_dir on another filesystem: copy next to the target first */
                tmp = p2p_xasprintf("%s/.tus-%s.part", t->complete_dir, cand);
                unlink(tmp);
                int c = copy_file(src, tmp, len);
                if (c != 0) {
                    free(tmp);
                    tmp = NULL;
                    rc = c;
                } else {
                    n--; /* retry the same name from the copy */
                }
            } else if (errno != EEXIST) {
                rc = -errno;
            }
        }
        if (rc == 0) {
            *name = cand;
            *dest = d;
        } else {
            free(cand);
            free(d);
        }
    }
    if (tmp) {
        if (rc == 0)
            unlink(src);
        else
            unlink(tmp);
        free(tmp);
    }
    return rc;
}

/* The upload's data is complete (length bytes): hash what is left, build the seed, move the file,
 * write .seed, .ok and the .info. Sets j->finished and j->seed. */
static int finish_work(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    int rc;
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
    if (!u->piece_len)
        u->piece_len = p2p_seed_default_piece_length(u->length);
    uint32_t npieces = (uint32_t)((u->length + u->piece_len - 1) / u->piece_len);
    if (u->piece_off > u->length || u->ndig > npieces)
        piece_reset(u);
    rc = piece_catch_up(t, u, u->length);
    if (rc != 0)
        return rc;
    if (u->piece_off % u->piece_len != 0 && u->ndig < npieces) {
        /* the last, short piece */
        if (u->ndig == u->capdig) {
            u->capdig = u->capdig ? u->capdig * 2 : 64;
            u->digests = p2p_xrealloc(u->digests, (size_t)u->capdig * 32);
        }
        EVP_DigestFinal_ex(u->pctx, u->digests + (size_t)u->ndig * 32, NULL);
        u->ndig++;
        EVP_DigestInit_ex(u->pctx, EVP_sha256(), NULL);
    }
    if (u->ndig != npieces)
        return -EIO;

    struct p2p_seed *s = &j->seed;
    memset(s, 0, sizeof *s);
    s->version = 2;
    s->ntrackers = t->ntrackers;
    s->trackers = p2p_xcalloc(t->ntrackers, sizeof *s->trackers);
    for (size_t i = 0; i < t->ntrackers; i++)
        s->trackers[i] = p2p_xstrdup(t->trackers[i]);
    s->tracker_addr = p2p_xstrdup(t->trackers[0]);
    s->length = u->length;
    s->piece_length = u->piece_len;
    s->algo = P2P_HASH_SHA256;
    s->npieces = npieces;
    s->pieces = p2p_xcalloc(npieces ? npieces : 1, sizeof *s->pieces);
    for (uint32_t i = 0; i < npieces; i++)
        memcpy(s->pieces[i].digest, u->digests + (size_t)i * 32, 32);
    char now[40];
    p2p_rfc3339_now(now, sizeof now);
    s->created_at = p2p_xstrdup(now);

    char *src = up_path(t, u->id, "");
    char *name = NULL, *dest = NULL;
    rc = place_file(t, src, u->want_name ? u->want_name : u->id, u->length, &name, &dest);
    if (rc != 0) {
        free(src);
        return rc; /* nothing moved; the piece digests are kept for the next attempt */
    }
    s->file_name = name;
    p2p_seed_compute_info_hash(s);
    size_t slen = 0;
    char *text = p2p_seed_serialize(s, &slen);
    char *seed_path = p2p_xasprintf("%s.seed", dest);
    char *ok_path = p2p_xasprintf("%s.ok", dest);
    rc = p2p_atomic_write(seed_path, text, slen);
    if (rc == 0)
        rc = p2p_atomic_write(ok_path, "", 0);
    free(text);
    if (rc == 0) {
        p2p_tus_up_set_finished(u, s->info_hash, name, dest, NULL);
        rc = info_write(t, u);
    }
    if (rc == 0) {
        j->finished = true;
        free(u->digests);
        u->digests = NULL;
        u->ndig = u->capdig = 0;
    } else {
        /* Undo, so the upload is still complete-but-unfinished in tus.dir and the next HEAD or
         * PATCH finishes it again (the seed and .ok are ours: written after the move). */
        p2p_warn("tus: finishing %s as %s failed: %s", u->id, dest, strerror(-rc));
        unlink(ok_path);
        unlink(seed_path);
        if (u->info_hash[0]) {
            u->info_hash[0] = '\0';
            free(u->file_name);
            free(u->data_path);
            u->file_name = u->data_path = NULL;
        }
        if (renameat2(AT_FDCWD, dest, AT_FDCWD, src, RENAME_NOREPLACE) < 0 &&
            (errno != EXDEV || copy_file(dest, src, u->length) != 0 || unlink(dest) < 0))
            p2p_error("tus: cannot move %s back to %s: %s", dest, src, strerror(errno));
        p2p_seed_cleanup(s);
        memset(s, 0, sizeof *s);
    }
    free(seed_path);
    free(ok_path);
    free(src);
    free(dest);
    return rc;
}

void p2p_tus_finish_work(struct p2p_tus_job *j)
{
    j->err = finish_work(j);
}

/* ------------------------------------------------------------------------------------------ */
/* pool work */

/* pwritev of the job's buffers, continuing after short writes; j->done = bytes written. */
static int pwrite_job(int fd, struct p2p_tus_job *j)
{
    struct iovec iov[P2P_TUS_NBUF];
    int n = 0;
    for (int k = 0; k < j->nslots; k++)
        iov[n++] = (struct iovec){.iov_base = j->bufs[k], .iov_len = j->lens[k]};
    j->done = 0;
    struct iovec *v = iov;
    while (n > 0) {
        ssize_t w = pwritev(fd, v, n, (off_t)(j->off + j->done));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        j->done += (size_t)w;
        size_t left = (size_t)w;
        while (n > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

void p2p_tus_write_work(struct p2p_tus_job *j)
{
    struct p2p_tus_writer *w = j->w;
    struct p2p_tus_upload *u = j->u;
    struct p2p_tus *t = j->t;
    int *fdp = w->staged ? &w->stage_fd : &u->fd;
    if (*fdp < 0) {
        char *p = up_path(t, u->id, w->staged ? ".stage" : "");
        *fdp = open(p, w->staged ? (O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC)
                                 : (O_WRONLY | O_CREAT | O_CLOEXEC), 0644);
        free(p);
        if (*fdp < 0) {
            j->err = -errno;
            return;
        }
    }
    j->err = pwrite_job(*fdp, j);
}

/* Runs beside the write job of the same buffer: touches only the hash state. */
void p2p_tus_hash_work(struct p2p_tus_job *j)
{
    struct p2p_tus_writer *w = j->w;
    struct p2p_tus_upload *u = j->u;
    if (w->staged) {
        for (int k = 0; k < j->nslots; k++)
            for (int a = 0; a < 4; a++)
                if (w->ck[a])
                    EVP_DigestUpdate(w->ck[a], j->bufs[k], j->lens[k]);
        return;
    }
    if (!u->piece_len)
        return;
    /* bytes before this buffer that were never hashed (restart, length declared late) are on
     * disk already: read them back first */
    if (u->piece_off < j->off) {
        if (j->off > j->disk_off)
            return; /* not all on disk yet: the finish catches up */
        if (piece_catch_up(j->t, u, j->off) != 0)
            piece_reset(u);
    }
    if (u->piece_off == j->off)
        for (int k = 0; k < j->nslots; k++)
            piece_feed(u, (const uint8_t *)j->bufs[k], j->lens[k]);
}

void p2p_tus_end_work(struct p2p_tus_job *j)
{
    struct p2p_tus_writer *w = j->w;
    struct p2p_tus_upload *u = j->u;
    struct p2p_tus *t = j->t;
    int rc = 0;
    if (w->staged) {
        if (j->commit && w->ck[w->ck_algo]) {
            uint8_t d[EVP_MAX_MD_SIZE];
            unsigned dl = 0;
            EVP_DigestFinal_ex(w->ck[w->ck_algo], d, &dl);
            j->ck_ok = dl == w->ck_len && memcmp(d, w->ck_want, dl) == 0;
        }
        if (j->commit && j->ck_ok && w->staged_bytes > 0) {
            if (u->fd < 0) {
                char *p = up_path(t, u->id, "");
                u->fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                free(p);
            }
            if (u->fd < 0)
                rc = -errno;
            else
                rc = copy_range(w->stage_fd, 0, u->fd, u->offset, w->staged_bytes);
            if (rc == 0)
                j->committed = w->staged_bytes;
        }
        if (w->stage_fd >= 0) {
            close(w->stage_fd);
            w->stage_fd = -1;
        }
        unlink_up(t, u->id, ".stage");
    }
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
    if (rc == 0 && u->info_dirty)
        rc = info_write(t, u);
    uint64_t total = u->offset + j->committed;
    if (u->piece_off > total)
        piece_reset(u); /* hashed bytes that never reached the disk (write error) */
    if (rc == 0 && !u->partial && !u->deferred && total == u->length && !u->info_hash[0])
        rc = finish_work(j);
    j->err = rc;
}

void p2p_tus_create_work(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    char *p = up_path(t, u->id, "");
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    free(p);
    if (fd < 0) {
        j->err = -errno;
        return;
    }
    close(fd);
    j->err = info_write(t, u);
    if (j->err == 0 && !u->partial && !u->deferred && u->length == 0)
        j->err = finish_work(j);
}

void p2p_tus_concat_work(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    char *p = up_path(t, u->id, "");
    int out = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    free(p);
    if (out < 0) {
        j->err = -errno;
        return;
    }
    uint64_t off = 0;
    int rc = 0;
    for (size_t i = 0; i < j->nparts && rc == 0; i++) {
        char *pp = up_path(t, j->parts[i]->id, "");
        int in = open(pp, O_RDONLY | O_CLOEXEC);
        free(pp);
        if (in < 0) {
            rc = -errno;
            break;
        }
        rc = copy_range(in, 0, out, off, j->parts[i]->length);
        off += j->parts[i]->length;
        close(in);
    }
    close(out);
    if (rc == 0)
        rc = info_write(t, u);
    if (rc == 0) {
        /* finish_work hashes the pieces from the file (u->offset is set on the loop after) */
        rc = finish_work(j);
    }
    if (rc != 0) {
        unlink_up(t, u->id, "");
        unlink_up(t, u->id, ".info");
    }
    j->err = rc;
}

void p2p_tus_instant_work(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    if (!j->skip_stat) {
        struct stat st;
        char *okp = p2p_xasprintf("%s.ok", u->data_path);
        bool ok = stat(u->data_path, &st) == 0 && S_ISREG(st.st_mode) &&
                  (uint64_t)st.st_size == u->length && access(okp, F_OK) == 0;
        free(okp);
        if (!ok) {
            u->info_hash[0] = '\0';
            free(u->file_name);
            free(u->data_path);
            u->file_name = u->data_path = NULL;
            j->instant_failed = true;
            p2p_tus_create_work(j);
            return;
        }
    }
    j->err = info_write(t, u);
}

void p2p_tus_delete_work(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    int rc = 0;
    /* A finished file belongs to the swarm now: termination forgets the upload only. */
    if (!u->info_hash[0]) {
        rc = unlink_up(t, u->id, "");
        unlink_up(t, u->id, ".stage");
    }
    if (rc == 0)
        rc = unlink_up(t, u->id, ".info");
    j->err = rc;
}

void p2p_tus_expire_work(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    if (j->purge) {
        j->err = unlink_up(t, u->id, ".info");
        return;
    }
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
    unlink_up(t, u->id, "");
    unlink_up(t, u->id, ".stage");
    /* a tombstone, so the URL answers 410 until it is purged */
    struct p2p_tus_upload tomb = {.state = P2P_TUS_UP_GONE, .gone_s = (uint64_t)time(NULL)};
    memcpy(tomb.id, u->id, sizeof tomb.id);
    j->err = info_write(t, &tomb);
}

/* ------------------------------------------------------------------------------------------ */
/* whole-file digests (instant upload) */

static size_t known_bucket(const uint8_t *sha)
{
    return ((size_t)sha[0] << 8 | sha[1]) % P2P_TUS_KNOWN_BUCKETS;
}

const struct p2p_tus_known *p2p_tus_known_find(const struct p2p_tus *t, const uint8_t *sha)
{
    for (struct p2p_tus_known *k = t->known[known_bucket(sha)]; k; k = k->next)
        if (memcmp(k->sha256, sha, 32) == 0)
            return k;
    return NULL;
}

static bool known_has_info_hash(const struct p2p_tus *t, const char *ih)
{
    for (size_t b = 0; b < P2P_TUS_KNOWN_BUCKETS; b++)
        for (struct p2p_tus_known *k = t->known[b]; k; k = k->next)
            if (strcmp(k->info_hash, ih) == 0)
                return true;
    return false;
}

static void known_add(struct p2p_tus *t, const uint8_t *sha, const char *ih, uint64_t length,
                      const char *file_name, const char *data_path)
{
    size_t b = known_bucket(sha);
    struct p2p_tus_known **pp = &t->known[b];
    while (*pp && memcmp((*pp)->sha256, sha, 32) != 0)
        pp = &(*pp)->next;
    struct p2p_tus_known *k = *pp;
    if (!k) {
        k = p2p_xcalloc(1, sizeof *k);
        memcpy(k->sha256, sha, 32);
        *pp = k;
    }
    snprintf(k->info_hash, sizeof k->info_hash, "%s", ih);
    free(k->file_name);
    free(k->data_path);
    k->file_name = p2p_xstrdup(file_name);
    k->data_path = p2p_xstrdup(data_path);
    k->length = length;
}

static void digest_next(struct p2p_tus *t);

static void digest_work(struct p2p_tus_job *j)
{
    int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        j->err = -errno;
        return;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
        abort();
    uint8_t *buf = p2p_xmalloc(HASH_BUF);
    for (;;) {
        ssize_t r = read(fd, buf, HASH_BUF);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            j->err = -errno;
            break;
        }
        if (r == 0)
            break;
        EVP_DigestUpdate(c, buf, (size_t)r);
    }
    EVP_DigestFinal_ex(c, j->sha, NULL);
    EVP_MD_CTX_free(c);
    free(buf);
    close(fd);
    if (j->err != 0)
        return;
    /* one line per file, appended with a single write */
    char hex[65];
    p2p_hex_encode(j->sha, 32, hex);
    char *line = p2p_xasprintf("%s %s %llu %s\n", hex, j->u->info_hash,
                               (unsigned long long)j->u->length, j->path);
    char *idx = p2p_xasprintf("%s/%s", j->t->dir, P2P_TUS_INDEX);
    int ifd = open(idx, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ifd < 0 || write(ifd, line, strlen(line)) != (ssize_t)strlen(line))
        j->err = -EIO;
    if (ifd >= 0)
        close(ifd);
    free(idx);
    free(line);
}

static void digest_after(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    t->digest_busy = false;
    if (j->err == 0) {
        memcpy(u->sha256, j->sha, 32);
        u->have_sha = true;
        known_add(t, j->sha, u->info_hash, u->length, u->file_name, j->path);
    } else {
        p2p_warn("tus: digest of %s failed: %s", j->path, uv_strerror(j->err));
    }
    digest_next(t);
}

static void digest_next(struct p2p_tus *t)
{
    if (t->digest_busy || t->ndigest_q == 0 || t->stopping)
        return;
    struct p2p_tus_upload *u = t->digest_q[0];
    memmove(t->digest_q, t->digest_q + 1, (t->ndigest_q - 1) * sizeof *t->digest_q);
    t->ndigest_q--;
    struct p2p_tus_job *j = p2p_tus_job_new(t, u, digest_work, digest_after);
    j->path = p2p_xstrdup(u->data_path);
    u->refs--; /* the queue's reference moves to the job */
    t->digest_busy = true;
    p2p_tus_job_submit(j);
}

void p2p_tus_digest_queue(struct p2p_tus *t, struct p2p_tus_upload *u)
{
    if (u->have_sha || !u->data_path || t->ndigest_q >= P2P_TUS_MAX_UPLOADS)
        return;
    t->digest_q = p2p_xrealloc(t->digest_q, (t->ndigest_q + 1) * sizeof *t->digest_q);
    t->digest_q[t->ndigest_q++] = u;
    u->refs++;
    digest_next(t);
}

/* ------------------------------------------------------------------------------------------ */
/* loading (blocking, before the loop runs) */

static void load_index(struct p2p_tus *t)
{
    char *idx = p2p_xasprintf("%s/%s", t->dir, P2P_TUS_INDEX);
    char *buf = NULL;
    size_t len = 0;
    if (p2p_read_file(idx, 256u << 20, &buf, &len) != 0) {
        free(idx);
        return;
    }
    free(idx);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char hex[65], ih[65];
        unsigned long long length;
        int pos = 0;
        if (sscanf(line, "%64s %64s %llu %n", hex, ih, &length, &pos) != 3 || pos <= 0)
            continue;
        uint8_t sha[32];
        const char *path = line + pos;
        const char *slash = strrchr(path, '/');
        if (strlen(hex) != 64 || p2p_hex_decode(hex, 32, sha) != 0 || strlen(ih) != 64 ||
            !p2p_is_lower_hex(ih, 64) || !slash || !slash[1])
            continue;
        known_add(t, sha, ih, length, slash + 1, path);
    }
    free(buf);
}

static struct p2p_tus_upload *find_loaded(struct p2p_tus *t, const char *id)
{
    struct p2p_tus_upload *u = t->table[p2p_tus_id_hash(id)];
    while (u && strcmp(u->id, id) != 0)
        u = u->hnext;
    return u;
}

static struct p2p_tus_upload *load_info(struct p2p_tus *t, const char *id)
{
    char *path = up_path(t, id, ".info");
    char *buf = NULL;
    size_t len = 0;
    char err[256];
    struct p2p_tus_upload *u = NULL;
    json_t *o = NULL;
    if (p2p_read_file(path, P2P_TUS_INFO_MAX, &buf, &len) != 0)
        goto out;
    o = p2p_json_parse_object(buf, len, err, sizeof err);
    if (!o)
        goto out;
    const char *jid = NULL;
    if (p2p_json_get_str(o, "id", true, &jid, err, sizeof err) != 0 || strcmp(jid, id) != 0)
        goto out;
    u = p2p_tus_up_new(t, id);
    bool gone = false;
    p2p_json_get_bool(o, "gone", false, &gone, err, sizeof err);
    if (gone) {
        u->state = P2P_TUS_UP_GONE;
        p2p_json_get_u64(o, "goneAt", false, UINT64_MAX, &u->gone_s, err, sizeof err);
        goto out;
    }
    const char *s = NULL;
    bool ok = true;
    ok &= p2p_json_get_bool(o, "deferred", false, &u->deferred, err, sizeof err) >= 0;
    if (!u->deferred)
        ok &= p2p_json_get_u64(o, "length", true, P2P_SEED_MAX_LENGTH, &u->length, err,
                               sizeof err) == 0;
    ok &= p2p_json_get_bool(o, "partial", false, &u->partial, err, sizeof err) >= 0;
    ok &= p2p_json_get_bool(o, "final", false, &u->final, err, sizeof err) >= 0;
    ok &= p2p_json_get_u64(o, "created", false, UINT64_MAX, &u->created_s, err, sizeof err) >= 0;
    if (p2p_json_get_str(o, "metadata", false, &s, err, sizeof err) == 0) {
        struct p2p_tus_meta m;
        if (p2p_tus_meta_parse(s, &m, NULL) == 0) {
            u->metadata = p2p_xstrdup(s);
            p2p_tus_meta_cleanup(&m);
        } else {
            ok = false;
        }
    }
    s = NULL;
    if (p2p_json_get_str(o, "concat", false, &s, err, sizeof err) == 0) {
        bool partial;
        char(*ids)[P2P_TUS_ID_LEN + 1] = NULL;
        size_t n = 0;
        if (p2p_tus_concat_parse(s, t->base_path, &partial, &ids, &n) == 0 &&
            partial == u->partial) {
            u->concat = p2p_xstrdup(s);
            u->parts = ids;
            u->nparts = n;
        } else {
            free(ids);
            ok = false;
        }
    }
    s = NULL;
    if (p2p_json_get_str(o, "wantName", false, &s, err, sizeof err) == 0 &&
        p2p_name_is_safe(s, strlen(s), NULL))
        u->want_name = p2p_xstrdup(s);
    const char *ih = NULL, *fn = NULL, *dp = NULL;
    if (p2p_json_get_str(o, "infoHash", false, &ih, err, sizeof err) == 0) {
        if (p2p_json_get_str(o, "fileName", true, &fn, err, sizeof err) != 0 ||
            p2p_json_get_str(o, "dataPath", true, &dp, err, sizeof err) != 0 ||
            strlen(ih) != 64 || !p2p_is_lower_hex(ih, 64) || u->partial || u->deferred)
            ok = false;
        else
            p2p_tus_up_set_finished(u, ih, fn, dp, NULL);
    }
    if (!ok) {
        p2p_tus_up_free(u);
        u = NULL;
    }
out:
    if (!u)
        p2p_warn("tus: ignoring unreadable %s", path);
    json_decref(o);
    free(buf);
    free(path);
    return u;
}

int p2p_tus_store_load(struct p2p_tus *t, char *err, size_t errlen)
{
    int rc = p2p_mkdirs(t->dir);
    if (rc == 0)
        rc = p2p_mkdirs(t->complete_dir);
    if (rc != 0) {
        snprintf(err, errlen, "tus: cannot create %s or %s: %s", t->dir, t->complete_dir,
                 strerror(-rc));
        return -1;
    }
    t->next_expire_s = UINT64_MAX;
    load_index(t);
    DIR *d = opendir(t->dir);
    if (!d) {
        snprintf(err, errlen, "tus: cannot read %s: %s", t->dir, strerror(errno));
        return -1;
    }
    uint64_t exp_s = t->expiration_ms / 1000;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        size_t nl = strlen(n);
        if (nl > P2P_TUS_ID_LEN && p2p_tus_id_valid(n, P2P_TUS_ID_LEN)) {
            const char *suffix = n + P2P_TUS_ID_LEN;
            if (strcmp(suffix, ".stage") == 0 || strstr(suffix, ".tmp-")) {
                unlink_up(t, n, ""); /* n already has the suffix */
                continue;
            }
        }
        if (nl != P2P_TUS_ID_LEN + 5 || strcmp(n + P2P_TUS_ID_LEN, ".info") != 0 ||
            !p2p_tus_id_valid(n, P2P_TUS_ID_LEN))
            continue;
        char id[P2P_TUS_ID_LEN + 1];
        memcpy(id, n, P2P_TUS_ID_LEN);
        id[P2P_TUS_ID_LEN] = '\0';
        if (find_loaded(t, id))
            continue;
        struct p2p_tus_upload *u = load_info(t, id);
        if (!u)
            continue;
        if (u->state != P2P_TUS_UP_GONE && !u->info_hash[0]) {
            char *dp = up_path(t, id, "");
            struct stat st;
            int src = stat(dp, &st);
            free(dp);
            if (src != 0 || !S_ISREG(st.st_mode) ||
                (!u->deferred && (uint64_t)st.st_size > u->length)) {
                p2p_warn("tus: upload %s has no usable data file; dropping it", id);
                unlink_up(t, id, "");
                unlink_up(t, id, ".info");
                p2p_tus_up_free(u);
                continue;
            }
            u->offset = (uint64_t)st.st_size;
            uint64_t base = (uint64_t)st.st_mtime > u->created_s ? (uint64_t)st.st_mtime
                                                                  : u->created_s;
            if (exp_s && !u->final)
                u->expires_s = base + exp_s;
            if (!u->partial && !u->deferred)
                u->piece_len = p2p_seed_default_piece_length(u->length);
            if (u->final && u->offset != u->length) {
                /* a concatenation cut short by a crash: start the final again */
                unlink_up(t, id, "");
                unlink_up(t, id, ".info");
                p2p_tus_up_free(u);
                continue;
            }
        } else if (u->info_hash[0]) {
            u->state = P2P_TUS_UP_FINISHED;
            u->offset = u->length;
            /* the record is kept finished_keep after it was written (finish time) */
            char *ip = up_path(t, id, ".info");
            struct stat st;
            uint64_t base = stat(ip, &st) == 0 ? (uint64_t)st.st_mtime : (uint64_t)time(NULL);
            free(ip);
            u->expires_s = base + t->finished_keep_s;
        }
        p2p_tus_table_add(t, u);
    }
    /* Data files without an upload: a crash between creating the data file and its .info (an
     * unreadable .info keeps its data, for a human to look at). */
    rewinddir(d);
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strlen(n) != P2P_TUS_ID_LEN || !p2p_tus_id_valid(n, P2P_TUS_ID_LEN) ||
            find_loaded(t, n))
            continue;
        char *ip = up_path(t, n, ".info");
        struct stat st;
        bool orphan = lstat(ip, &st) < 0 && errno == ENOENT;
        free(ip);
        if (orphan) {
            p2p_warn("tus: removing %s/%s: no upload owns it", t->dir, n);
            unlink_up(t, n, "");
        }
    }
    closedir(d);
    /* Finished uploads whose whole-file digest never made it into the index. */
    for (size_t b = 0; b < P2P_TUS_BUCKETS; b++)
        for (struct p2p_tus_upload *u = t->table[b]; u; u = u->hnext)
            if (u->state == P2P_TUS_UP_FINISHED && !known_has_info_hash(t, u->info_hash))
                p2p_tus_digest_queue(t, u);
    p2p_info("tus: %zu uploads in %s", t->nuploads, t->dir);
    return 0;
}

void p2p_tus_free(struct p2p_tus *t)
{
    if (!t)
        return;
    p2p_tus_hooks_free(t);
    /* queued digests hold references; the table frees the uploads still in it */
    for (size_t i = 0; i < t->ndigest_q; i++)
        if (!t->digest_q[i]->in_table && --t->digest_q[i]->refs == 0)
            p2p_tus_up_free(t->digest_q[i]);
    for (size_t b = 0; b < P2P_TUS_BUCKETS; b++) {
        struct p2p_tus_upload *u = t->table[b];
        while (u) {
            struct p2p_tus_upload *next = u->hnext;
            p2p_tus_up_free(u);
            u = next;
        }
    }
    for (size_t b = 0; b < P2P_TUS_KNOWN_BUCKETS; b++) {
        struct p2p_tus_known *k = t->known[b];
        while (k) {
            struct p2p_tus_known *next = k->next;
            free(k->file_name);
            free(k->data_path);
            free(k);
            k = next;
        }
    }
    free(t->digest_q);
    for (size_t i = 0; i < t->ntrackers; i++)
        free(t->trackers[i]);
    free(t->trackers);
    free(t->base_path);
    free(t->route_any);
    free(t->route_root);
    free(t->dir);
    free(t->complete_dir);
    free(t->auth_token);
    free(t->public_url);
    free(t->hook_url);
    free(t);
}
