/* HTTP client: libcurl multi driven by the libuv loop (curl's multi-uv pattern). Every outgoing
 * request of tracker and node goes through here; the only file that includes curl.h. */
#ifndef P2P_COMMON_HTTPC_H
#define P2P_COMMON_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <uv.h>

struct p2p_httpc;
struct p2p_httpc_call;

/** The outcome of one request, passed to the done callback and valid only during it. */
struct p2p_httpc_resp {
    int err;             /* 0 = an HTTP response arrived (any status); < 0 = transport error:
                            UV_ETIMEDOUT, UV_ECONNREFUSED, UV_E2BIG (body over max_body),
                            UV_ECANCELED (data callback aborted), UV_EIO (other) */
    const char *errmsg;  /* human-readable reason when err != 0 */
    long status;         /* HTTP status, 0 if none */
    char *body;          /* buffered body, NUL-terminated (NULL when on_data streams it) */
    size_t body_len;
    uint64_t bytes;      /* body bytes received (buffered or streamed) */
    double total_s;      /* wall time of the transfer */
    const struct p2p_httpc_call *call;
};

/** A response header by case-insensitive name (last occurrence); NULL if absent. Valid only
 *  during the done callback. */
const char *p2p_httpc_resp_header(const struct p2p_httpc_resp *resp, const char *name);

typedef void (*p2p_httpc_done_cb)(const struct p2p_httpc_resp *resp, void *ud);
/** Streaming: called with each body chunk; return 0 to go on, < 0 to abort (done gets
 *  UV_ECANCELED). Must not call other p2p_httpc functions on this call. The max_body cap also
 *  applies to streamed bodies. */
typedef int (*p2p_httpc_data_cb)(const char *data, size_t len, void *ud);

/** Streamed request body: fill up to len bytes of buf and return the count, 0 at the end of the
 *  body, or < 0 to abort (done gets UV_ECANCELED). Runs inside the transfer; must not call
 *  p2p_httpc functions on this call. */
typedef int64_t (*p2p_httpc_read_cb)(char *buf, size_t len, void *ud);

struct p2p_httpc_opts {
    const char *method;             /* NULL = GET (or POST when body is set) */
    const char *url;                /* http:// or https:// only; others fail with UV_EINVAL */
    const char *const *headers;     /* NULL-terminated "Name: value" list, copied */
    const void *body;               /* request body, copied; NULL = none */
    size_t body_len;
    uint64_t max_body;              /* response body cap; 0 = 1 MiB. Over -> UV_E2BIG */
    uint64_t connect_timeout_ms;    /* 0 = 5000 */
    uint64_t timeout_ms;            /* whole transfer; 0 = 30000 */
    p2p_httpc_data_cb on_data;      /* optional streaming of the body */
    /* Optional, added for streamed uploads: the request body comes from read_body instead of
     * body (body_len then gives its size unless chunked is set). */
    p2p_httpc_read_cb read_body;
    bool chunked;                   /* send the body with Transfer-Encoding: chunked */
    const char *const *trailers;    /* NULL-terminated "Name: value" list sent after a chunked
                                       body (implies chunked), copied */
    uint32_t max_redirects;         /* redirects followed (http/https targets only); 0 = none
                                       (the default: a 3xx is the answer), at most 20 */
};

/** Creates a client on loop. One per process is typical. Calls curl_global_init once. */
struct p2p_httpc *p2p_httpc_new(uv_loop_t *loop);

/**
 * Starts a request. done(resp, ud) runs exactly once from the loop (never synchronously from
 * inside this call, never from inside a curl callback), unless the call is cancelled first.
 * Returns a handle valid until done runs or p2p_httpc_cancel is called (NULL, and done never
 * runs, once p2p_httpc_shutdown has been called). Bad input (URL scheme, method, header lines
 * with CR/LF) is reported through done with UV_EINVAL. May be called from done callbacks and
 * from another call's on_data (the transfer then starts from the next loop iteration).
 */
struct p2p_httpc_call *p2p_httpc_request(struct p2p_httpc *c, const struct p2p_httpc_opts *opts,
                                         p2p_httpc_done_cb done, void *ud);

/** Cancels an in-flight call: its done callback will not run. Safe from any loop callback
 *  except that call's own on_data (from another call's on_data the transfer is removed from
 *  the next loop iteration; its done still never runs). NULL is a no-op. */
void p2p_httpc_cancel(struct p2p_httpc_call *call);

/** Number of calls in flight. */
size_t p2p_httpc_active(const struct p2p_httpc *c);

/**
 * Cancels all calls (no done callbacks), releases curl, closes the client's handles and frees
 * it; done(ud) runs once every handle has closed (from a later loop iteration). May be called
 * from a done callback; from an on_data callback the teardown waits for the next iteration.
 */
void p2p_httpc_shutdown(struct p2p_httpc *c, void (*done)(void *ud), void *ud);

#endif
