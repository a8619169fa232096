/* TUS 1.0.0 endpoint: request dispatch and validation, the per-upload lock with pre-emption,
 * request bodies streamed to disk through the thread pool with backpressure, expiration, and
 * the hook. Disk state and finishing (seed, move, .ok) live in tus_store.c. */
#include "node/tus_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>

#include "common/fsx.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

enum tus_method { M_OTHER = 0, M_OPTIONS, M_HEAD, M_GET, M_POST, M_PATCH, M_DELETE };

static const char cors_allow_headers[] =
    "Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, "
    "Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, "
    "Upload-Defer-Length, Upload-Concat, Upload-Checksum";
static const char cors_expose_headers[] =
    "Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, "
    "Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, "
    "Upload-Concat, Upload-Expires, P2P-Info-Hash, P2P-Seed-URL";

/* A request waiting for an upload's lock. */
struct p2p_tus_waiter {
    struct p2p_tus *t;
    struct p2p_tus_upload *u;
    struct p2p_httpd_req *req;
    enum tus_method method;
    uint64_t deadline_ms;
    struct p2p_tus_waiter *next;      /* in u's queue */
    struct p2p_tus_waiter *gprev, *gnext; /* in t's list (timeouts) */
};

static void dispatch_locked(struct p2p_tus_upload *u, struct p2p_httpd_req *req,
                            enum tus_method m);
static void lock_release(struct p2p_tus_upload *u);
static void writer_pump(struct p2p_tus_writer *w);
static void writer_maybe_end(struct p2p_tus_writer *w);
static void writer_stop(struct p2p_tus_writer *w, int why);
static void check_shutdown(struct p2p_tus *t);

/* ------------------------------------------------------------------------------------------ */
/* responses */

