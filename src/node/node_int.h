/* Node internals shared by node.c, store.c, announce.c, download.c, serve.c and api.c. Not a
 * public interface: everything here runs on the loop thread unless a comment says otherwise. */
#ifndef P2P_NODE_NODE_INT_H
#define P2P_NODE_NODE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/bitfield.h"
#include "common/config.h"
#include "common/httpc.h"
#include "common/httpd.h"
#include "seed/seed.h"

#define P2P_NODE_TICK_MS 100           /* one timer drives refreshes, reports, saves, retries */
#define P2P_NODE_REPORT_BATCH_MS 100   /* `have` reports are batched at this period */
#define P2P_NODE_SAVE_MS 500           /* dirty bitfields are written at most this often */
#define P2P_NODE_MAX_PEERS 200         /* peers remembered per file */
#define P2P_NODE_BAN_FAULTS 3          /* faults before a peer is banned from a task */
#define P2P_NODE_BAN_BAD 2             /* bad pieces (hash mismatches, never forgiven) to a ban */
#define P2P_NODE_FULL_CONCURRENCY 1    /* requests in flight to one complete peer (a seed) */
#define P2P_NODE_SUPERSEED_HOLD_MS 2000 /* origin seed: a piece sent this recently is refused */
#define P2P_NODE_SUPERSEED_AVOID_MS 1000 /* ... and its refuser is asked for new pieces only */
/* ... and once it has sent this % of its pieces a second time, it refuses any piece it sent
 * less than P2P_NODE_SUPERSEED_TAIL_HOLD_MS ago: its recipients pass it on (the origin uploads
 * about F, not F + a share of the swarm's tail) */
#define P2P_NODE_SUPERSEED_REPEAT_PCT 5
#define P2P_NODE_SUPERSEED_TAIL_HOLD_MS 5000
#define P2P_NODE_BITFIELD_HDR_MAX 16384 /* P2P-Bitfield response header: longest value sent */
#define P2P_NODE_UP_HEADS 1            /* rate-limited uploads served first (queue order): one
                                          at full rate, so each piece is out (and passed on)
                                          in half the time two shared heads take */
/* Piece uploads queue by arrival time plus this much per holder of the piece the downloader
 * knows of (its P2P-Holders request header): a piece few nodes have overtakes the common ones
 * queued up to holders x this earlier, so fresh pieces cross the swarm hop by hop without
 * waiting behind a full queue, and nothing waits forever. */
#define P2P_NODE_UP_RARITY_MS 100
#define P2P_NODE_UP_HOLDERS_DEFAULT 16 /* ... when the downloader does not say (Go nodes) */
/* Piece uploads are refused (503, P2P-Retry-After-Ms = when the queue will have room, at most
 * P2P_NODE_UP_RETRY_MAX_MS) while the uploads queued ahead would take longer than this much of
 * the upload rate: the downloader does better asking another holder, or an idle one for another
 * piece. bench/swarm S3 (64 nodes at 5 MiB/s): 22.1-22.4 s with 400 ms, 23.6 s with 1 s. */
#define P2P_NODE_UP_QUEUE_MS 400
/* ... unless the downloader knows no other holder (P2P-Holders: 1): refusing only delays it.
 * S2 (16 nodes at 20 MiB/s, where every node wants each fresh piece from its first holder):
 * 10.3-10.4 s against 10.7-10.8 s with 400 ms for these too. */
#define P2P_NODE_UP_QUEUE_SOLE_MS 1000
#define P2P_NODE_UP_RETRY_MIN_MS 20
#define P2P_NODE_UP_RETRY_MAX_MS 1000
#define P2P_NODE_MAX_DUP 2             /* endgame: requests per piece at most */
#define P2P_NODE_SEED_FETCH_MS 30000   /* seedFile fetch time cap */
#define P2P_NODE_STOP_GRACE_MS 3000    /* SIGTERM: time given to reports and in-flight work */
/* Piece buffers (pieces being fetched or verified), all tasks together: bounds the node's memory
 * whatever max_download_concurrency says (at least one piece may always be in flight). 16 MiB
 * keeps 4 pieces of 2 MiB streaming from a peer while 4 more are hashed on the pool. */
