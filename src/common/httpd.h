/* HTTP/1.1 server on libuv + http-parser, shared by tracker and node: routing with path
 * parameters, keep-alive, pipelining, buffered or streamed request bodies with backpressure,
 * chunked bodies and trailers, Expect: 100-continue, responses from memory or a file range. */
#ifndef P2P_COMMON_HTTPD_H
#define P2P_COMMON_HTTPD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <uv.h>
#include <jansson.h>

#include "common/util.h"

struct p2p_httpd;
/** One request. Owned by the server; valid from the handler call until the response has been
 *  sent (or the connection has closed and the handler has responded, see p2p_httpd_on_abort). */
struct p2p_httpd_req;

#define P2P_HTTPD_MAX_HEADER (64 * 1024)   /* header block cap -> 431 */
#define P2P_HTTPD_MAX_JSON_BODY (1 << 20)  /* default buffered body cap -> 413 */
#define P2P_HTTPD_MAX_PARAMS 8

typedef void (*p2p_httpd_handler_cb)(struct p2p_httpd_req *req, void *ud);

/**
 * A route. method is "GET", "POST", ... ("GET" also matches HEAD; NULL matches any method).
 * path is a pattern of '/'-separated segments: literal text, "{name}" (one non-empty segment,
 * percent-decoded, may not decode to contain '/'), or a final "*" (the rest, possibly empty,
 * available as param "*").
 *
 * Buffered routes (on_head == NULL): the body is read into memory up to max_body bytes
 * (0 = P2P_HTTPD_MAX_JSON_BODY; larger -> 413 JSON error, sent before reading the body when
 * Content-Length says so) and handler runs once the whole request has arrived.
 *
 * Streaming routes (on_head != NULL): on_head runs as soon as the headers are complete. It must
 * either respond (the body, if any, is then discarded or the connection closed) or call
 * p2p_httpd_stream_body() to take the body as a stream. handler is unused for such routes.
 */
struct p2p_httpd_route {
    const char *method;
    const char *path;
    p2p_httpd_handler_cb handler;
    p2p_httpd_handler_cb on_head;
    size_t max_body;
    void *ud;
};

struct p2p_httpd_opts {
    uint64_t header_timeout_ms; /* whole header block must arrive within this; 0 = 10000 */
    uint64_t idle_timeout_ms;   /* keep-alive idle and body-stall timeout; 0 = 60000 */
    uint32_t max_conns;         /* beyond this, new connections get 503 + close; 0 = 10000 */
    /** Answer for unmatched paths/methods; NULL = JSON 404/405 {"code":"E001",...}. */
    p2p_httpd_handler_cb not_found;
    void *not_found_ud;
    /** Optional: called for every finished response (metrics). */
    void (*on_response)(struct p2p_httpd_req *req, int status, void *ud);
    void *on_response_ud;
};

/**
 * Creates a server on loop serving routes (the array and its strings are borrowed and must
 * outlive the server; terminated by an entry with path == NULL).
 */
struct p2p_httpd *p2p_httpd_new(uv_loop_t *loop, const struct p2p_httpd_route *routes,
                                const struct p2p_httpd_opts *opts);

/**
 * Binds and listens on addr ("host:port", ":port", "[v6]:port"; port 0 = ephemeral). Returns 0
 * or a negative libuv error. The bound port is then available from p2p_httpd_port().
 */
int p2p_httpd_listen(struct p2p_httpd *srv, const char *addr);
int p2p_httpd_port(const struct p2p_httpd *srv);

/**
 * Serves an already-connected stream socket as if the listener had accepted it (tests and
 * fuzzing: one end of a socketpair; the server need not listen). On success the server owns fd
 * and closes it with the connection; on error (negative libuv code) the caller keeps it.
 */
int p2p_httpd_adopt(struct p2p_httpd *srv, uv_os_sock_t fd);

/**
 * Graceful shutdown: stops accepting, closes idle connections, lets in-flight responses finish
 * (at most grace_ms, then closes the rest), then calls done(ud) and frees the server.
 */
void p2p_httpd_shutdown(struct p2p_httpd *srv, uint64_t grace_ms, void (*done)(void *ud),
                        void *ud);

/* ---- request accessors (valid while the request is) ---- */
const char *p2p_httpd_method(const struct p2p_httpd_req *req); /* "GET", "HEAD", ... */
bool p2p_httpd_is_head(const struct p2p_httpd_req *req);
const char *p2p_httpd_path(const struct p2p_httpd_req *req);  /* raw path, no query */
/** Path parameter by name ("id", or "*" for a trailing wildcard); NULL if absent. */
const char *p2p_httpd_param(const struct p2p_httpd_req *req, const char *name);
/** Percent-decoded query parameter (first occurrence); NULL if absent. */
const char *p2p_httpd_query(struct p2p_httpd_req *req, const char *name);
/** Header value by case-insensitive name (first occurrence); NULL if absent. */
const char *p2p_httpd_header(const struct p2p_httpd_req *req, const char *name);
/** How many times a header occurs (to reject duplicates). */
int p2p_httpd_header_count(const struct p2p_httpd_req *req, const char *name);
/** The i-th request header in arrival order (names as sent, values trimmed); false past the end.
 *  Strings are borrowed from the request. */
bool p2p_httpd_header_at(const struct p2p_httpd_req *req, size_t i, const char **name,
                         const char **value);
