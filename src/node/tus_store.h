/* TUS module state shared by tus.c and tus_store.c: the module, uploads, writers and thread-pool
 * jobs, plus the store functions (disk layout, loading, finishing into a seed). Internal. */
#ifndef P2P_NODE_TUS_STORE_H
#define P2P_NODE_TUS_STORE_H

#include "node/tus_int.h"

#define P2P_TUS_NBUF 8
#define P2P_TUS_BUCKETS 16384
#define P2P_TUS_KNOWN_BUCKETS 4096
#define P2P_TUS_INDEX "sha256.idx"

enum p2p_tus_up_state { P2P_TUS_UP_ACTIVE = 0, P2P_TUS_UP_FINISHED, P2P_TUS_UP_GONE };
enum p2p_tus_stop_why {
    P2P_TUS_STOP_NONE = 0,
    P2P_TUS_STOP_PREEMPT,
    P2P_TUS_STOP_IOERR,
    P2P_TUS_STOP_SHUTDOWN,
};

struct p2p_tus_writer;
struct p2p_tus_waiter;
struct p2p_tus_hook;

/* One upload. Fields marked (pool) are touched by thread-pool jobs, which run only while the
 * upload's lock is held, one at a time. */
struct p2p_tus_upload {
    struct p2p_tus *t;
    char id[P2P_TUS_ID_LEN + 1];
    enum p2p_tus_up_state state;
    uint64_t length;
    bool deferred;
    uint64_t offset;              /* bytes in the data file */
    char *metadata;               /* Upload-Metadata as received (validated), or NULL */
    char *concat;                 /* Upload-Concat as received, or NULL */
    bool partial, final;
    char (*parts)[P2P_TUS_ID_LEN + 1];
    size_t nparts;
    bool concatenating;
    uint64_t created_s, expires_s, gone_s; /* wall clock; expires 0 = never */
    char *want_name;              /* sanitized filename metadata (or the id) */
    size_t charged;               /* bytes counted in t->meta_bytes while in the table */

    /* finished (non-partial): where it went */
    char info_hash[65];
    char *file_name;
    char *data_path;
    uint8_t sha256[32];
    bool have_sha;

    /* lock */
    bool locked;
    struct p2p_tus_writer *writer;
    struct p2p_tus_waiter *waiters;
    int refs;                     /* jobs, waiters, concatenations using it */
    int refs_parts;               /* finals being built from this partial */
    bool in_table;
    bool info_dirty;              /* a declared length not yet in the .info file */
    struct p2p_tus_upload *hnext;

    /* (pool) data fd and incremental piece hashing */
    int fd;
    uint64_t piece_len;           /* 0 = not hashing (partial, or length unknown) */
    uint64_t piece_off;           /* bytes fed to the piece hasher */
    EVP_MD_CTX *pctx;
    uint8_t *digests;             /* 32 bytes per finished piece */
    uint32_t ndig, capdig;
};

/* One request body being stored. */
struct p2p_tus_writer {
    struct p2p_tus *t;
    struct p2p_tus_upload *u;
    struct p2p_httpd_req *req;
    bool is_post;
    char *buf[P2P_TUS_NBUF];
    size_t fill[P2P_TUS_NBUF];
    int ri;                       /* oldest full buffer */
    int nq;                       /* full buffers (ri..ri+nq-1), the next one is being filled */
    uint64_t off[P2P_TUS_NBUF];   /* where each full buffer goes (data or stage file) */
    bool written[P2P_TUS_NBUF], hashed[P2P_TUS_NBUF];
    bool wsub[P2P_TUS_NBUF], hsub[P2P_TUS_NBUF]; /* submitted to the write / hash chain */
    bool winf, hinf;              /* a write / hash job is running */
    uint64_t seq_off;             /* offset of the next buffer to fill */
    uint64_t limit, got;
    bool paused, ended, gone, overflow, stopping, responded, end_job, bad_trailer;
    int end_status;
    int stop_why;
    int io_err;
    /* checksum: the chunk is staged in <dir>/<id>.stage and committed after it verifies */
    bool staged, ck_trailer;
    enum p2p_tus_algo ck_algo;
    uint8_t ck_want[64];
    size_t ck_len;
    EVP_MD_CTX *ck[4];            /* by algo; all three when the algorithm comes in a trailer */
    int stage_fd;                 /* (pool) */
    uint64_t staged_bytes;
    struct p2p_tus_writer *prev, *next;
};