#define P2P_NODE_PIECE_MEM (16u << 20)
/* ... raised to 4 pieces of the largest pieceLength among active downloads, up to this. */
#define P2P_NODE_PIECE_MEM_MAX (256ull << 20)
#define P2P_NODE_SPARE_BUFS 8          /* freed piece buffers kept for reuse (no page faults) */

enum p2p_node_state {
    P2P_NODE_PENDING = 0,
    P2P_NODE_DOWNLOADING,
    P2P_NODE_SEEDING,
    P2P_NODE_FAILED,
    P2P_NODE_CANCELED,
};

/** A token bucket (bytes/s); rate 0 = unlimited. */
struct p2p_node_rate {
    uint64_t rate;
    double tokens;
    uint64_t last_ms;
};

/** One tracker address, shared by every file that names it. */
struct p2p_node_tracker {
    char *addr;                  /* as written in seeds/config: "host:port" or a URL base */
    char *base;                  /* "http://host:port" */
    bool alive;                  /* last heartbeat succeeded */
    bool hb_inflight;
    uint64_t next_hb_ms;
    uint32_t fails;
    uint64_t interval_ms;        /* the tracker's heartbeat `interval`/`intervalMs`, 0 = none */
    struct p2p_node_tracker *next;
};

/** A file's announce state towards one of its trackers. */
struct p2p_node_ann {
    struct p2p_node_tracker *t;
    bool need_full;              /* send the whole bitfield next */
    bool inflight;
    uint32_t *have;              /* pieces verified since the last report */
    size_t nhave, caphave;
    uint64_t last_ms;            /* last report sent */
    uint64_t peers_next_ms;      /* next peer-list refresh from this tracker */
    bool peers_inflight;
    uint64_t next_report_ms;     /* no report before this (backoff after a failure) */
    uint32_t report_fails;       /* failed reports in a row */
    bool report_off;             /* a 4xx: not reported until a heartbeat says known:false */
    /* v1 (SHA-1) files: held pieces reported one by one through POST /v1/report */
    struct p2p_bitfield v1_sent; /* pieces reported (or in flight) */
    uint32_t v1_inflight;
    bool v1_off;                 /* the tracker refused /v1/report */
};

struct p2p_node_peer {
    char *node_id;
    char *addr;
    struct p2p_bitfield bf;      /* their pieces as last seen (tracker list) */
    uint32_t inflight;
    uint32_t faults;             /* errors and bad pieces; a good piece forgives one */
    uint32_t bad_pieces;         /* hash mismatches, never forgiven: P2P_NODE_BAN_BAD bans */
    uint64_t backoff_until_ms;
    uint64_t superseed_until_ms; /* refused a piece as a super-seed: new pieces only till then */
    bool banned;
    uint64_t bytes;              /* bytes received from them */
    uint64_t seen_ms;            /* last time a tracker listed them */
    uint64_t bits_ms;            /* last time bf was refreshed (list, P2P-Bitfield) or probed */
    uint32_t jobs;               /* verify jobs holding a pointer to this peer */
};

struct p2p_node_file;
struct p2p_node_upload;
struct p2p_tus;

/** Super-seeding state of one piece at an origin seed (a file this process did not download):
 *  each piece is sent once before any piece is sent twice. */
struct p2p_node_ss_piece {
    uint32_t done_ms;            /* when its last good send ended (ms after ss_base_ms), 0 none */
    uint8_t sent;                /* sends started and not failed (saturating) */
    uint8_t active;              /* sends in flight (saturating) */
};

/** One piece request in flight. */
struct p2p_node_fetch {
    struct p2p_node_file *f;
    struct p2p_node_peer *peer;
    struct p2p_httpc_call *call; /* NULL once done */
    uint32_t index;
    uint8_t *buf;                /* piece buffer (p2p_node_buf_get), taken on first data */
    size_t cap;                  /* its capacity */
    uint64_t got, len;
    bool probe;                  /* asked without knowing they hold it (no tracker): a 404 is
                                    no fault, its P2P-Bitfield header is the answer */
    struct p2p_node_fetch *next;
};