/** Trailer value (chunked bodies), valid once the body has ended; NULL if absent. */
const char *p2p_httpd_trailer(const struct p2p_httpd_req *req, const char *name);
/** Buffered body (NUL-terminated for convenience) and its length; NULL/0 for streamed bodies. */
const char *p2p_httpd_body(const struct p2p_httpd_req *req, size_t *len);
/** Content-Length if given (else -1; chunked bodies have -1). */
int64_t p2p_httpd_content_length(const struct p2p_httpd_req *req);
bool p2p_httpd_is_chunked(const struct p2p_httpd_req *req);
/** Peer address as "ip:port" (IPv6 as "[ip]:port"). */
const char *p2p_httpd_peer(const struct p2p_httpd_req *req);
/** Per-request user slot for handlers. */
void p2p_httpd_set_data(struct p2p_httpd_req *req, void *data);
void *p2p_httpd_get_data(const struct p2p_httpd_req *req);

/* ---- streaming request bodies ---- */
/**
 * Data callback: data is valid only during the call; the consumer copies it (chunks are at most
 * 64 KiB). To apply backpressure, call p2p_httpd_pause() from here or later; no further data
 * callbacks arrive until p2p_httpd_resume().
 */
typedef void (*p2p_httpd_data_cb)(struct p2p_httpd_req *req, const char *data, size_t len,
                                  void *ud);
/**
 * End callback: status 0 = the whole body arrived (trailers are now readable); < 0 = the body
 * was cut short (client closed, timeout, malformed chunking) and the connection is closing:
 * the handler may still finish its work but any response is dropped.
 */
typedef void (*p2p_httpd_end_cb)(struct p2p_httpd_req *req, int status, void *ud);

/**
 * Accepts the request body as a stream (call from on_head, or later if on_head returned without
 * deciding: the request then waits, its body unread). Sends "100 Continue" first when the
 * client asked for it. After end(0) the handler must respond. When called outside on_head,
 * data/end may be called back synchronously from inside this call.
 */
void p2p_httpd_stream_body(struct p2p_httpd_req *req, p2p_httpd_data_cb data,
                           p2p_httpd_end_cb end, void *ud);
/** Stops body delivery (uv_read_stop + parser pause) until p2p_httpd_resume(). */
void p2p_httpd_pause(struct p2p_httpd_req *req);
/** Resumes delivery: buffered bytes first; data/end may be called back from inside this call. */
void p2p_httpd_resume(struct p2p_httpd_req *req);

/**
 * Called once if the connection closes before the response was sent (client gone, reset, forced
 * shutdown), unless a streamed body's end callback already reported it with status < 0. Runs
 * synchronously from the closing path. The handler must still call a respond function (it is
 * then discarded) so the request can be freed.
 */
void p2p_httpd_on_abort(struct p2p_httpd_req *req, void (*cb)(struct p2p_httpd_req *, void *),
                        void *ud);

/* ---- responses: exactly one respond_* call per request ---- */
/** Adds a response header (copied). Content-Length, Date, Connection are added by the server. */
void p2p_httpd_add_header(struct p2p_httpd_req *req, const char *name, const char *value);
void p2p_httpd_add_headerf(struct p2p_httpd_req *req, const char *name, const char *fmt, ...)
    P2P_PRINTF(3, 4);
/** Asks for the connection to be closed after this response. */
void p2p_httpd_close_after(struct p2p_httpd_req *req);

/** Responds with a copy of body (content_type may be NULL when len == 0). HEAD sends no body. */
void p2p_httpd_respond(struct p2p_httpd_req *req, int status, const char *content_type,
                       const void *body, size_t len);
/** Responds with JSON (steals the reference to v), Content-Type application/json. */
void p2p_httpd_respond_json(struct p2p_httpd_req *req, int status, json_t *v);
/** Responds with {"code":code,"msg":<formatted>}. */
void p2p_httpd_respond_error(struct p2p_httpd_req *req, int status, const char *code,
                             const char *fmt, ...) P2P_PRINTF(4, 5);
/** Shorthand for {"code":"E000","msg":"success"} with 200. */
void p2p_httpd_respond_ok(struct p2p_httpd_req *req);

/**
 * Pacing hook for streamed responses (rate limits): asked before each chunk of up to want
 * bytes; returns how many bytes may go now (> 0), or 0 to be asked again after *delay_ms.
 */
typedef size_t (*p2p_httpd_pace_cb)(void *ud, size_t want, uint64_t *delay_ms);

struct p2p_httpd_file {
    const char *path;          /* opened asynchronously; copied */
    uint64_t offset;
    uint64_t length;           /* bytes to send from offset */
    const char *content_type;  /* NULL = application/octet-stream */
    p2p_httpd_pace_cb pace;    /* optional */
    void *pace_ud;
    /** Optional: called once when the response is done (0) or failed (< 0). */
    void (*done)(void *ud, int status);
    void *done_ud;
};
/**
 * Streams a file range as the body: sendfile(2) from thread-pool jobs to the socket (no copy
 * through user space; the loop thread never reads the file), or, where sendfile refuses the file,
 * uv_fs_read chunks on the pool. If the file cannot be opened or is shorter than offset+length,
 * responds 500 (or closes the connection if headers were already sent).
 */
void p2p_httpd_respond_file(struct p2p_httpd_req *req, int status,
                            const struct p2p_httpd_file *file);

/** Parses a single "bytes=a-b" / "bytes=a-" / "bytes=-n" Range against size. Returns 1 and the
 *  range if satisfiable, 0 if absent or not a single byte range (serve whole), -1 if
 *  unsatisfiable (416). */
int p2p_httpd_parse_range(const char *hdr, uint64_t size, uint64_t *off, uint64_t *len);

#endif