struct p2p_tus_create;

/* A thread-pool job. */
struct p2p_tus_job {
    uv_work_t work_req;
    struct p2p_tus *t;
    struct p2p_tus_upload *u;         /* holds a reference */
    struct p2p_tus_writer *w;
    void (*work)(struct p2p_tus_job *);
    void (*after)(struct p2p_tus_job *);
    int err;                      /* 0 or negative errno */
    /* write / hash: consecutive full buffers of the writer, starting at file offset off */
    int slots[P2P_TUS_NBUF];
    char *bufs[P2P_TUS_NBUF];
    size_t lens[P2P_TUS_NBUF];
    int nslots;
    size_t len, done;
    uint64_t off;
    /* end */
    bool commit, ck_ok;
    uint64_t committed;
    /* finish */
    bool finished;
    struct p2p_seed seed;
    /* others */
    struct p2p_httpd_req *req;
    struct p2p_tus_create *create;
    struct p2p_tus_upload **parts;
    size_t nparts;
    bool skip_stat, instant_failed, purge;
    char *path;
    uint8_t sha[32];
    uint64_t t0_ms;               /* for debug timings */
    int method;                   /* finish: the request to go on with (enum tus_method) */
    bool aborted;                 /* finish: its client went away meanwhile */
    uint64_t disk_off;            /* hash: bytes known to be on disk when submitted */
};

/* Whole-file digests of finished files (instant upload). */
struct p2p_tus_known {
    uint8_t sha256[32];
    char info_hash[65];
    char *file_name;
    char *data_path;
    uint64_t length;
    struct p2p_tus_known *next;
};

struct p2p_tus {
    uv_loop_t *loop;
    char *base_path, *route_any, *route_root;
    char *dir, *complete_dir;
    char **trackers;
    size_t ntrackers;
    char *auth_token;
    char *public_url;
    uint64_t max_size, expiration_ms;
    char *hook_url;
    struct p2p_httpc *httpc;
    p2p_tus_finished_cb on_finished;
    p2p_tus_lookup_cb lookup;
    void *ud;

    struct p2p_tus_upload *table[P2P_TUS_BUCKETS];
    size_t nuploads;
    size_t nunfinished;               /* in the table and ACTIVE (partials included) */
    size_t meta_bytes;                /* metadata + concat bytes of the uploads in the table */
    size_t max_unfinished, meta_budget;
    uint64_t finished_keep_s;
    size_t pending_bodies;            /* creations with a body whose writer is not started */
    struct p2p_tus_known *known[P2P_TUS_KNOWN_BUCKETS];
    struct p2p_tus_writer *writers;
    size_t nwriters;
    struct p2p_tus_waiter *waiters;
    size_t nwaiters;
    struct p2p_tus_hook *hooks;
    size_t nhooks;
    struct p2p_tus_hook *zombies;     /* hooks whose timer the host closed (freed at the end) */
    struct p2p_tus_upload **digest_q; /* finished uploads whose whole-file digest is pending */
    size_t ndigest_q;
    bool digest_busy;
    size_t jobs;
    int closing;

    uv_timer_t tick;
    uint64_t next_expire_s;
    struct p2p_tus_stats stats;

    bool stopping, tick_closing, tick_closed, done_called;
    void (*done)(void *);
    void *done_ud;
};

/* ---- tus.c ---- */
/** New job on the pool for u (takes a reference on u, may be NULL). */
struct p2p_tus_job *p2p_tus_job_new(struct p2p_tus *t, struct p2p_tus_upload *u,
                                    void (*work)(struct p2p_tus_job *),
                                    void (*after)(struct p2p_tus_job *));