/** A file the node holds or is downloading (its task; id = infoHash). */
struct p2p_node_file {
    struct p2p_node *node;
    struct p2p_seed seed;
    enum p2p_node_state state;
    char *error;                 /* last error (failed tasks), NULL if none */
    char *data_path;             /* where the data is now */
    char *dl_data, *dl_seed, *dl_bf;   /* paths in download_dir */
    char *cp_data, *cp_seed, *cp_ok;   /* paths in complete_dir */
    int fd;                      /* data fd while downloading, -1 otherwise (used by pool jobs) */
    int dfd;                     /* the same file opened O_DIRECT (whole-block piece writes), or -1
                                    where the filesystem refuses it; open and closed with fd */
    struct p2p_bitfield have;    /* verified, written and recorded in the saved .bitfield:
                                    what is served, reported and counted */
    struct p2p_bitfield got;     /* verified and written (superset of have): not refetched */
    uint64_t bytes_done;
    uint64_t created_ms;

    /* download engine */
    struct p2p_node_peer **peers;
    size_t npeers;
    uint16_t *avail;             /* holders per piece among known peers */
    uint16_t *partial;           /* ... among those that are not complete (not seeds) */
    uint8_t *reqs;               /* requests in flight per piece */
    struct p2p_node_fetch *fetches;
    uint32_t nfetch;
    uint32_t verifying;          /* pieces whose hash check + write is on the pool */
    uint64_t speed_bytes;        /* bytes verified in the current window */
    uint64_t speed_window_ms;
    double speed;                /* bytes/s, smoothed */
    uint64_t next_schedule_ms;   /* retry scheduling (backoffs) at this time */
    uint64_t list_ms;            /* last peer list merged (trackers down: peers are probed) */

    /* persistence */
    uint32_t busy;               /* pool jobs using fd or files */
    bool bf_dirty, bf_saving;
    uint64_t bf_next_ms;
    bool finishing;
    bool closing;                /* cancel/stop: close fd when busy hits 0 */
    bool remove_on_close;        /* cancel: delete the partial files when closing */
    bool in_store;               /* registered in node->files (reachable by id) */

    struct p2p_node_ann *ann;    /* one per seed tracker */
    size_t nann;
    char *seed_json;             /* serialized seed for GET /v2/seed (built on the pool) */
    size_t seed_json_len;
    uint32_t *v1_order;          /* SHA-1 files: piece indexes sorted by digest (pool-built) */
    bool downloaded;             /* downloaded (in part) by this process: not an origin seed */
    struct p2p_node_ss_piece *ss; /* origin seed: super-seeding state per piece (lazy) */
    uint32_t ss_unsent;          /* pieces never sent (or whose sends all failed) */
    uint32_t ss_repeats;         /* sends of pieces already sent (not failed) */
    uint64_t ss_base_ms;         /* ss[].done_ms is relative to this */
    bool seed_cache_job;         /* the job building seed_json/v1_order is queued */
    struct p2p_node_file *next;
};

struct p2p_node_metrics {
    uint64_t bytes_up, bytes_down;
    uint64_t pieces_verified, pieces_failed;
    uint64_t tasks_created;
    struct {
        char route[24];
        int status;
        uint64_t n;
    } req[64];
    size_t nreq;
};

struct p2p_node {
    uv_loop_t *loop;
    struct p2p_node_cfg cfg;
    char *download_dir, *complete_dir;
    char node_id[64];
    char *advertise;             /* "host:port" */
    struct p2p_httpd *httpd;
    struct p2p_httpc *httpc;
    struct p2p_httpd_route *routes;
    uv_timer_t tick;
    struct p2p_node_file *files;
    struct p2p_node_tracker *trackers;
    struct p2p_node_rate up_rate, down_rate;
    uint32_t uploads;            /* upload slots in use */
    struct p2p_node_upload *up_first, *up_last; /* rate-limited piece uploads, queue order */
    uint64_t up_queued;          /* their bytes (whole lengths until each one ends) */
    uint32_t jobs;               /* pool jobs outstanding (all files) */
    uint32_t calls;              /* stop-time reports outstanding */
    uint64_t piece_mem;          /* bytes reserved by fetches and verifications in flight */
    bool mem_blocked;            /* a schedule stopped at P2P_NODE_PIECE_MEM */
    struct {
        uint8_t *p;
        size_t cap;
    } spare[P2P_NODE_SPARE_BUFS]; /* piece buffers kept for reuse */
    size_t nspare;
    struct p2p_node_pending *pending; /* HTTP calls in flight (cancelled at stop) */
    uint32_t v1_inflight;        /* /v1/report calls in flight (all files) */
    atomic_bool abandon;         /* set at stop: long pool loops (hashing, copying) give up */
    bool scanning;
    bool stopping;
    bool stop_done;
    int exit_code;
    struct p2p_node_metrics m;
    struct p2p_tus *tus;         /* TUS ingest (node/tus.h), NULL when disabled */
    bool tus_stopping;           /* p2p_tus_shutdown() has not called back yet */
};

