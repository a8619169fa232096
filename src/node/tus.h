/* TUS 1.0.0 ingest endpoint: resumable uploads into tus.dir, each finished upload hashed into a
 * v2 seed, moved into complete_dir and handed to the node for seeding. Self-contained: it needs
 * only a loop, an HTTP server route table entry, and a few callbacks from its host. */
#ifndef P2P_NODE_TUS_H
#define P2P_NODE_TUS_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <uv.h>

#include "common/config.h"
#include "common/httpc.h"
#include "common/httpd.h"
#include "seed/seed.h"

struct p2p_tus;

/**
 * A finished upload: the data is already at data_path in complete_dir, with <name>.seed and an
 * empty <name>.ok beside it. seed (and data_path) are borrowed for the call; copy what you keep.
 * The host registers the file for serving and reports it to its trackers.
 */
typedef void (*p2p_tus_finished_cb)(void *ud, const struct p2p_seed *seed, const char *data_path);

/**
 * Instant upload: returns the seed (borrowed, valid until the next loop iteration) of a finished
 * file the host holds whose whole-file SHA-256 is sha256, or NULL. Optional: the TUS module
 * already remembers the digest of every upload that arrived through it.
 */
typedef const struct p2p_seed *(*p2p_tus_lookup_cb)(void *ud, const uint8_t sha256[32]);

struct p2p_tus_opts {
    const struct p2p_tus_cfg *cfg; /* borrowed for the call; base_path, max_size, expiration_ms
                                      and hook_url are copied (cfg->dir is ignored: see dir) */
    const char *dir;               /* resolved upload directory (created if missing) */
    const char *complete_dir;      /* where finished files go (created if missing) */
    const char *const *trackers;   /* trackers written into new seeds ("host:port"); copied */
    size_t ntrackers;              /* at least one is needed to finish an upload */
    const char *auth_token;        /* NULL or "" = none; else "Authorization: Bearer <t>" */
    /** Base URL other nodes use to reach this node ("http://10.0.0.5:35331"), for
     *  P2P-Seed-URL (<public_url>/v2/seed/<infoHash>) and the hook. NULL = from the request's
     *  Host header. */
    const char *public_url;
    struct p2p_httpc *httpc;       /* borrowed; needed only when cfg->hook_url is set */
    p2p_tus_finished_cb on_finished; /* may be NULL */
    p2p_tus_lookup_cb lookup_sha256; /* may be NULL */
    void *ud;
    /* Limits; 0 = the default (docs/PROTOCOL.md, TUS "Limits"). Tests lower them. */
    size_t max_unfinished;         /* unfinished uploads (partials included) at once -> 503 */
    size_t meta_budget;            /* Upload-Metadata/Upload-Concat bytes held in memory -> 503 */
    uint64_t finished_keep_ms;     /* a finished upload's record (HEAD) is kept this long;
                                      default max(tus.expiration, 24 h); its file always stays */
};

/**
 * Creates the module and loads the state of earlier runs from opts->dir (a blocking directory
 * scan: call it before the loop runs, as other start-up work). Uploads found half-done resume
 * where their data ends; stale staging files are removed. Returns NULL with a message in err on
 * failure (directory not creatable, bad options).
 */
struct p2p_tus *p2p_tus_new(uv_loop_t *loop, const struct p2p_tus_opts *opts, char *err,
                            size_t errlen);

/**
 * Sets (or replaces) the public base URL used for P2P-Seed-URL and the hook, e.g. once the
 * listening port is known ("http://10.0.0.5:35331"; copied; NULL = from the Host header).
 */
void p2p_tus_set_public_url(struct p2p_tus *t, const char *public_url);

/**
 * Fills up to max route entries (2 are needed) that send every method on base_path and
 * base_path + "<id>" to the TUS dispatcher (streaming routes: method NULL, on_head set). The
 * strings live in t. Returns the number of entries written.
 */
size_t p2p_tus_routes(struct p2p_tus *t, struct p2p_httpd_route *out, size_t max);

/**
 * The dispatcher itself (an on_head callback; ud is the struct p2p_tus *), for hosts that route
 * by hand. Handles OPTIONS, HEAD, POST, PATCH, DELETE and X-HTTP-Method-Override.
 */
void p2p_tus_handle(struct p2p_httpd_req *req, void *ud);

/** Counters for /metrics and probes. */
struct p2p_tus_stats {
    uint64_t uploads;         /* uploads known (any state) */
    uint64_t active_writers;  /* PATCH/POST bodies being received now */
    uint64_t bytes_received;  /* body bytes stored since start */
    uint64_t finished;        /* uploads finished since start */
    uint64_t expired;         /* uploads expired since start */
};
/** Fills out with the current counters. */
void p2p_tus_get_stats(const struct p2p_tus *t, struct p2p_tus_stats *out);

/**
 * Stops the module: refuses new requests (503), interrupts running PATCHes (their bytes are
 * kept, the clients get 503), answers waiting requests, cancels hook calls and waits for
 * thread-pool jobs and its handles; then done(ud) runs from a later loop iteration. t stays
 * valid (answering 503) until p2p_tus_free(): call that once the HTTP server that routes to it
 * has shut down. Usual order: p2p_tus_shutdown -> done -> p2p_httpd_shutdown -> p2p_tus_free.
 */
void p2p_tus_shutdown(struct p2p_tus *t, void (*done)(void *ud), void *ud);

/** Frees a module after p2p_tus_shutdown has called its done callback. NULL is a no-op. */
void p2p_tus_free(struct p2p_tus *t);

#endif