/** Queues j (counted in t->jobs); after runs on the loop, then j is freed. */
void p2p_tus_job_submit(struct p2p_tus_job *j);
/** Drops a reference; frees u once unreferenced and out of the table. */
void p2p_tus_up_unref(struct p2p_tus_upload *u);
/** Loop side of a finished upload (state, on_finished, hook, digest); j holds the seed. */
void p2p_tus_finished(struct p2p_tus *t, struct p2p_tus_upload *u, struct p2p_tus_job *j);

/* ---- tus_store.c ---- */
/** New upload (id NULL = random). Not in the table yet. */
struct p2p_tus_upload *p2p_tus_up_new(struct p2p_tus *t, const char *id);
/** Frees u and its members (closes its fd); NULL is a no-op. */
void p2p_tus_up_free(struct p2p_tus_upload *u);
/** Records where a finished upload's file is (copies the strings). */
void p2p_tus_up_set_finished(struct p2p_tus_upload *u, const char *info_hash, const char *file_name,
                             const char *data_path, const uint8_t *sha256);
/** Bucket of an upload id in t->table. */
size_t p2p_tus_id_hash(const char *id);
/** Sets u's state, keeping t->nunfinished right. */
void p2p_tus_up_set_state(struct p2p_tus_upload *u, enum p2p_tus_up_state st);
/** Bytes of metadata and concat u holds (what the memory budget counts). */
size_t p2p_tus_up_meta_cost(const struct p2p_tus_upload *u);
/** Puts u in the table (t owns it from now on). */
void p2p_tus_table_add(struct p2p_tus *t, struct p2p_tus_upload *u);
/** Takes u out of the table (frees it when no reference is left). */
void p2p_tus_table_remove(struct p2p_tus *t, struct p2p_tus_upload *u);
/** Frees a job and what it owns (seed, parts array, path); not its upload. */
void p2p_tus_job_free(struct p2p_tus_job *j);
/** The finished file with this whole-file SHA-256 (borrowed), or NULL. */
const struct p2p_tus_known *p2p_tus_known_find(const struct p2p_tus *t, const uint8_t *sha);
/** Queues the whole-file SHA-256 of a finished upload (for instant uploads) on the pool. */
void p2p_tus_digest_queue(struct p2p_tus *t, struct p2p_tus_upload *u);
/** Frees the hook records left by a forced stop (tus.c). */
void p2p_tus_hooks_free(struct p2p_tus *t);
/** Loads uploads and the digest index from t->dir (blocking; before the loop runs). */
int p2p_tus_store_load(struct p2p_tus *t, char *err, size_t errlen);

/* Pool work functions: run on a thread-pool thread while the upload's lock is held; results go
 * into the job (err, done, committed, finished, seed). */
/** Writes the job's buffers (consecutive) at j->off into the data file, or the stage file. */
void p2p_tus_write_work(struct p2p_tus_job *j);
/** Feeds the job's buffers to the piece hasher (or a staged chunk's checksum); runs beside
 *  the write chain. */
void p2p_tus_hash_work(struct p2p_tus_job *j);
/** End of a body: verify and commit a staged chunk, close files, persist a declared length,
 *  finish a complete upload. */
void p2p_tus_end_work(struct p2p_tus_job *j);
/** Finishes a complete upload whose earlier finish failed (seed, move, .seed, .ok, .info). */
void p2p_tus_finish_work(struct p2p_tus_job *j);
/** Creation: empty data file and .info; an empty upload is finished at once. */
void p2p_tus_create_work(struct p2p_tus_job *j);
/** Concatenation: builds the final's data from its partials, then finishes it. */
void p2p_tus_concat_work(struct p2p_tus_job *j);
/** Instant upload: checks the known file is still there and writes the .info (otherwise it
 *  falls back to an ordinary creation and sets j->instant_failed). */
void p2p_tus_instant_work(struct p2p_tus_job *j);
/** Termination: removes the upload's files (a finished upload's swarm file stays). */
void p2p_tus_delete_work(struct p2p_tus_job *j);
/** Expiry: removes the data and writes a tombstone; with j->purge removes the tombstone. */
void p2p_tus_expire_work(struct p2p_tus_job *j);

#endif