/** An HTTP call the node started and still owns (embed it in the call's context). At stop,
 *  calls left are cancelled and drop(p) frees the context (and answers whatever waits). */
struct p2p_node_pending {
    struct p2p_node_pending *prev, *next;
    struct p2p_httpc_call *call;
    void (*drop)(struct p2p_node_pending *p);
};

/* ---- calls.c ---- */
/** Starts an HTTP call owned by p (linked on n->pending until done runs, which must call
 *  p2p_node_call_done first). If the client is gone (stopping), p->drop runs at once and
 *  -ECANCELED is returned; else 0. */
int p2p_node_call(struct p2p_node *n, struct p2p_node_pending *p,
                  const struct p2p_httpc_opts *opts, p2p_httpc_done_cb done, void *ud);
/** Unlinks p: the first thing a done callback of p2p_node_call does. */
void p2p_node_call_done(struct p2p_node *n, struct p2p_node_pending *p);
/** Cancels every pending call and drops it (stop, before p2p_httpc_shutdown). */
void p2p_node_calls_cancel(struct p2p_node *n);

/* ---- node.c ---- */
/** Runs fn(arg) on the thread pool, then after(arg, status) on the loop; counts node->jobs. */
void p2p_node_job(struct p2p_node *n, void (*work)(void *arg), void (*after)(void *arg),
                  void *arg);
/** Called whenever outstanding work finished during a stop; completes the stop when idle. */
void p2p_node_stop_check(struct p2p_node *n);
const char *p2p_node_state_name(enum p2p_node_state s);

/* ---- store.c ---- */
/** Finds a registered file by infoHash / by fileName; NULL if none. */
struct p2p_node_file *p2p_node_find(struct p2p_node *n, const char *info_hash);
struct p2p_node_file *p2p_node_find_name(struct p2p_node *n, const char *name);
/** Allocates a file for seed (takes the seed's contents; *seed is zeroed). Not registered. */
struct p2p_node_file *p2p_node_file_new(struct p2p_node *n, struct p2p_seed *seed);
void p2p_node_file_free(struct p2p_node_file *f);
/** Adds f to the node's list (state pending) and binds its trackers. */
void p2p_node_register(struct p2p_node *n, struct p2p_node_file *f);
/** Removes f from the list (it must be idle) and frees it. */
void p2p_node_unregister(struct p2p_node *n, struct p2p_node_file *f);

/** Done callback of p2p_node_store_create: status 0, or -EEXIST (name taken by another file),
 *  or another negative errno with err set. */
typedef void (*p2p_node_create_cb)(struct p2p_node_file *f, int status, const char *err,
                                   void *ud);
/** Prepares on-disk state for a registered pending file on the pool (seed, preallocated data
 *  file, bitfield; or finds it complete/resumable), then starts its download or seeding. */
void p2p_node_store_create(struct p2p_node_file *f, p2p_node_create_cb cb, void *ud);
/** Scans complete_dir and download_dir on the pool; registers .ok files and resumes
 *  unfinished ones. done(n, added, ud) runs on the loop. */
void p2p_node_store_scan(struct p2p_node *n, void (*done)(struct p2p_node *, int, void *),
                         void *ud);
/** A piece was verified and written: record it in got, save the bitfield (pipelined: one save
 *  in flight), and once saved it joins have and is reported. */
void p2p_node_store_piece_done(struct p2p_node_file *f, uint32_t index);
/** Writes the bitfield now if dirty (e.g. at stop). */
void p2p_node_store_save(struct p2p_node_file *f);
/**
 * Registers a file that is already complete in complete_dir (data, .seed, .ok) for seeding and
 * reports it to its trackers: the host side of the TUS module's on_finished (node/tus.h). seed is
 * borrowed (copied). Returns 0, -EEXIST if its fileName is held by another infoHash, or -EINVAL.
 */