static void add_common(struct p2p_tus *t, struct p2p_httpd_req *req, bool preflight)
{
    p2p_httpd_add_header(req, "Tus-Resumable", P2P_TUS_VERSION);
    p2p_httpd_add_header(req, "X-Content-Type-Options", "nosniff");
    const char *origin = p2p_httpd_header(req, "Origin");
    if (origin && strlen(origin) <= 512) {
        bool ok = true;
        for (const char *p = origin; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                ok = false;
        if (ok) {
            p2p_httpd_add_header(req, "Access-Control-Allow-Origin", origin);
            p2p_httpd_add_header(req, "Vary", "Origin");
            if (preflight) {
                p2p_httpd_add_header(req, "Access-Control-Allow-Methods",
                                     "POST, HEAD, PATCH, OPTIONS, DELETE");
                p2p_httpd_add_header(req, "Access-Control-Allow-Headers", cors_allow_headers);
                p2p_httpd_add_header(req, "Access-Control-Max-Age", "86400");
            } else {
                p2p_httpd_add_header(req, "Access-Control-Expose-Headers", cors_expose_headers);
            }
        }
    }
    (void)t;
}

static bool req_has_body(const struct p2p_httpd_req *req)
{
    return p2p_httpd_content_length(req) > 0 || p2p_httpd_is_chunked(req);
}

/* Error responses are short text (STYLE: "<ERR_CODE>: <message>"). A request whose body was
 * not taken closes the connection instead of draining it (tusd #1371). */
static void tus_error(struct p2p_httpd_req *req, int status, const char *code, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof body, "%s: %s\n", code, msg);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body)
        n = sizeof body - 1;
    p2p_httpd_respond(req, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static void tus_error_close(struct p2p_httpd_req *req, int status, const char *code,
                            const char *msg)
{
    if (req_has_body(req))
        p2p_httpd_close_after(req);
    tus_error(req, status, code, msg);
}

static void add_offset(struct p2p_httpd_req *req, uint64_t off)
{
    p2p_httpd_add_headerf(req, "Upload-Offset", "%llu", (unsigned long long)off);
}

static void add_expires(struct p2p_tus *t, struct p2p_httpd_req *req, struct p2p_tus_upload *u)
{
    if (u->expires_s && (u->state == P2P_TUS_UP_ACTIVE || u->partial)) {
        char d[40];
        p2p_tus_http_date(u->expires_s, d);
        p2p_httpd_add_header(req, "Upload-Expires", d);
    }
    (void)t;
}

/* P2P-Info-Hash and P2P-Seed-URL on a finished (non-partial) upload. */
static void add_finished(struct p2p_tus *t, struct p2p_httpd_req *req, struct p2p_tus_upload *u)
{
    if (u->state != P2P_TUS_UP_FINISHED || u->partial || !u->info_hash[0])
        return;
    p2p_httpd_add_header(req, "P2P-Info-Hash", u->info_hash);
    if (t->public_url) {
        p2p_httpd_add_headerf(req, "P2P-Seed-URL", "%s/v2/seed/%s", t->public_url, u->info_hash);
    } else {
        const char *host = p2p_httpd_header(req, "Host");
        if (host && p2p_httpd_header_count(req, "Host") == 1 && p2p_tus_host_valid(host))
            p2p_httpd_add_headerf(req, "P2P-Seed-URL", "http://%s/v2/seed/%s", host, u->info_hash);
        else
            p2p_httpd_add_headerf(req, "P2P-Seed-URL", "/v2/seed/%s", u->info_hash);
    }
}

/* Upload-Length / Upload-Defer-Length of u. */
static void add_length(struct p2p_httpd_req *req, struct p2p_tus_upload *u)
{
    if (u->deferred)
        p2p_httpd_add_header(req, "Upload-Defer-Length", "1");
    else
        p2p_httpd_add_headerf(req, "Upload-Length", "%llu", (unsigned long long)u->length);
}

static void respond_gone(struct p2p_httpd_req *req, struct p2p_tus_upload *u)
{
    if (!u || !u->in_table)
        tus_error_close(req, 404, "ERR_UPLOAD_NOT_FOUND", "upload not found");
    else
        tus_error_close(req, 410, "ERR_UPLOAD_GONE", "upload expired");
}

/* ------------------------------------------------------------------------------------------ */
/* upload table and lifetime */

void p2p_tus_up_unref(struct p2p_tus_upload *u)
{
    if (--u->refs > 0 || u->in_table)
        return;
    p2p_tus_up_free(u);
}

static struct p2p_tus_upload *find(struct p2p_tus *t, const char *id)
{
    struct p2p_tus_upload *u = t->table[p2p_tus_id_hash(id)];
    while (u && strcmp(u->id, id) != 0)
        u = u->hnext;
    return u;
}

/* ------------------------------------------------------------------------------------------ */
/* jobs */

static void job_work(uv_work_t *w)
{
    struct p2p_tus_job *j = P2P_CONTAINER_OF(w, struct p2p_tus_job, work_req);
    j->work(j);
}

static void job_after(uv_work_t *w, int status)
{
    struct p2p_tus_job *j = P2P_CONTAINER_OF(w, struct p2p_tus_job, work_req);
    struct p2p_tus *t = j->t;
    if (status == UV_ECANCELED && j->err == 0)
        j->err = UV_ECANCELED;
    j->after(j);
    t->jobs--;
    if (j->u)
        p2p_tus_up_unref(j->u);
    p2p_tus_job_free(j);
    check_shutdown(t);
}

struct p2p_tus_job *p2p_tus_job_new(struct p2p_tus *t, struct p2p_tus_upload *u,
                                    void (*work)(struct p2p_tus_job *),
                                    void (*after)(struct p2p_tus_job *))
{
    struct p2p_tus_job *j = p2p_xcalloc(1, sizeof *j);
    j->t = t;
    j->u = u;
    j->work = work;
    j->after = after;
    if (u)
        u->refs++;
    return j;
}

void p2p_tus_job_submit(struct p2p_tus_job *j)
{
    j->t->jobs++;
    int rc = uv_queue_work(j->t->loop, &j->work_req, job_work, job_after);
    if (rc != 0) {
        /* Only fails on programmer error; run inline rather than lose the job. */
        p2p_error("tus: uv_queue_work: %s", uv_strerror(rc));
        job_work(&j->work_req);
        job_after(&j->work_req, 0);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* lock with pre-emption (TUS.md §2 locking: a new HEAD/PATCH asks the holder to stop) */

static void waiter_unlink(struct p2p_tus_waiter *wt)
{
    struct p2p_tus *t = wt->t;
    struct p2p_tus_waiter **pp = &wt->u->waiters;
    while (*pp && *pp != wt)
        pp = &(*pp)->next;
    if (*pp)
        *pp = wt->next;
    if (wt->gprev)
        wt->gprev->gnext = wt->gnext;
    else
        t->waiters = wt->gnext;
    if (wt->gnext)
        wt->gnext->gprev = wt->gprev;
    t->nwaiters--;
}

static void waiter_aborted(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_tus_waiter *wt = ud;
    struct p2p_tus_upload *u = wt->u;
    struct p2p_tus *t = wt->t;
    waiter_unlink(wt);
    p2p_httpd_set_data(req, NULL);
    tus_error(req, 400, "ERR_UPLOAD_INTERRUPTED", "client went away");
    free(wt);
    p2p_tus_up_unref(u); /* may free u */
    check_shutdown(t);
}

static void lock_acquire(struct p2p_tus_upload *u, struct p2p_httpd_req *req, enum tus_method m)
{
    struct p2p_tus *t = u->t;
    if (!u->locked) {
        u->locked = true;
        dispatch_locked(u, req, m);
        return;
    }
    struct p2p_tus_waiter *wt = p2p_xcalloc(1, sizeof *wt);
    wt->t = t;
    wt->u = u;
    wt->req = req;
    wt->method = m;
    wt->deadline_ms = p2p_now_ms() + P2P_TUS_LOCK_WAIT_MS;
    struct p2p_tus_waiter **pp = &u->waiters;
    while (*pp)
        pp = &(*pp)->next;
    *pp = wt;
    wt->gnext = t->waiters;
    if (t->waiters)
        t->waiters->gprev = wt;
    t->waiters = wt;
    t->nwaiters++;
    u->refs++;
    p2p_httpd_on_abort(req, waiter_aborted, wt);
    if (u->writer)
        writer_stop(u->writer, P2P_TUS_STOP_PREEMPT);
}

static void lock_release(struct p2p_tus_upload *u)
{
    u->refs++;
    u->locked = false;
    while (!u->locked && u->waiters) {
        struct p2p_tus_waiter *wt = u->waiters;
        waiter_unlink(wt);
        struct p2p_httpd_req *req = wt->req;
        enum tus_method m = wt->method;
        p2p_httpd_on_abort(req, NULL, NULL);
        free(wt);
        u->refs--;
        u->locked = true;
        dispatch_locked(u, req, m);
    }
    p2p_tus_up_unref(u);
}

/* Times out waiters; called from the tick. */
static void waiters_tick(struct p2p_tus *t, uint64_t now)
{
    struct p2p_tus_waiter *wt = t->waiters;
    while (wt) {
        struct p2p_tus_waiter *next = wt->gnext;
        if (wt->deadline_ms <= now || t->stopping) {
            struct p2p_tus_upload *u = wt->u;
            struct p2p_httpd_req *req = wt->req;
            waiter_unlink(wt);
            p2p_httpd_on_abort(req, NULL, NULL);
            free(wt);
            if (t->stopping)
                tus_error_close(req, 503, "ERR_SERVER_SHUTDOWN", "server is shutting down");
            else
                tus_error_close(req, 500, "ERR_LOCK_TIMEOUT", "upload is busy");
            p2p_tus_up_unref(u);
        }
        wt = next;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* writer: one request body streamed into an upload */

static void writer_free(struct p2p_tus_writer *w)
{
    struct p2p_tus *t = w->t;
    for (int i = 0; i < P2P_TUS_NBUF; i++)
        free(w->buf[i]);
    for (int i = 0; i < 4; i++)
        if (w->ck[i])
            EVP_MD_CTX_free(w->ck[i]);
    if (w->prev)
        w->prev->next = w->next;
    else
        t->writers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    t->nwriters--;
    free(w);
}

/* The writer's buffers form a ring: ri..ri+nq-1 are full, each waiting to be written (the write
 * chain, one pwrite job at a time, in order) and hashed (the hash chain: piece SHA-256, or the
 * Upload-Checksum digest of a staged chunk; one job at a time, in order). The two chains run in
 * parallel on the pool; a buffer is reused once both are done with it. */
static void writer_release(struct p2p_tus_writer *w)
{
    while (w->nq > 0 && w->written[w->ri] && w->hashed[w->ri]) {
        w->fill[w->ri] = 0;
        w->ri = (w->ri + 1) % P2P_TUS_NBUF;
        w->nq--;
    }
}

static void writer_after_job(struct p2p_tus_writer *w)
{
    writer_release(w);
    writer_pump(w);
    if (w->paused && !w->stopping && !w->ended && !w->overflow && w->nq < P2P_TUS_NBUF) {
        w->paused = false;
        p2p_httpd_resume(w->req);
    }
    writer_maybe_end(w);
}

static void write_after(struct p2p_tus_job *j)
{
    struct p2p_tus_writer *w = j->w;
    struct p2p_tus_upload *u = j->u;
    w->winf = false;
    if (!w->staged) {
        u->offset += j->done;
        w->t->stats.bytes_received += j->done;
    } else {
        w->staged_bytes += j->done;
    }
    for (int k = 0; k < j->nslots; k++)
        w->written[j->slots[k]] = true;
    if (j->err != 0 || j->done < j->len) {
        /* stop taking data; what was written is kept (piece state is re-derived at the end) */
        if (!w->io_err)
            w->io_err = j->err ? j->err : UV_EIO;
        writer_stop(w, P2P_TUS_STOP_IOERR);
    }
    writer_after_job(w);
}

static void hash_after(struct p2p_tus_job *j)
{
    struct p2p_tus_writer *w = j->w;
    w->hinf = false;
    for (int k = 0; k < j->nslots; k++)
        w->hashed[j->slots[k]] = true;
    writer_after_job(w);
}

/* Starts a job on the next buffers of one chain: all the full buffers that chain has not taken
 * yet (they are consecutive in the file), so a chain that fell behind catches up in one job
 * (one pwritev, one wake-up). */
static void chain_submit(struct p2p_tus_writer *w, bool hash)
{
    bool *done = hash ? w->hashed : w->written, *sub = hash ? w->hsub : w->wsub;
    struct p2p_tus_job *j = NULL;
    for (int k = 0; k < w->nq; k++) {
        int i = (w->ri + k) % P2P_TUS_NBUF;
        if (done[i] || sub[i])
            continue;
        if (!j) {
            j = p2p_tus_job_new(w->t, w->u, hash ? p2p_tus_hash_work : p2p_tus_write_work,
                                hash ? hash_after : write_after);
            j->w = w;
            j->off = w->off[i];
            j->disk_off = w->u->offset;
        }
        j->slots[j->nslots] = i;
        j->bufs[j->nslots] = w->buf[i];
        j->lens[j->nslots] = w->fill[i];
        j->nslots++;
        j->len += w->fill[i];
        sub[i] = true;
    }
    if (!j)
        return;
    if (hash)
        w->hinf = true;
    else
        w->winf = true;
    p2p_tus_job_submit(j);
}

static void writer_pump(struct p2p_tus_writer *w)
{
    if (w->io_err)
        return;
    if (!w->winf)
        chain_submit(w, false);
    if (!w->hinf)
        chain_submit(w, true);
}

/* Buffer i is full: give it its offset and queue it on both chains. */
static void writer_mark_full(struct p2p_tus_writer *w, int i)
{
    w->off[i] = w->seq_off;
    w->seq_off += w->fill[i];
    w->written[i] = w->wsub[i] = w->hsub[i] = false;
    /* nothing to hash: no piece hashing (partial, deferred length) and no checksum */
    w->hashed[i] = !w->staged && w->u->piece_len == 0;
    w->nq++;
}

/* Marks the buffer being filled as full (if it holds anything) so it gets written. */
static void writer_flush(struct p2p_tus_writer *w)
{
    if (w->nq < P2P_TUS_NBUF) {
        int wi = (w->ri + w->nq) % P2P_TUS_NBUF;
        if (w->fill[wi] > 0)
            writer_mark_full(w, wi);
    }
    writer_pump(w);
}

static void writer_on_data(struct p2p_httpd_req *req, const char *data, size_t len, void *ud)
{
    struct p2p_tus_writer *w = ud;
    if (w->stopping || w->overflow || w->responded)
        return;
    uint64_t room = w->limit - w->got;
    size_t take = len;
    if ((uint64_t)take > room) {
        take = (size_t)room;
        w->overflow = true;
    }
    while (take > 0) {
        if (w->nq == P2P_TUS_NBUF) {
            /* the server sent more than it promised after a pause: cannot hold it */
            w->io_err = UV_ENOBUFS;
            writer_stop(w, P2P_TUS_STOP_IOERR);
            return;
        }
        int wi = (w->ri + w->nq) % P2P_TUS_NBUF;
        if (!w->buf[wi])
            w->buf[wi] = p2p_xmalloc(P2P_TUS_BUF + P2P_TUS_BUF_SLACK);
        size_t space = P2P_TUS_BUF + P2P_TUS_BUF_SLACK - w->fill[wi];
        size_t n = take < space ? take : space;
        memcpy(w->buf[wi] + w->fill[wi], data, n);
        w->fill[wi] += n;
        w->got += n;
        data += n;
        take -= n;
        if (w->fill[wi] >= P2P_TUS_BUF)
            writer_mark_full(w, wi);
    }
    writer_pump(w);
    if (w->overflow) {
        /* tusd's OverflowWithoutLength: keep up to the length, then 413 */
        if (!w->paused) {
            w->paused = true;
            p2p_httpd_pause(req);
        }
        writer_flush(w);
        writer_maybe_end(w);
        return;
    }
    if (w->nq == P2P_TUS_NBUF && !w->paused) {
        w->paused = true;
        p2p_httpd_pause(req);
    }
}

static void writer_on_end(struct p2p_httpd_req *req, int status, void *ud)
{
    struct p2p_tus_writer *w = ud;
    (void)req;
    if (w->responded)
        return;
    w->ended = true;
    w->end_status = status;
    if (status < 0)
        w->gone = true;
    if (!w->overflow && !w->stopping)
        writer_flush(w);
    writer_maybe_end(w);
}

/* Stops a writer early: pre-emption by another request, I/O error, shutdown. The bytes received
 * so far are still written (not for a staged chunk, which was not verified). */
static void writer_stop(struct p2p_tus_writer *w, int why)
{
    if (w->stopping || w->responded)
        return;
    w->stopping = true;
    w->stop_why = why;
    if (!w->paused && !w->ended) {
        w->paused = true;
        p2p_httpd_pause(w->req);
    }
    if (why != P2P_TUS_STOP_IOERR)
        writer_flush(w);
    writer_maybe_end(w);
}

static void writer_respond(struct p2p_tus_writer *w, struct p2p_tus_job *j);

static void end_after(struct p2p_tus_job *j)
{
    struct p2p_tus_writer *w = j->w;
    struct p2p_tus_upload *u = j->u;
    struct p2p_tus *t = w->t;
    w->end_job = false;
    p2p_debug("tus: %s: end job %llu ms (finished %d)", u->id,
              (unsigned long long)(p2p_now_ms() - j->t0_ms), (int)j->finished);
    if (j->committed) {
        u->offset += j->committed;
        t->stats.bytes_received += j->committed;
    }
    if (j->err == 0)
        u->info_dirty = false;
    if (j->finished)
        p2p_tus_finished(t, u, j);
    writer_respond(w, j);
}

/* Once nothing is in flight after the body ended or the writer stopped: verify/commit a staged
 * chunk, close files, persist a declared length, finish a complete upload (on the pool). */
static void writer_maybe_end(struct p2p_tus_writer *w)
{
    if (w->end_job || w->responded || w->winf || w->hinf)
        return;
    if (!(w->ended || w->stopping || w->overflow))
        return;
    if (w->nq > 0 && !w->io_err)
        return;
    struct p2p_tus_upload *u = w->u;
    struct p2p_tus_job *j = p2p_tus_job_new(w->t, u, p2p_tus_end_work, end_after);
    j->w = w;
    j->t0_ms = p2p_now_ms();
    /* a staged chunk commits only after the whole body arrived and its checksum matched */
    j->commit = w->staged && w->ended && w->end_status == 0 && !w->stopping && !w->overflow &&
                !w->io_err;
    if (j->commit && w->ck_trailer) {
        const char *tr = p2p_httpd_trailer(w->req, "Upload-Checksum");
        enum p2p_tus_algo algo;
        size_t dlen = 0;
        if (!tr || p2p_tus_checksum_parse(tr, &algo, w->ck_want, &dlen) != 0 ||
            !w->ck[algo]) {
            j->commit = false;
            w->bad_trailer = true;
        } else {
            w->ck_algo = algo;
            w->ck_len = dlen;
        }
    }
    w->end_job = true;
    p2p_tus_job_submit(j);
}

static void writer_respond(struct p2p_tus_writer *w, struct p2p_tus_job *j)
{
    struct p2p_tus *t = w->t;
    struct p2p_tus_upload *u = w->u;
    struct p2p_httpd_req *req = w->req;
    w->responded = true;
    u->writer = NULL;
    if (t->expiration_ms && u->state == P2P_TUS_UP_ACTIVE)
        u->expires_s = (uint64_t)time(NULL) + t->expiration_ms / 1000;
    bool early = !w->ended; /* the body is still coming: close instead of draining */
    if (early || w->gone)
        p2p_httpd_close_after(req);
    if (w->is_post) {
        p2p_httpd_add_headerf(req, "Location", "%s%s", t->base_path, u->id);
    }
    add_offset(req, u->offset);
    add_expires(t, req, u);
    add_finished(t, req, u);
    if (j->err != 0 && j->err != UV_ECANCELED) {
        tus_error(req, 500, "ERR_INTERNAL_SERVER_ERROR", "could not store the upload");
    } else if (w->io_err) {
        tus_error(req, 500, "ERR_INTERNAL_SERVER_ERROR", "could not write the upload");
    } else if (w->bad_trailer) {
        tus_error(req, 400, "ERR_INVALID_CHECKSUM", "missing or malformed checksum trailer");
    } else if (w->staged && j->commit && !j->ck_ok) {
        tus_error(req, 460, "ERR_CHECKSUM_MISMATCH", "checksum mismatch");
    } else if (w->overflow) {
        tus_error(req, 413, "ERR_UPLOAD_SIZE_EXCEEDED", "body exceeds the upload length");
    } else if (w->stopping && w->stop_why == P2P_TUS_STOP_SHUTDOWN) {
        tus_error(req, 503, "ERR_SERVER_SHUTDOWN", "server is shutting down");
    } else if (w->ended && w->end_status < 0) {
        tus_error(req, 400, "ERR_UNEXPECTED_EOF", "body cut short");
    } else if (w->is_post) {
        p2p_httpd_respond(req, 201, NULL, NULL, 0);
    } else {
        /* completed, or pre-empted by a newer request: 204 with what is stored */
        p2p_httpd_respond(req, 204, NULL, NULL, 0);
    }
    writer_free(w);
    lock_release(u);
    check_shutdown(t);
}

/* Takes req's body into u (lock held, headers validated). */
static void writer_start(struct p2p_tus *t, struct p2p_tus_upload *u, struct p2p_httpd_req *req,
                         bool is_post, uint64_t limit, enum p2p_tus_algo algo,
                         const uint8_t *want, size_t want_len, bool trailer)
{
    struct p2p_tus_writer *w = p2p_xcalloc(1, sizeof *w);
    w->t = t;
    w->u = u;
    w->req = req;
    w->is_post = is_post;
    w->limit = limit;
    w->stage_fd = -1;
    w->seq_off = 0;
    if (algo != P2P_TUS_CK_NONE || trailer) {
        /* With a trailer the algorithm is known only at the end: hash with all three. */
        w->staged = true;
        w->ck_algo = algo;
        w->ck_trailer = trailer;
        if (want) {
            memcpy(w->ck_want, want, want_len);
            w->ck_len = want_len;
        }
        for (int a = P2P_TUS_CK_SHA1; a <= P2P_TUS_CK_SHA256; a++) {
            if (!trailer && a != (int)algo)
                continue;
            w->ck[a] = EVP_MD_CTX_new();
            if (!w->ck[a] || EVP_DigestInit_ex(w->ck[a], p2p_tus_algo_md(a), NULL) != 1)
                abort();
        }
    }
    if (!w->staged)
        w->seq_off = u->offset;
    w->next = t->writers;
    if (t->writers)
        t->writers->prev = w;
    t->writers = w;
    t->nwriters++;
    u->writer = w;
    if (t->expiration_ms && u->state == P2P_TUS_UP_ACTIVE)
        u->expires_s = (uint64_t)time(NULL) + t->expiration_ms / 1000;
    p2p_httpd_stream_body(req, writer_on_data, writer_on_end, w);
}

/* ------------------------------------------------------------------------------------------ */
/* HEAD, PATCH, DELETE (lock held) */

static void do_head(struct p2p_tus *t, struct p2p_tus_upload *u, struct p2p_httpd_req *req)
{
    p2p_httpd_add_header(req, "Cache-Control", "no-store");
    if (!u->concatenating)
        add_offset(req, u->offset);
    add_length(req, u);
    if (u->metadata)
        p2p_httpd_add_header(req, "Upload-Metadata", u->metadata);
    if (u->concat)
        p2p_httpd_add_header(req, "Upload-Concat", u->concat);
    add_expires(t, req, u);
    add_finished(t, req, u);
    p2p_httpd_respond(req, 200, NULL, NULL, 0);
    lock_release(u);
}

static void do_patch(struct p2p_tus *t, struct p2p_tus_upload *u, struct p2p_httpd_req *req)
{
    uint64_t off = 0, newlen = 0;
    const char *v = p2p_httpd_header(req, "Upload-Offset");
    p2p_parse_u64(v, strlen(v), &off); /* validated before the lock */
    const char *lv = p2p_httpd_header(req, "Upload-Length");
    int64_t cl = p2p_httpd_content_length(req);

    if (u->final) {
        tus_error_close(req, 403, "ERR_MODIFY_FINAL", "a final upload cannot be patched");
        goto out;
    }
    if (off != u->offset) {
        /* 409 without touching the upload; Upload-Offset as the 1.1 draft suggests. The body
         * is not drained: the connection closes (tusd #1371). */
        add_offset(req, u->offset);
        tus_error_close(req, 409, "ERR_MISMATCHED_OFFSET", "Upload-Offset does not match");
        goto out;
    }
    /* A length declared here (creation-defer-length) takes effect only once every check
     * passed: a rejected PATCH must not modify the upload (in memory or on disk). */
    bool declare = false;
    if (lv) {
        p2p_parse_u64(lv, strlen(lv), &newlen);
        if (u->deferred) {
            if (newlen < u->offset) {
                tus_error_close(req, 400, "ERR_INVALID_UPLOAD_LENGTH",
                                "Upload-Length is below the offset");
                goto out;
            }
            if ((t->max_size && newlen > t->max_size) || newlen > P2P_SEED_MAX_LENGTH) {
                tus_error_close(req, 413, "ERR_MAX_SIZE_EXCEEDED", "upload is too large");
                goto out;
            }
            declare = true;
        } else if (newlen != u->length) {
            tus_error_close(req, 400, "ERR_INVALID_UPLOAD_LENGTH",
                            "Upload-Length cannot change");
            goto out;
        }
    }
    bool deferred = u->deferred && !declare;
    uint64_t cap = !deferred ? (declare ? newlen : u->length)
                   : t->max_size ? t->max_size
                                 : P2P_SEED_MAX_LENGTH;
    /* cap < offset only for a deferred upload whose tus.max_size shrank across a restart */
    uint64_t limit = cap > u->offset ? cap - u->offset : 0;
    if (cl >= 0 && (uint64_t)cl > limit) {
        tus_error_close(req, 413, !deferred ? "ERR_UPLOAD_SIZE_EXCEEDED" : "ERR_MAX_SIZE_EXCEEDED",
                        "body exceeds the upload length");
        goto out;
    }
    if (t->nwriters + t->pending_bodies >= P2P_TUS_MAX_WRITERS) {
        p2p_httpd_add_header(req, "Retry-After", "1");
        tus_error_close(req, 503, "ERR_SERVER_BUSY", "too many uploads in progress");
        goto out;
    }
    if (declare) {
        u->deferred = false;
        u->length = newlen;
        u->info_dirty = true;
        if (!u->partial)
            u->piece_len = p2p_seed_default_piece_length(newlen);
    }
    enum p2p_tus_algo algo = P2P_TUS_CK_NONE;
    uint8_t want[64];
    size_t wlen = 0;
    bool trailer = false;
    const char *ck = p2p_httpd_header(req, "Upload-Checksum");
    if (ck) {
        p2p_tus_checksum_parse(ck, &algo, want, &wlen); /* validated before the lock */
    } else {
        /* checksum-trailer: the chunk is staged when the request announces the trailer
         * (RFC 9110 "Trailer: Upload-Checksum"); an unannounced one cannot be honoured. */
        const char *tr = p2p_httpd_header(req, "Trailer");
        if (tr && strcasestr(tr, "upload-checksum") && p2p_httpd_is_chunked(req))
            trailer = true;
    }
    if (limit == 0 && cl <= 0 && !p2p_httpd_is_chunked(req) && !u->info_dirty) {
        /* nothing to write (an empty PATCH, e.g. on a complete upload) */
        add_offset(req, u->offset);
        add_expires(t, req, u);
        add_finished(t, req, u);
        p2p_httpd_respond(req, 204, NULL, NULL, 0);
        goto out;
    }
    writer_start(t, u, req, false, limit, algo, ck ? want : NULL, wlen, trailer);
    return;
out:
    lock_release(u);
}

static void delete_after(struct p2p_tus_job *j)
{
    struct p2p_tus_upload *u = j->u;
    struct p2p_httpd_req *req = j->req;
    if (j->err != 0) {
        tus_error(req, 500, "ERR_INTERNAL_SERVER_ERROR", "could not delete the upload");
    } else {
        p2p_tus_table_remove(j->t, u);
        p2p_httpd_respond(req, 204, NULL, NULL, 0);
    }
    lock_release(u);
}

static void do_delete(struct p2p_tus *t, struct p2p_tus_upload *u, struct p2p_httpd_req *req)
{
    if (u->refs_parts > 0) {
        tus_error_close(req, 423, "ERR_UPLOAD_LOCKED", "upload is being concatenated");
        lock_release(u);
        return;
    }
    struct p2p_tus_job *j = p2p_tus_job_new(t, u, p2p_tus_delete_work, delete_after);
    j->req = req;
    p2p_tus_job_submit(j);
}

/* Complete but not finished: an earlier finish failed (disk full, complete_dir unwritable). */
static bool needs_finish(const struct p2p_tus_upload *u)
{
    return u->state == P2P_TUS_UP_ACTIVE && !u->partial && !u->final && !u->deferred &&
           u->offset == u->length && !u->info_hash[0];
}

static void refinish_aborted(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_tus_job *j = ud;
    (void)req;
    j->aborted = true;
}

static void refinish_after(struct p2p_tus_job *j)
{
    struct p2p_tus_upload *u = j->u;
    struct p2p_httpd_req *req = j->req;
    if (!j->aborted)
        p2p_httpd_on_abort(req, NULL, NULL);
    if (j->finished)
        p2p_tus_finished(j->t, u, j);
    if (j->err != 0 || !j->finished || j->aborted) {
        /* 5xx: clients retry (a 4xx on HEAD would make tus-js-client start over) */
        tus_error_close(req, 500, "ERR_INTERNAL_SERVER_ERROR",
                        "upload complete but not yet seeded; retry");
        lock_release(u);
        return;
    }
    dispatch_locked(u, req, (enum tus_method)j->method);
}

static void dispatch_locked(struct p2p_tus_upload *u, struct p2p_httpd_req *req, enum tus_method m)
{
    struct p2p_tus *t = u->t;
    if (t->stopping) {
        tus_error_close(req, 503, "ERR_SERVER_SHUTDOWN", "server is shutting down");
        lock_release(u);
        return;
    }
    if (!u->in_table || u->state == P2P_TUS_UP_GONE) {
        respond_gone(req, u);
        lock_release(u);
        return;
    }
    if (m != M_DELETE && needs_finish(u)) {
        /* retry the finish before answering, so a client that sees offset == length also
         * gets a seeded file (and its P2P headers) */
        struct p2p_tus_job *j = p2p_tus_job_new(t, u, p2p_tus_finish_work, refinish_after);
        j->req = req;
        j->method = (int)m;
        p2p_httpd_on_abort(req, refinish_aborted, j);
        p2p_tus_job_submit(j);
        return;
    }
    if (m == M_HEAD)
        do_head(t, u, req);
    else if (m == M_PATCH)
        do_patch(t, u, req);
    else
        do_delete(t, u, req);
}

/* ------------------------------------------------------------------------------------------ */
/* POST: creation, creation-with-upload, concatenation, instant upload */

struct p2p_tus_create {
    struct p2p_httpd_req *req;
    bool has_body;
    bool aborted;                 /* the client went away while the job ran */
    enum p2p_tus_algo algo;
    uint8_t want[64];
    size_t wlen;
};

static void create_respond(struct p2p_tus *t, struct p2p_tus_upload *u, struct p2p_httpd_req *req)
{
    p2p_httpd_add_headerf(req, "Location", "%s%s", t->base_path, u->id);
    add_offset(req, u->offset);
    add_expires(t, req, u);
    add_finished(t, req, u);
    p2p_httpd_respond(req, 201, NULL, NULL, 0);
}

/* The connection closed while a creation job ran: remember it, so no writer is started on a
 * request whose body will never come (it would hold a writer slot and the lock for good). */
static void create_aborted(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_tus_create *c = ud;
    (void)req;
    c->aborted = true;
}

/* Ends the creation job's hold on its request (abort callback, reserved writer slot). */
static void create_detach(struct p2p_tus *t, struct p2p_tus_create *c)
{
    if (!c->aborted)
        p2p_httpd_on_abort(c->req, NULL, NULL);
    if (c->has_body)
        t->pending_bodies--;
}

static void create_after(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    struct p2p_tus_create *c = j->create;
    struct p2p_httpd_req *req = c->req;
    create_detach(t, c);
    for (size_t i = 0; i < j->nparts; i++) {
        j->parts[i]->refs_parts--;
        p2p_tus_up_unref(j->parts[i]);
    }
    u->concatenating = false;
    if (u->final && j->err == 0)
        u->offset = u->length;
    if (j->err != 0) {
        p2p_warn("tus: creating upload %s failed: %s", u->id, uv_strerror(j->err));
        p2p_tus_table_remove(t, u);
        tus_error_close(req, 500, "ERR_INTERNAL_SERVER_ERROR", "could not create the upload");
        lock_release(u);
        goto out;
    }
    if (j->finished)
        p2p_tus_finished(t, u, j);
    if (c->has_body && !t->stopping && !c->aborted) {
        uint64_t limit = !u->deferred ? u->length
                         : t->max_size ? t->max_size
                                       : P2P_SEED_MAX_LENGTH;
        writer_start(t, u, req, true, limit, c->algo, c->algo ? c->want : NULL, c->wlen, false);
        goto out;
    }
    create_respond(t, u, req);
    lock_release(u);
out:
    free(c);
}

static void instant_after(struct p2p_tus_job *j)
{
    struct p2p_tus *t = j->t;
    struct p2p_tus_upload *u = j->u;
    if (j->instant_failed) {
        /* the file went away: this became an ordinary creation */
        create_after(j);
        return;
    }
    struct p2p_httpd_req *req = j->create->req;
    create_detach(t, j->create);
    free(j->create);
    if (j->err == 0) {
        p2p_tus_up_set_state(u, P2P_TUS_UP_FINISHED);
        u->offset = u->length;
        u->expires_s = (uint64_t)time(NULL) + t->finished_keep_s;
        if (u->expires_s < t->next_expire_s)
            t->next_expire_s = u->expires_s;
    }
    if (j->err != 0) {
        p2p_tus_table_remove(t, u);
        tus_error(req, 500, "ERR_INTERNAL_SERVER_ERROR", "could not create the upload");
    } else {
        p2p_info("tus: instant upload %s -> %s (%s)", u->id, u->info_hash, u->file_name);
        create_respond(t, u, req);
    }
    lock_release(u);
}

static int header_once(struct p2p_httpd_req *req, const char *name, const char **out)
{
    int n = p2p_httpd_header_count(req, name);
    *out = n == 1 ? p2p_httpd_header(req, name) : NULL;
    return n > 1 ? -1 : 0;
}

static void do_create(struct p2p_tus *t, struct p2p_httpd_req *req)
{
    const char *ul, *dl, *md, *cc, *ct, *ck;
    struct p2p_tus_meta meta = {.n = 0};
    char(*ids)[P2P_TUS_ID_LEN + 1] = NULL;
    size_t nids = 0;
    bool partial = false, final = false;
    struct p2p_tus_upload **parts = NULL;

    if (header_once(req, "Upload-Length", &ul) || header_once(req, "Upload-Defer-Length", &dl) ||
        header_once(req, "Upload-Metadata", &md) || header_once(req, "Upload-Concat", &cc) ||
        header_once(req, "Content-Type", &ct) || header_once(req, "Upload-Checksum", &ck)) {
        tus_error_close(req, 400, "ERR_DUPLICATE_HEADER", "a TUS header is repeated");
        goto out;
    }
    if (cc) {
        if (p2p_tus_concat_parse(cc, t->base_path, &partial, &ids, &nids) < 0) {
            tus_error_close(req, 400, "ERR_INVALID_CONCAT", "invalid Upload-Concat");
            goto out;
        }
        final = !partial;
    }
    uint64_t length = 0;
    bool deferred = false;
    if (final) {
        if (ul || dl) {
            tus_error_close(req, 400, "ERR_INVALID_UPLOAD_LENGTH",
                            "a final upload takes no Upload-Length");
            goto out;
        }
    } else if (ul && dl) {
        tus_error_close(req, 400, "ERR_AMBIGUOUS_UPLOAD_LENGTH",
                        "Upload-Length and Upload-Defer-Length are both set");
        goto out;
    } else if (dl) {
        if (strcmp(dl, "1") != 0) {
            tus_error_close(req, 400, "ERR_INVALID_UPLOAD_LENGTH_DEFER",
                            "Upload-Defer-Length must be 1");
            goto out;
        }
        deferred = true;
    } else if (!ul) {
        tus_error_close(req, 400, "ERR_INVALID_UPLOAD_LENGTH",
                        "Upload-Length or Upload-Defer-Length is required");
        goto out;
    } else if (p2p_parse_u64(ul, strlen(ul), &length) < 0 || length > INT64_MAX) {
        tus_error_close(req, 400, "ERR_INVALID_UPLOAD_LENGTH", "invalid Upload-Length");
        goto out;
    }
    if ((t->max_size && length > t->max_size) || length > P2P_SEED_MAX_LENGTH) {
        tus_error_close(req, 413, "ERR_MAX_SIZE_EXCEEDED", "upload is too large");
        goto out;
    }
    if (md) {
        const char *why = NULL;
        if (strlen(md) > P2P_TUS_MAX_META_LEN) {
            tus_error_close(req, 400, "ERR_INVALID_METADATA", "Upload-Metadata is too long");
            goto out;
        }
        if (p2p_tus_meta_parse(md, &meta, &why) < 0) {
            tus_error_close(req, 400, "ERR_INVALID_METADATA", why);
            goto out;
        }
    }
    size_t shalen = 0;
    const uint8_t *sha = p2p_tus_meta_get(&meta, "sha256", &shalen);
    if (sha && shalen != 32) {
        tus_error_close(req, 400, "ERR_INVALID_METADATA", "sha256 must be 32 bytes");
        goto out;
    }
    bool has_body = req_has_body(req);
    if (has_body && !p2p_tus_ct_ok(ct)) {
        tus_error_close(req, 415, "ERR_INVALID_CONTENT_TYPE",
                        "a body needs Content-Type: " P2P_TUS_CT);
        goto out;
    }
    if (has_body && final) {
        tus_error_close(req, 403, "ERR_MODIFY_FINAL", "a final upload takes no body");
        goto out;
    }
    int64_t cl = p2p_httpd_content_length(req);
    if (cl > 0 && !deferred && (uint64_t)cl > length) {
        tus_error_close(req, 413, "ERR_UPLOAD_SIZE_EXCEEDED", "body exceeds the upload length");
        goto out;
    }
    enum p2p_tus_algo algo = P2P_TUS_CK_NONE;
    uint8_t want[64];
    size_t wlen = 0;
    if (ck && has_body) {
        int rc = p2p_tus_checksum_parse(ck, &algo, want, &wlen);
        if (rc < 0) {
            tus_error_close(req, 400,
                            rc == -2 ? "ERR_UNSUPPORTED_CHECKSUM" : "ERR_INVALID_CHECKSUM",
                            rc == -2 ? "unsupported checksum algorithm"
                                     : "invalid Upload-Checksum");
            goto out;
        }
    }
    /* Caps on what clients can make the node hold: records, unfinished uploads (each may grow
     * a file in tus.dir), metadata kept in memory, bodies streaming at once (2.5 MiB each;
     * creations whose writer is not started yet count too). An upload that finishes at once
     * (Upload-Length 0, a final, an instant upload) is not unfinished. */
    size_t cost = (md ? strlen(md) : 0) + (cc ? strlen(cc) : 0) + nids * sizeof *ids;
    bool unfinished = partial || (!final && (deferred || length > 0));
    if (t->nuploads >= P2P_TUS_MAX_UPLOADS ||
        (unfinished && t->nunfinished >= t->max_unfinished) ||
        t->meta_bytes + cost > t->meta_budget ||
        (has_body && t->nwriters + t->pending_bodies >= P2P_TUS_MAX_WRITERS)) {
        p2p_httpd_add_header(req, "Retry-After", "1");
        tus_error_close(req, 503, "ERR_SERVER_BUSY", "too many uploads");
        goto out;
    }
    if (final) {
        parts = p2p_xcalloc(nids, sizeof *parts);
        for (size_t i = 0; i < nids; i++) {
            struct p2p_tus_upload *p = find(t, ids[i]);
            const char *err = NULL;
            if (!p || p->state == P2P_TUS_UP_GONE)
                err = "unknown partial upload";
            else if (!p->partial)
                err = "not a partial upload";
            else if (p->deferred || p->offset != p->length || p->locked)
                err = "partial upload not finished";
            if (err) {
                tus_error_close(req, 400, p && p->partial ? "ERR_UPLOAD_NOT_FINISHED"
                                                          : "ERR_INVALID_CONCAT", err);
                goto out;
            }
            if (length + p->length < length || length + p->length > P2P_SEED_MAX_LENGTH ||
                (t->max_size && length + p->length > t->max_size)) {
                tus_error_close(req, 413, "ERR_MAX_SIZE_EXCEEDED", "upload is too large");
                goto out;
            }
            length += p->length;
            parts[i] = p;
        }
    }

    struct p2p_tus_upload *u = p2p_tus_up_new(t, NULL);
    u->length = length;
    u->deferred = deferred;
    u->partial = partial;
    u->final = final;
    u->metadata = md ? p2p_xstrdup(md) : NULL;
    u->concat = cc ? p2p_xstrdup(cc) : NULL;
    u->created_s = (uint64_t)time(NULL);
    if (t->expiration_ms && !final)
        u->expires_s = u->created_s + t->expiration_ms / 1000;
    size_t fnlen = 0;
    const uint8_t *fn = p2p_tus_meta_get(&meta, "filename", &fnlen);
    u->want_name = fn ? p2p_tus_file_name(fn, fnlen) : p2p_xstrdup(u->id);
    if (!partial && !deferred)
        u->piece_len = p2p_seed_default_piece_length(length);
    u->locked = true;
    p2p_tus_table_add(t, u);

    struct p2p_tus_create *c = p2p_xcalloc(1, sizeof *c);
    c->req = req;
    c->has_body = has_body;
    c->algo = algo;
    memcpy(c->want, want, sizeof want);
    c->wlen = wlen;
    if (has_body)
        t->pending_bodies++;
    p2p_httpd_on_abort(req, create_aborted, c);

    /* Instant upload: the content is already here. */
    if (sha && !partial && !final && !deferred && !has_body) {
        const struct p2p_tus_known *k = p2p_tus_known_find(t, sha);
        if (k && k->length == length) {
            struct p2p_tus_job *j = p2p_tus_job_new(t, u, p2p_tus_instant_work, instant_after);
            j->create = c;
            p2p_tus_up_set_finished(u, k->info_hash, k->file_name, k->data_path, sha);
            p2p_tus_job_submit(j);
            goto out;
        }
        const struct p2p_seed *s = t->lookup ? t->lookup(t->ud, sha) : NULL;
        if (s && s->length == length && s->file_name) {
            struct p2p_tus_job *j = p2p_tus_job_new(t, u, p2p_tus_instant_work, instant_after);
            j->create = c;
            char *path = p2p_path_join(t->complete_dir, s->file_name);
            p2p_tus_up_set_finished(u, s->info_hash, s->file_name, path ? path : "", sha);
            free(path);
            j->skip_stat = true;
            p2p_tus_job_submit(j);
            goto out;
        }
    }
    struct p2p_tus_job *j = p2p_tus_job_new(t, u, final ? p2p_tus_concat_work : p2p_tus_create_work,
                                        create_after);
    j->create = c;
    if (final) {
        u->concatenating = true;
        u->nparts = nids;
        u->parts = ids;
        ids = NULL;
        j->parts = parts;
        j->nparts = nids;
        for (size_t i = 0; i < nids; i++) {
            parts[i]->refs++;
            parts[i]->refs_parts++;
        }
        parts = NULL;
    }
    p2p_tus_job_submit(j);
out:
    p2p_tus_meta_cleanup(&meta);
    free(ids);
    free(parts);
}

/* ------------------------------------------------------------------------------------------ */
/* dispatch */

static enum tus_method method_of(const char *m)
{
    static const struct {
        const char *name;
        enum tus_method m;
    } tab[] = {{"OPTIONS", M_OPTIONS}, {"HEAD", M_HEAD}, {"GET", M_GET},
               {"POST", M_POST},       {"PATCH", M_PATCH}, {"DELETE", M_DELETE}};
    for (size_t i = 0; i < P2P_ARRAY_LEN(tab); i++)
        if (strcasecmp(m, tab[i].name) == 0)
            return tab[i].m;
    return M_OTHER;
}

static bool auth_ok(struct p2p_tus *t, struct p2p_httpd_req *req)
{
    if (!t->auth_token)
        return true;
    const char *h = p2p_httpd_header(req, "Authorization");
    if (!h || p2p_httpd_header_count(req, "Authorization") != 1 || strncasecmp(h, "Bearer ", 7))
        return false;
    h += 7;
    size_t n = strlen(h), m = strlen(t->auth_token);
    return n == m && CRYPTO_memcmp(h, t->auth_token, n) == 0;
}

static void do_options(struct p2p_tus *t, struct p2p_httpd_req *req)
{
    p2p_httpd_add_header(req, "Tus-Version", P2P_TUS_VERSION);
    p2p_httpd_add_header(req, "Tus-Extension", P2P_TUS_EXTENSIONS);
    p2p_httpd_add_header(req, "Tus-Checksum-Algorithm", P2P_TUS_CK_ALGOS);
    if (t->max_size)
        p2p_httpd_add_headerf(req, "Tus-Max-Size", "%llu", (unsigned long long)t->max_size);
    /* 200, not 204: some browsers reject a 204 preflight (tusd does the same) */
    if (req_has_body(req))
        p2p_httpd_close_after(req);
    p2p_httpd_respond(req, 200, NULL, NULL, 0);
}

void p2p_tus_handle(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_tus *t = ud;
    enum tus_method m = method_of(p2p_httpd_method(req));
    const char *ov = p2p_httpd_header(req, "X-HTTP-Method-Override");
    int novr = p2p_httpd_header_count(req, "X-HTTP-Method-Override");
    bool bad_override = false;
    if (ov) {
        /* The spec says MUST honour, for any real method (tusd only honours it on POST). */
        enum tus_method om = method_of(ov);
        if (novr != 1 || om == M_OTHER)
            bad_override = true;
        else
            m = om;
    }
    add_common(t, req, m == M_OPTIONS);
    if (t->stopping) {
        tus_error_close(req, 503, "ERR_SERVER_SHUTDOWN", "server is shutting down");
        return;
    }
    if (bad_override) {
        tus_error_close(req, 400, "ERR_INVALID_METHOD_OVERRIDE", "bad X-HTTP-Method-Override");
        return;
    }
    const char *path = p2p_httpd_path(req);
    size_t blen = strlen(t->base_path), plen = strlen(path);
    bool collection = strcmp(path, t->base_path) == 0 ||
                      (plen == blen - 1 && strncmp(path, t->base_path, plen) == 0);
    const char *id = NULL;
    if (!collection) {
        if (plen <= blen || strncmp(path, t->base_path, blen) != 0 ||
            !p2p_tus_id_valid(path + blen, plen - blen)) {
            if (m == M_OPTIONS) {
                do_options(t, req);
                return;
            }
            tus_error_close(req, 404, "ERR_UPLOAD_NOT_FOUND", "upload not found");
            return;
        }
        id = path + blen;
    }
    /* OPTIONS is exempt from auth (a CORS preflight never carries credentials) and from the
     * version check (the client SHOULD NOT send Tus-Resumable on it). */
    if (m == M_OPTIONS) {
        do_options(t, req);
        return;
    }
    if (!auth_ok(t, req)) {
        p2p_httpd_add_header(req, "WWW-Authenticate", "Bearer");
        tus_error_close(req, 401, "ERR_UNAUTHORIZED", "missing or wrong bearer token");
        return;
    }
    const char *ver = p2p_httpd_header(req, "Tus-Resumable");
    if (m != M_GET && (!ver || p2p_httpd_header_count(req, "Tus-Resumable") != 1 ||
                       strcmp(ver, P2P_TUS_VERSION) != 0)) {
        p2p_httpd_add_header(req, "Tus-Version", P2P_TUS_VERSION);
        tus_error_close(req, 412, "ERR_UNSUPPORTED_VERSION", "Tus-Resumable must be 1.0.0");
        return;
    }
    if (collection) {
        if (m == M_POST) {
            do_create(t, req);
            return;
        }
        p2p_httpd_add_header(req, "Allow", "POST, OPTIONS");
        tus_error_close(req, 405, "ERR_METHOD_NOT_ALLOWED", "method not allowed here");
        return;
    }
    if (m != M_HEAD && m != M_PATCH && m != M_DELETE) {
        p2p_httpd_add_header(req, "Allow", "HEAD, PATCH, DELETE, OPTIONS");
        tus_error_close(req, 405, "ERR_METHOD_NOT_ALLOWED", "method not allowed here");
        return;
    }
    if (m == M_PATCH) {
        /* Header checks that need no upload state come first, so a bad request never waits
         * for the lock (and never gets 100 Continue). */
        const char *ct, *off, *len, *ck;
        if (header_once(req, "Content-Type", &ct) || header_once(req, "Upload-Offset", &off) ||
            header_once(req, "Upload-Length", &len) || header_once(req, "Upload-Checksum", &ck)) {
            tus_error_close(req, 400, "ERR_DUPLICATE_HEADER", "a TUS header is repeated");
            return;
        }
        if (!p2p_tus_ct_ok(ct)) {
            tus_error_close(req, 415, "ERR_INVALID_CONTENT_TYPE",
                            "Content-Type must be " P2P_TUS_CT);
            return;
        }
        uint64_t v;
        if (!off || p2p_parse_u64(off, strlen(off), &v) < 0 || v > INT64_MAX) {
            tus_error_close(req, 400, "ERR_INVALID_OFFSET", "missing or invalid Upload-Offset");
            return;
        }
        if (len && (p2p_parse_u64(len, strlen(len), &v) < 0 || v > INT64_MAX)) {
            tus_error_close(req, 400, "ERR_INVALID_UPLOAD_LENGTH", "invalid Upload-Length");
            return;
        }
        if (ck) {
            enum p2p_tus_algo a;
            uint8_t d[64];
            size_t dl;
            int rc = p2p_tus_checksum_parse(ck, &a, d, &dl);
            if (rc < 0) {
                tus_error_close(req, 400,
                                rc == -2 ? "ERR_UNSUPPORTED_CHECKSUM" : "ERR_INVALID_CHECKSUM",
                                rc == -2 ? "unsupported checksum algorithm"
                                         : "invalid Upload-Checksum");
                return;
            }
        }
    }
    struct p2p_tus_upload *u = find(t, id);
    if (!u || u->state == P2P_TUS_UP_GONE) {
        respond_gone(req, u);
        return;
    }
    lock_acquire(u, req, m);
}

/* ------------------------------------------------------------------------------------------ */
/* finish notifications and the hook */

struct p2p_tus_hook {
    struct p2p_tus *t;
    char *body;
    unsigned tries;
    uv_timer_t timer;
    bool timer_init;
    struct p2p_httpc_call *call;
    struct p2p_tus_hook *prev, *next;
};

static void hook_closed(uv_handle_t *h)
{
    struct p2p_tus_hook *k = h->data;
    struct p2p_tus *t = k->t;
    free(k->body);
    free(k);
    t->closing--;
    check_shutdown(t);
}

static void hook_free(struct p2p_tus_hook *k)
{
    struct p2p_tus *t = k->t;
    if (k->prev)
        k->prev->next = k->next;
    else
        t->hooks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    t->nhooks--;
    if (k->timer_init) {
        if (uv_is_closing((uv_handle_t *)&k->timer)) {
            /* the host already closed every handle (forced stop): freed by p2p_tus_free */
            k->next = t->zombies;
            t->zombies = k;
            return;
        }
        t->closing++;
        uv_close((uv_handle_t *)&k->timer, hook_closed);
        return;
    }
    free(k->body);
    free(k);
}

void p2p_tus_hooks_free(struct p2p_tus *t)
{
    while (t->zombies) {
        struct p2p_tus_hook *k = t->zombies;
        t->zombies = k->next;
        free(k->body);
        free(k);
    }
}

static void hook_send(struct p2p_tus_hook *k);

static void hook_timer(uv_timer_t *h)
{
    hook_send(h->data);
}

static void hook_done(const struct p2p_httpc_resp *resp, void *ud)
{
    struct p2p_tus_hook *k = ud;
    struct p2p_tus *t = k->t;
    k->call = NULL;
    if (resp->err == 0 && resp->status >= 200 && resp->status < 300) {
        hook_free(k);
        return;
    }
    if (++k->tries >= P2P_TUS_HOOK_TRIES || t->stopping) {
        p2p_warn("tus: hook %s failed after %u tries: %s", t->hook_url, k->tries,
                 resp->err ? resp->errmsg : "bad status");
        hook_free(k);
        return;
    }
    if (!k->timer_init) {
        uv_timer_init(t->loop, &k->timer);
        k->timer.data = k;
        k->timer_init = true;
    }
    uv_timer_start(&k->timer, hook_timer, 1000ull << (k->tries - 1), 0);
}

static void hook_send(struct p2p_tus_hook *k)
{
    struct p2p_tus *t = k->t;
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    struct p2p_httpc_opts o = {
        .method = "POST",
        .url = t->hook_url,
        .headers = headers,
        .body = k->body,
        .body_len = strlen(k->body),
        .max_body = 64 * 1024,
        .timeout_ms = 15000,
    };
    k->call = p2p_httpc_request(t->httpc, &o, hook_done, k);
}

static void hook_post(struct p2p_tus *t, struct p2p_tus_upload *u, const char *seed_url)
{
    if (!t->hook_url || !t->httpc || t->stopping)
        return;
    if (t->nhooks >= P2P_TUS_MAX_HOOKS) {
        p2p_warn("tus: too many hook calls pending; dropping the one for %s", u->info_hash);
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "infoHash", u->info_hash, "fileName",
                          u->file_name, "length", (json_int_t)u->length, "seedUrl", seed_url);
    struct p2p_tus_hook *k = p2p_xcalloc(1, sizeof *k);
    k->t = t;
    k->body = p2p_json_dump(o, NULL);
    json_decref(o);
    k->next = t->hooks;
    if (t->hooks)
        t->hooks->prev = k;
    t->hooks = k;
    t->nhooks++;
    hook_send(k);
}

void p2p_tus_finished(struct p2p_tus *t, struct p2p_tus_upload *u, struct p2p_tus_job *j)
{
    if (u->partial)
        return;
    p2p_tus_up_set_state(u, P2P_TUS_UP_FINISHED);
    /* the record (HEAD answers) is kept a while; then only the file in complete_dir remains */
    u->expires_s = (uint64_t)time(NULL) + t->finished_keep_s;
    if (u->expires_s < t->next_expire_s)
        t->next_expire_s = u->expires_s;
    t->stats.finished++;
    p2p_info("tus: upload %s finished: %s (%llu bytes) infoHash %s", u->id, u->file_name,
             (unsigned long long)u->length, u->info_hash);
    if (t->on_finished && j->seed.file_name)
        t->on_finished(t->ud, &j->seed, u->data_path);
    char *seed_url = t->public_url ? p2p_xasprintf("%s/v2/seed/%s", t->public_url, u->info_hash)
                                   : p2p_xasprintf("/v2/seed/%s", u->info_hash);
    hook_post(t, u, seed_url);
    free(seed_url);
    p2p_tus_digest_queue(t, u);
}

/* ------------------------------------------------------------------------------------------ */
/* expiration and the tick */

static void expire_after(struct p2p_tus_job *j)
{
    struct p2p_tus_upload *u = j->u;
    if (j->err == 0) {
        if (j->purge) {
            p2p_tus_table_remove(j->t, u);
        } else {
            p2p_tus_up_set_state(u, P2P_TUS_UP_GONE);
            u->gone_s = (uint64_t)time(NULL);
            uint64_t purge_at = u->gone_s + j->t->expiration_ms / 1000;
            if (purge_at < j->t->next_expire_s)
                j->t->next_expire_s = purge_at;
            j->t->stats.expired++;
            p2p_info("tus: upload %s expired", u->id);
        }
    }
    lock_release(u);
}

static void expire_tick(struct p2p_tus *t, uint64_t now_s)
{
    uint64_t exp_s = t->expiration_ms / 1000;
    if (now_s < t->next_expire_s)
        return;
    uint64_t next = UINT64_MAX;
    for (size_t b = 0; b < P2P_TUS_BUCKETS; b++) {
        for (struct p2p_tus_upload *u = t->table[b]; u; u = u->hnext) {
            uint64_t due;
            bool purge = false;
            if (u->state == P2P_TUS_UP_GONE) {
                due = u->gone_s + exp_s;
                purge = true;
            } else if (u->state == P2P_TUS_UP_ACTIVE) {
                due = u->expires_s;
            } else {
                /* a finished upload: its record (.info) goes, the swarm file stays */
                due = u->expires_s;
                purge = true;
            }
            if (!due)
                continue;
            if (due > now_s || u->locked || u->refs_parts > 0 || u->writer) {
                if (due < next)
                    next = due > now_s ? due : now_s + 1;
                continue;
            }
            u->locked = true;
            struct p2p_tus_job *j = p2p_tus_job_new(t, u, p2p_tus_expire_work, expire_after);
            j->purge = purge;
            p2p_tus_job_submit(j);
        }
    }
    t->next_expire_s = next;
}

static void tick_cb(uv_timer_t *h)
{
    struct p2p_tus *t = h->data;
    waiters_tick(t, p2p_now_ms());
    expire_tick(t, (uint64_t)time(NULL));
}

/* ------------------------------------------------------------------------------------------ */
/* life cycle */

void p2p_tus_set_public_url(struct p2p_tus *t, const char *public_url)
{
    free(t->public_url);
    t->public_url = NULL;
    if (public_url && public_url[0]) {
        size_t ul = strlen(public_url);
        while (ul > 0 && public_url[ul - 1] == '/')
            ul--;
        t->public_url = p2p_xstrndup(public_url, ul);
    }
}

size_t p2p_tus_routes(struct p2p_tus *t, struct p2p_httpd_route *out, size_t max)
{
    size_t n = 0;
    if (n < max)
        out[n++] = (struct p2p_httpd_route){.method = NULL, .path = t->route_any,
                                            .on_head = p2p_tus_handle, .ud = t};
    if (n < max)
        out[n++] = (struct p2p_httpd_route){.method = NULL, .path = t->route_root,
                                            .on_head = p2p_tus_handle, .ud = t};
    return n;
}

void p2p_tus_get_stats(const struct p2p_tus *t, struct p2p_tus_stats *out)
{
    *out = t->stats;
    out->uploads = t->nuploads;
    out->active_writers = t->nwriters;
}

struct p2p_tus *p2p_tus_new(uv_loop_t *loop, const struct p2p_tus_opts *o, char *err,
                            size_t errlen)
{
    const struct p2p_tus_cfg *cfg = o->cfg;
    const char *bp = cfg && cfg->base_path && cfg->base_path[0] ? cfg->base_path : "/files/";
    size_t bl = strlen(bp);
    if (bp[0] != '/' || bp[bl - 1] != '/' || bl < 2 || strchr(bp, '*') || strchr(bp, '{') ||
        strstr(bp, "//")) {
        snprintf(err, errlen, "tus.base_path must look like /files/ (got '%s')", bp);
        return NULL;
    }
    if (!o->dir || !o->dir[0] || !o->complete_dir || !o->complete_dir[0]) {
        snprintf(err, errlen, "tus: upload and complete directories are required");
        return NULL;
    }
    if (o->ntrackers == 0) {
        snprintf(err, errlen, "tus: at least one entry in `trackers` is needed for new seeds");
        return NULL;
    }
    for (size_t i = 0; i < o->ntrackers; i++) {
        const char *why = NULL;
        if (p2p_seed_check_tracker(o->trackers[i], &why) < 0) {
            snprintf(err, errlen, "tus: tracker '%s': %s", o->trackers[i], why ? why : "invalid");
            return NULL;
        }
    }
    struct p2p_tus *t = p2p_xcalloc(1, sizeof *t);
    t->loop = loop;
    t->base_path = p2p_xstrdup(bp);
    t->route_any = p2p_xasprintf("%s*", bp);
    t->route_root = p2p_xstrndup(bp, bl - 1);
    t->dir = p2p_xstrdup(o->dir);
    t->complete_dir = p2p_xstrdup(o->complete_dir);
    t->ntrackers = o->ntrackers > P2P_SEED_MAX_TRACKERS ? P2P_SEED_MAX_TRACKERS : o->ntrackers;
    t->trackers = p2p_xcalloc(t->ntrackers, sizeof *t->trackers);
    for (size_t i = 0; i < t->ntrackers; i++)
        t->trackers[i] = p2p_xstrdup(o->trackers[i]);
    t->auth_token = o->auth_token && o->auth_token[0] ? p2p_xstrdup(o->auth_token) : NULL;
    p2p_tus_set_public_url(t, o->public_url);
    t->max_size = cfg ? cfg->max_size : 0;
    t->expiration_ms = cfg ? cfg->expiration_ms : 0;
    if (t->expiration_ms && t->expiration_ms < 1000)
        t->expiration_ms = 1000;
    t->hook_url = cfg && cfg->hook_url && cfg->hook_url[0] ? p2p_xstrdup(cfg->hook_url) : NULL;
    t->max_unfinished = o->max_unfinished ? o->max_unfinished : P2P_TUS_MAX_UNFINISHED;
    t->meta_budget = o->meta_budget ? o->meta_budget : P2P_TUS_META_BUDGET;
    uint64_t keep_ms = o->finished_keep_ms;
    if (!keep_ms)
        keep_ms = t->expiration_ms > P2P_TUS_FINISHED_KEEP_MS ? t->expiration_ms
                                                              : P2P_TUS_FINISHED_KEEP_MS;
    t->finished_keep_s = keep_ms < 1000 ? 1 : keep_ms / 1000;
    t->httpc = o->httpc;
    t->on_finished = o->on_finished;
    t->lookup = o->lookup_sha256;
    t->ud = o->ud;
    if (p2p_tus_store_load(t, err, errlen) < 0) {
        p2p_tus_free(t);
        return NULL;
    }
    uv_timer_init(loop, &t->tick);
    t->tick.data = t;
    uv_timer_start(&t->tick, tick_cb, 250, 250);
    uv_unref((uv_handle_t *)&t->tick);
    return t;
}

static void tick_closed(uv_handle_t *h)
{
    struct p2p_tus *t = h->data;
    t->closing--;
    t->tick_closed = true;
    check_shutdown(t);
}

static void check_shutdown(struct p2p_tus *t)
{
    if (!t->stopping || t->done_called)
        return;
    if (t->jobs > 0 || t->nwriters > 0 || t->nwaiters > 0 || t->nhooks > 0)
        return;
    if (!t->tick_closing) {
        t->tick_closing = true;
        if (uv_is_closing((uv_handle_t *)&t->tick)) {
            t->tick_closed = true; /* closed by the host's walk-and-close */
        } else {
            t->closing++;
            uv_close((uv_handle_t *)&t->tick, tick_closed);
            return;
        }
    }
    if (t->closing > 0 || !t->tick_closed)
        return;
    t->done_called = true;
    if (t->done)
        t->done(t->done_ud);
}

void p2p_tus_shutdown(struct p2p_tus *t, void (*done)(void *ud), void *ud)
{
    if (!t) {
        if (done)
            done(ud);
        return;
    }
    t->stopping = true;
    t->done = done;
    t->done_ud = ud;
    uv_timer_stop(&t->tick);
    for (struct p2p_tus_writer *w = t->writers; w; w = w->next)
        writer_stop(w, P2P_TUS_STOP_SHUTDOWN);
    waiters_tick(t, p2p_now_ms());
    struct p2p_tus_hook *k = t->hooks;
    while (k) {
        struct p2p_tus_hook *next = k->next;
        if (k->call)
            p2p_httpc_cancel(k->call);
        k->call = NULL;
        hook_free(k);
        k = next;
    }
    check_shutdown(t);
}