int p2p_node_adopt_complete(struct p2p_node *n, const struct p2p_seed *seed);
/** Timer work: due bitfield saves, finishing. */
void p2p_node_store_tick(struct p2p_node *n, uint64_t now);
/** Stops the file (cancel/stop): closes its fd once idle; remove_files deletes partial data. */
void p2p_node_store_close(struct p2p_node_file *f, bool remove_files);
/** Called after a pool job of f ended: runs deferred finish/close. */
void p2p_node_store_idle(struct p2p_node_file *f);
/** Queues (once) the pool job that serializes f's seed for GET /v2/seed and, for SHA-1 files,
 *  sorts its pieces by digest for /v1/pieceData. */
void p2p_node_seed_cache(struct p2p_node_file *f);
/** Pure (pool thread): the piece indexes of s sorted by digest (new array, n >= 1 entries). */
uint32_t *p2p_node_v1_index_build(const struct p2p_seed *s);
/** Pure: the first position k in order (from p2p_node_v1_index_build) with
 *  s->pieces[order[k]].digest == want (20 bytes; equal digests follow it), or -1. */
int64_t p2p_node_v1_index_find(const struct p2p_seed *s, const uint32_t *order,
                               const uint8_t *want);

/* ---- announce.c ---- */
struct p2p_node_tracker *p2p_node_tracker_get(struct p2p_node *n, const char *addr);
/** Queues a full report of f to all its trackers. */
void p2p_node_announce_full(struct p2p_node_file *f);
/** Queues a `have` for piece index (first one goes out at once, then batched). */
void p2p_node_announce_have(struct p2p_node_file *f, uint32_t index);
/** Heartbeats and due reports. */
void p2p_node_announce_tick(struct p2p_node *n, uint64_t now);
/** Sends "stopped" for f to all its trackers (counted in n->calls when stopping). */
void p2p_node_announce_stopped(struct p2p_node_file *f);
/** Pure: the wait before the next report after fails failures in a row: 500 ms doubling,
 *  capped at cap_ms. */
uint64_t p2p_node_report_backoff(uint32_t fails, uint64_t cap_ms);
/** Builds a tracker URL: base + path (new string). */
char *p2p_node_tracker_url(const struct p2p_node_tracker *t, const char *path);
/** Authorization header list for trackers (static storage, NULL-terminated) or NULL. */
const char *const *p2p_node_tracker_headers(struct p2p_node *n);

/* ---- download.c ---- */
/** Starts or resumes downloading f (state downloading). */
void p2p_node_download_start(struct p2p_node_file *f);
/** Stops all fetches of f (cancel/stop/finish). */
void p2p_node_download_stop(struct p2p_node_file *f);
/** Timer work: peer refreshes, retries. */
void p2p_node_download_tick(struct p2p_node *n, uint64_t now);
/** Fills as many request slots as allowed. */
void p2p_node_download_schedule(struct p2p_node_file *f);
void p2p_node_peer_free(struct p2p_node_peer *p);
/** A piece buffer of at least len bytes (a spare one when possible); *cap gets its size. */
uint8_t *p2p_node_buf_get(struct p2p_node *n, size_t len, size_t *cap);
/** Alignment of piece buffers, offsets and lengths for O_DIRECT writes (the page size covers
 *  every logical block size Linux filesystems use). */
#define P2P_NODE_DIRECT_ALIGN 4096
/** Gives a buffer back (kept as a spare or freed); NULL is a no-op. */
void p2p_node_buf_put(struct p2p_node *n, uint8_t *buf, size_t cap);
/** Frees every spare buffer (node exit). */
void p2p_node_buf_drain(struct p2p_node *n);

/** Pure (exposed for tests): true when every piece missing from got has a request in flight
 *  (reqs[i] > 0); inflight (requests + verifications) makes the common case O(1). */
bool p2p_node_endgame(const struct p2p_bitfield *got, const uint8_t *reqs, uint32_t inflight);

/**
 * Piece picker (pure, exposed for tests): the rarest piece (fewest holders in avail, random
 * among equals) that we lack (have), that has no request in flight (reqs == 0) and that some
 * usable peer holds (peer_bf[j] with usable[j]). Seed offload: when partial is given (holders
 * per piece among peers that are not complete), a complete peer (full[j]) only counts for
 * pieces no incomplete peer holds (partial[i] == 0), so seeds are asked for pieces nobody else
 * can give; NULL partial (or full) = every usable holder counts. Returns the index, or -1.
 */
int64_t p2p_node_pick(const struct p2p_bitfield *have, const uint8_t *reqs, const uint16_t *avail,
                      const uint16_t *partial, const struct p2p_bitfield *const *peer_bf,
                      const bool *usable, const bool *full, size_t npeers);

/**
 * Pure (exposed for tests): records one fault of p (bad = a piece whose hash did not match) and
 * returns true when p must now be banned: at P2P_NODE_BAN_FAULTS faults, or at
 * P2P_NODE_BAN_BAD bad pieces (these are never forgiven by p2p_node_peer_good).
 */
bool p2p_node_peer_fault(struct p2p_node_peer *p, bool bad);
/** Pure: a good piece from p forgives one fault (transport errors), never a bad piece. */
void p2p_node_peer_good(struct p2p_node_peer *p);

/* ---- serve.c ---- */
/** Pure (exposed for tests): whether an origin seed refuses a request for a piece in state p
 *  (503 + P2P-Superseed), so the downloader gets it from the peer that has it: the piece is
 *  being sent, or its last send ended (done_ms, relative like now_ms) less than a hold before
 *  now_ms, where the hold is P2P_NODE_SUPERSEED_HOLD_MS while some piece was never sent
 *  (unsent > 0), then P2P_NODE_SUPERSEED_TAIL_HOLD_MS once `repeats` repeated sends reached
 *  P2P_NODE_SUPERSEED_REPEAT_PCT % of `npieces`, else none. After the hold the piece is sent
 *  again: its recipient may have died. */
bool p2p_node_superseed_refuse(const struct p2p_node_ss_piece *p, uint32_t unsent,
                               uint64_t now_ms, uint32_t repeats, uint32_t npieces);
/** Base64 of f's served pieces (got) for the P2P-Bitfield header (new string), or NULL when it
 *  would be longer than P2P_NODE_BITFIELD_HDR_MAX. */
char *p2p_node_bitfield_header(const struct p2p_node_file *f);
/** Token bucket: returns how many of want bytes may go now (> 0) or 0 and a delay. */
size_t p2p_node_rate_take(struct p2p_node_rate *r, uint64_t now_ms, size_t want,
                          uint64_t *delay_ms);
/**
 * As p2p_node_rate_take, for one of several senders sharing r: a head sender (one of the
 * P2P_NODE_UP_HEADS oldest uploads) takes tokens as they come; any other only what the heads
 * leave, i.e. once the bucket is nearly full (the heads are blocked or gone). Uploads are thus
 * served oldest first, each at the full rate: a piece reaches its downloader (who can then serve
 * it on) in one piece-time instead of all pieces arriving together at the end.
 */
size_t p2p_node_rate_take_prio(struct p2p_node_rate *r, uint64_t now_ms, size_t want, bool head,
                               uint64_t *delay_ms);
void p2p_node_serve_piece(struct p2p_httpd_req *req, void *ud);
void p2p_node_serve_piece_v1(struct p2p_httpd_req *req, void *ud);
void p2p_node_serve_file(struct p2p_httpd_req *req, void *ud);
void p2p_node_serve_seed(struct p2p_httpd_req *req, void *ud);
void p2p_node_serve_seeds(struct p2p_httpd_req *req, void *ud);

/* ---- api.c ---- */
void p2p_node_api_task_post(struct p2p_httpd_req *req, void *ud);
void p2p_node_api_task_get(struct p2p_httpd_req *req, void *ud);
void p2p_node_api_tasks(struct p2p_httpd_req *req, void *ud);
void p2p_node_api_task_delete(struct p2p_httpd_req *req, void *ud);
void p2p_node_api_scan(struct p2p_httpd_req *req, void *ud);
void p2p_node_api_probe(struct p2p_httpd_req *req, void *ud);
void p2p_node_api_metrics(struct p2p_httpd_req *req, void *ud);
void p2p_node_api_healthz(struct p2p_httpd_req *req, void *ud);
/** Records a finished response for /metrics. */
void p2p_node_metrics_response(struct p2p_httpd_req *req, int status, void *ud);
/** JSON view of a task (new reference, json_t * as void *). */
void *p2p_node_task_json(const struct p2p_node_file *f);

#endif
