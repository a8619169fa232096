/* HTTP client: one libcurl multi handle driven by the libuv loop (curl's multi-uv pattern with
 * the fixes of STYLE.md §2). Done callbacks always run from the loop, never inside curl. */
#include "common/httpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"

#define P2P_HTTPC_DEFAULT_MAX_BODY (1u << 20)
#define P2P_HTTPC_DEFAULT_CONNECT_MS 5000
#define P2P_HTTPC_DEFAULT_TIMEOUT_MS 30000
#define P2P_HTTPC_MAX_CONNECTS 256
#define P2P_HTTPC_HDR_MAX_BYTES (64 * 1024) /* response header block cap -> UV_E2BIG */
#define P2P_HTTPC_HDR_MAX_COUNT 128
#define P2P_HTTPC_RECV_BUFFER (128 * 1024)

enum call_state {
    CALL_PENDING,   /* easy handle ready, added to the multi from the idle callback */
    CALL_ACTIVE,    /* in the multi handle */
    CALL_READY,     /* finished (or failed before starting), done queued for dispatch */
    CALL_CANCELLED, /* cancelled while curl was running a callback; reaped from idle */
    CALL_DONE,      /* done callback running */
};

struct resp_header {
    char *name;  /* one allocation: "name\0value\0" */
    char *value;
};

struct p2p_httpc_call {
    struct p2p_httpc *c;
    struct p2p_httpc_call *prev, *next; /* c->calls: every call not yet dispatched or freed */
    struct p2p_httpc_call *qnext;       /* c->ready queue */
    enum call_state state;
    bool in_multi;
    CURL *easy;
    struct curl_slist *req_headers;
    char *url;
    char *method;
    char *body;          /* owned copy of opts->body */
    size_t body_len;
    size_t body_off;     /* read position when the copy is sent chunked */
    char **trailers;     /* owned, NULL-terminated */
    p2p_httpc_done_cb done;
    p2p_httpc_data_cb on_data;
    p2p_httpc_read_cb read_body;
    void *ud;
    uint64_t max_body;
    /* response */
    char *buf;
    size_t buf_len, buf_cap;
    uint64_t bytes;
    struct resp_header *hdrs;
    size_t hdr_n, hdr_cap, hdr_bytes;
    int abort_err;       /* why a callback aborted the transfer */
    int err;
    long status;
    double total_s;
    char errbuf[CURL_ERROR_SIZE];
    const char *errmsg;
};

struct sock_ctx {
    uv_poll_t poll;            /* poll.data = ctx; freed in the close callback */
    curl_socket_t fd;
    struct p2p_httpc *c;
    struct sock_ctx *prev, *next;
};

struct p2p_httpc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;          /* curl's timeout; timer.data = c */
    uv_idle_t idle;            /* deferred work: failed setups, adds/cancels made inside curl */
    struct p2p_httpc_call *calls;
    struct p2p_httpc_call *ready_head, *ready_tail;
    struct p2p_httpc_call *dispatch_last; /* last call of the batch being dispatched */
    struct sock_ctx *socks;
    size_t ncalls;
    int in_curl;               /* > 0 while curl_multi_socket_action runs (user callbacks) */
    bool deferred;             /* idle has work */
    bool closing;
    bool shutdown_deferred;
    int open_handles;
    void (*closed)(void *ud);
    void *closed_ud;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        p2p_error("curl_global_init: %s", curl_easy_strerror(rc));
        abort();
    }
}

/* ---- lists ---- */

static void calls_link(struct p2p_httpc *c, struct p2p_httpc_call *call)
{
    call->prev = NULL;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->ncalls++;
}

static void calls_unlink(struct p2p_httpc *c, struct p2p_httpc_call *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
    c->ncalls--;
}

static void ready_push(struct p2p_httpc *c, struct p2p_httpc_call *call)
{
    call->state = CALL_READY;
    call->qnext = NULL;
    if (c->ready_tail)
        c->ready_tail->qnext = call;
    else
        c->ready_head = call;
    c->ready_tail = call;
}

static void ready_remove(struct p2p_httpc *c, struct p2p_httpc_call *call)
{
    struct p2p_httpc_call **pp = &c->ready_head, *prev = NULL;
    while (*pp && *pp != call) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (!*pp)
        return;
    *pp = call->qnext;
    if (c->ready_tail == call)
        c->ready_tail = prev;
    if (c->dispatch_last == call)
        c->dispatch_last = prev; /* NULL: nothing of the batch is left */
    call->qnext = NULL;
}

/* ---- call lifetime ---- */

static void call_release_easy(struct p2p_httpc_call *call)
{
    if (call->easy) {
        if (call->in_multi)
            curl_multi_remove_handle(call->c->multi, call->easy);
        call->in_multi = false;
        curl_easy_cleanup(call->easy);
        call->easy = NULL;
    }
}

static void call_free(struct p2p_httpc_call *call)
{
    call_release_easy(call);
    curl_slist_free_all(call->req_headers);
    free(call->url);
    free(call->method);
    free(call->body);
    if (call->trailers) {
        for (char **t = call->trailers; *t; t++)
            free(*t);
        free(call->trailers);
    }
    free(call->buf);
    for (size_t i = 0; i < call->hdr_n; i++)
        free(call->hdrs[i].name);
    free(call->hdrs);
    free(call);
}

static void defer(struct p2p_httpc *c);

/* Finishes a call with a transport error, from a later loop iteration. */
static void call_fail_later(struct p2p_httpc_call *call, int err, const char *msg)
{
    call->err = err;
    snprintf(call->errbuf, sizeof(call->errbuf), "%s", msg);
    call->errmsg = call->errbuf;
    call_release_easy(call);
    ready_push(call->c, call);
    defer(call->c);
}

/* Runs the queued done callbacks. Never called from inside curl. Calls queued by the callbacks
 * themselves wait for the idle callback, so a done that starts a failing request cannot spin. */
static void dispatch_ready(struct p2p_httpc *c)
{
    struct p2p_httpc_call *call;
    c->dispatch_last = c->ready_tail;
    while (c->dispatch_last && !c->closing && (call = c->ready_head)) {
        if (call == c->dispatch_last)
            c->dispatch_last = NULL;
        c->ready_head = call->qnext;
        if (!c->ready_head)
            c->ready_tail = NULL;
        calls_unlink(c, call);
        call->state = CALL_DONE;
        struct p2p_httpc_resp resp = {
            .err = call->err,
            .errmsg = call->err ? call->errmsg : NULL,
            .status = call->status,
            .body = call->on_data ? NULL : call->buf,
            .body_len = call->on_data ? 0 : call->buf_len,
            .bytes = call->bytes,
            .total_s = call->total_s,
            .call = call,
        };
        if (!call->on_data && !resp.body) {
            /* An empty buffered body is still a NUL-terminated string. */
            call->buf = p2p_xcalloc(1, 1);
            resp.body = call->buf;
        }
        call->done(&resp, call->ud);
        call_free(call);
    }
    if (c->ready_head)
        defer(c);
}

/* ---- result mapping ---- */

static int map_curl_error(struct p2p_httpc_call *call, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return UV_ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return UV_ECONNREFUSED;
    case CURLE_FILESIZE_EXCEEDED:
        return UV_E2BIG;
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_READ_ERROR:
        return call->abort_err ? call->abort_err : UV_EIO;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return UV_EINVAL;
    default:
        return call->abort_err ? call->abort_err : UV_EIO;
    }
}

/* Drains every finished transfer into the ready queue, then runs their done callbacks. Called
 * after each curl_multi_socket_action, outside any curl callback. */
static void check_multi_info(struct p2p_httpc *c)
{
    CURLMsg *msg;
    int pending;

    while (c->multi && (msg = curl_multi_info_read(c->multi, &pending))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        /* msg is invalid once the handle is removed: everything needed is copied above. */
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct p2p_httpc_call *call = (struct p2p_httpc_call *)priv;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &call->status);
        curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME, &call->total_s);
        if (call->state == CALL_CANCELLED) {
            calls_unlink(c, call);
            call_free(call);
            continue;
        }
        call->err = map_curl_error(call, rc);
        if (call->err) {
            if (!call->errbuf[0])
                snprintf(call->errbuf, sizeof(call->errbuf), "%s", curl_easy_strerror(rc));
            if (call->abort_err == UV_E2BIG)
                snprintf(call->errbuf, sizeof(call->errbuf), "response over the size cap");
            else if (call->abort_err == UV_ECANCELED)
                snprintf(call->errbuf, sizeof(call->errbuf), "aborted by a callback");
            call->errmsg = call->errbuf;
        }
        call_release_easy(call);
        ready_push(c, call);
    }
    dispatch_ready(c);
}

static void socket_action(struct p2p_httpc *c, curl_socket_t fd, int flags)
{
    int running = 0;
    if (!c->multi)
        return;
    c->in_curl++;
    CURLMcode mc = curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    if (mc != CURLM_OK)
        p2p_error("curl_multi_socket_action: %s", curl_multi_strerror(mc));
    /* Always drain: a transfer may end here even when running drops to 0. */
    check_multi_info(c);
}

/* ---- libuv <-> curl glue ---- */

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct sock_ctx *ctx = handle->data;
    struct p2p_httpc *c = ctx->c;
    int flags = 0;

    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    /* ctx may be closed during the call (CURL_POLL_REMOVE); it is freed only later. */
    socket_action(c, ctx->fd, flags);
}

static void on_handle_closed(struct p2p_httpc *c)
{
    if (--c->open_handles == 0 && c->closing) {
        void (*closed)(void *) = c->closed;
        void *ud = c->closed_ud;
        free(c);
        if (closed)
            closed(ud);
    }
}

static void on_sock_closed(uv_handle_t *handle)
{
    struct sock_ctx *ctx = handle->data;
    struct p2p_httpc *c = ctx->c;
    free(ctx);
    on_handle_closed(c);
}

static void sock_close(struct sock_ctx *ctx)
{
    struct p2p_httpc *c = ctx->c;
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        c->socks = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    uv_poll_stop(&ctx->poll);
    uv_close((uv_handle_t *)&ctx->poll, on_sock_closed);
}

/* CURLMOPT_SOCKETFUNCTION: one uv_poll per socket, found again through curl_multi_assign. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int action, void *userp, void *socketp)
{
    struct p2p_httpc *c = userp;
    struct sock_ctx *ctx = socketp;
    int events = 0;

    switch (action) {
    case CURL_POLL_IN:
    case CURL_POLL_OUT:
    case CURL_POLL_INOUT:
        if (!ctx) {
            ctx = p2p_xcalloc(1, sizeof(*ctx));
            ctx->fd = s;
            ctx->c = c;
            int rc = uv_poll_init_socket(c->loop, &ctx->poll, s);
            if (rc < 0) {
                /* Returning -1 would kill the whole multi handle: the transfer runs into its
                 * timeout instead. */
                p2p_error("uv_poll_init_socket(%d): %s", (int)s, uv_strerror(rc));
                free(ctx);
                return 0;
            }
            ctx->poll.data = ctx;
            c->open_handles++;
            ctx->next = c->socks;
            if (c->socks)
                c->socks->prev = ctx;
            c->socks = ctx;
            curl_multi_assign(c->multi, s, ctx);
        }
        if (action != CURL_POLL_OUT)
            events |= UV_READABLE;
        if (action != CURL_POLL_IN)
            events |= UV_WRITABLE;
        int prc = uv_poll_start(&ctx->poll, events, on_poll);
        if (prc < 0)
            p2p_error("uv_poll_start(%d): %s", (int)s, uv_strerror(prc));
        break;
    case CURL_POLL_REMOVE:
        /* curl drops its association right after this call; no curl_multi_assign needed. */
        if (ctx)
            sock_close(ctx);
        break;
    default:
        break;
    }
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    struct p2p_httpc *c = t->data;
    socket_action(c, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 fires from the next loop iteration. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct p2p_httpc *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- per-transfer curl callbacks (run inside curl: no curl calls, no done) ---- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct p2p_httpc_call *call = userdata;
    size_t n = size * nmemb;

    if (call->state == CALL_CANCELLED) {
        call->abort_err = UV_ECANCELED;
        return CURL_WRITEFUNC_ERROR;
    }
    if (n > call->max_body - call->bytes) {
        call->abort_err = UV_E2BIG;
        return CURL_WRITEFUNC_ERROR;
    }
    call->bytes += n;
    if (call->on_data) {
        if (call->on_data(ptr, n, call->ud) < 0) {
            call->abort_err = UV_ECANCELED;
            return CURL_WRITEFUNC_ERROR;
        }
        return n;
    }
    if (call->buf_len + n + 1 > call->buf_cap) {
        size_t cap = call->buf_cap ? call->buf_cap : 4096;
        while (cap < call->buf_len + n + 1)
            cap *= 2;
        call->buf = p2p_xrealloc(call->buf, cap);
        call->buf_cap = cap;
    }
    memcpy(call->buf + call->buf_len, ptr, n);
    call->buf_len += n;
    call->buf[call->buf_len] = '\0';
    return n;
}

static void headers_reset(struct p2p_httpc_call *call)
{
    for (size_t i = 0; i < call->hdr_n; i++)
        free(call->hdrs[i].name);
    call->hdr_n = 0;
    call->hdr_bytes = 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct p2p_httpc_call *call = userdata;
    size_t n = size * nitems;

    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        headers_reset(call); /* a new response head (e.g. after 100 Continue) */
        return n;
    }
    call->hdr_bytes += n;
    if (call->hdr_bytes > P2P_HTTPC_HDR_MAX_BYTES || call->hdr_n >= P2P_HTTPC_HDR_MAX_COUNT) {
        call->abort_err = UV_E2BIG;
        snprintf(call->errbuf, sizeof(call->errbuf), "response headers over the size cap");
        return 0;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon || colon == buf)
        return n; /* blank line, or a line we do not keep */
    size_t name_len = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t value_len = (size_t)(end - v);
    if (call->hdr_n == call->hdr_cap) {
        call->hdr_cap = call->hdr_cap ? call->hdr_cap * 2 : 16;
        call->hdrs = p2p_xrealloc(call->hdrs, call->hdr_cap * sizeof(*call->hdrs));
    }
    char *mem = p2p_xmalloc(name_len + value_len + 2);
    memcpy(mem, buf, name_len);
    mem[name_len] = '\0';
    memcpy(mem + name_len + 1, v, value_len);
    mem[name_len + 1 + value_len] = '\0';
    call->hdrs[call->hdr_n].name = mem;
    call->hdrs[call->hdr_n].value = mem + name_len + 1;
    call->hdr_n++;
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct p2p_httpc_call *call = userdata;
    size_t n = size * nitems;

    if (call->state == CALL_CANCELLED) {
        call->abort_err = UV_ECANCELED;
        return CURL_READFUNC_ABORT;
    }
    if (call->read_body) {
        int64_t got = call->read_body(buf, n, call->ud);
        if (got < 0) {
            call->abort_err = UV_ECANCELED;
            snprintf(call->errbuf, sizeof(call->errbuf), "aborted by the body producer");
            return CURL_READFUNC_ABORT;
        }
        return (size_t)got > n ? n : (size_t)got;
    }
    size_t left = call->body_len - call->body_off;
    if (n > left)
        n = left;
    memcpy(buf, call->body + call->body_off, n);
    call->body_off += n;
    return n;
}

/* Rewinds the owned body copy when curl resends it (a reused connection turned out dead). */
static int on_seek(void *userdata, curl_off_t offset, int origin)
{
    struct p2p_httpc_call *call = userdata;
    if (call->read_body || origin != SEEK_SET || offset < 0 || (uint64_t)offset > call->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    call->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int on_trailers(struct curl_slist **list, void *userdata)
{
    struct p2p_httpc_call *call = userdata;
    for (char **t = call->trailers; t && *t; t++)
        *list = curl_slist_append(*list, *t);
    return CURL_TRAILERFUNC_OK;
}

/* ---- deferred work ---- */

static void do_shutdown(struct p2p_httpc *c);

static void on_idle(uv_idle_t *idle)
{
    struct p2p_httpc *c = idle->data;

    uv_idle_stop(&c->idle);
    c->deferred = false;
    if (c->shutdown_deferred) {
        do_shutdown(c);
        return;
    }
    struct p2p_httpc_call *call = c->calls, *next;
    for (; call; call = next) {
        next = call->next;
        if (call->state == CALL_CANCELLED) {
            calls_unlink(c, call);
            call_free(call);
        } else if (call->state == CALL_PENDING) {
            CURLMcode mc = curl_multi_add_handle(c->multi, call->easy);
            if (mc != CURLM_OK) {
                call_fail_later(call, UV_EIO, curl_multi_strerror(mc));
            } else {
                call->in_multi = true;
                call->state = CALL_ACTIVE;
            }
        }
    }
    dispatch_ready(c);
}

static void defer(struct p2p_httpc *c)
{
    if (!c->deferred && !c->closing) {
        c->deferred = true;
        uv_idle_start(&c->idle, on_idle);
    }
}

/* ---- public API ---- */

struct p2p_httpc *p2p_httpc_new(uv_loop_t *loop)
{
    pthread_once(&global_once, global_init);

    struct p2p_httpc *c = p2p_xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        p2p_error("curl_multi_init failed");
        abort(); /* only fails on out-of-memory, which is fatal here */
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)P2P_HTTPC_MAX_CONNECTS);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_idle_init(loop, &c->idle);
    c->idle.data = c;
    c->open_handles = 2;
    return c;
}

static bool url_allowed(const char *url)
{
    return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* Applies opts to the call's easy handle. */
static void call_setup(struct p2p_httpc_call *call, const struct p2p_httpc_opts *o)
{
    CURL *e = call->easy;
    bool has_body = o->body || o->read_body;
    bool chunked = o->chunked || o->trailers;

    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_URL, call->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* Redirects only where the caller allows them (seed fetches), to http/https only. */
    long redirs = o->max_redirects > 20 ? 20L : (long)o->max_redirects;
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, redirs > 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, redirs);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    /* Peers and trackers are dialled directly, whatever the environment's proxy variables say. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)P2P_HTTPC_RECV_BUFFER);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(o->connect_timeout_ms ? o->connect_timeout_ms
                                                  : P2P_HTTPC_DEFAULT_CONNECT_MS));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     (long)(o->timeout_ms ? o->timeout_ms : P2P_HTTPC_DEFAULT_TIMEOUT_MS));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    if (call->max_body <= (uint64_t)INT64_MAX)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)call->max_body);

    for (const char *const *h = o->headers; h && *h; h++)
        call->req_headers = curl_slist_append(call->req_headers, *h);
    if (chunked)
        call->req_headers = curl_slist_append(call->req_headers, "Transfer-Encoding: chunked");
    if (call->req_headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->req_headers);

    const char *m = call->method;
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET") == 0 && !has_body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (has_body || strcmp(m, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        if (chunked || o->read_body) {
            curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(e, CURLOPT_READDATA, call);
            curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(e, CURLOPT_SEEKDATA, call);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                             chunked ? (curl_off_t)-1 : (curl_off_t)o->body_len);
        } else {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body ? call->body : "");
        }
        if (strcmp(m, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
    if (o->trailers) {
        size_t n = 0;
        while (o->trailers[n])
            n++;
        call->trailers = p2p_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            call->trailers[i] = p2p_xstrdup(o->trailers[i]);
        curl_easy_setopt(e, CURLOPT_TRAILERFUNCTION, on_trailers);
        curl_easy_setopt(e, CURLOPT_TRAILERDATA, call);
    }
}

static bool method_ok(const char *m)
{
    if (!*m || strlen(m) > 32)
        return false;
    for (; *m; m++) {
        if (!((*m >= 'A' && *m <= 'Z') || *m == '-' || *m == '_'))
            return false;
    }
    return true;
}

/* Header lines must be one line each ("Name: value"): no CR/LF smuggling into the request. */
static bool lines_ok(const char *const *list)
{
    for (; list && *list; list++) {
        const char *colon = strchr(*list, ':');
        if (!colon || colon == *list || strpbrk(*list, "\r\n"))
            return false;
    }
    return true;
}

struct p2p_httpc_call *p2p_httpc_request(struct p2p_httpc *c, const struct p2p_httpc_opts *opts,
                                         p2p_httpc_done_cb done, void *ud)
{
    if (c->closing)
        return NULL; /* no more done callbacks after shutdown */

    struct p2p_httpc_call *call = p2p_xcalloc(1, sizeof(*call));
    bool has_body = opts->body || opts->read_body;

    call->c = c;
    call->done = done;
    call->ud = ud;
    call->on_data = opts->on_data;
    call->read_body = opts->read_body;
    call->max_body = opts->max_body ? opts->max_body : P2P_HTTPC_DEFAULT_MAX_BODY;
    call->url = p2p_xstrdup(opts->url ? opts->url : "");
    call->method = p2p_xstrdup(opts->method ? opts->method : has_body ? "POST" : "GET");
    if (opts->body) {
        call->body = p2p_xmalloc(opts->body_len + 1);
        memcpy(call->body, opts->body, opts->body_len);
        call->body_len = opts->body_len;
    }
    calls_link(c, call);

    if (!url_allowed(call->url)) {
        call_fail_later(call, UV_EINVAL, "only http:// and https:// URLs are allowed");
        return call;
    }
    if (!method_ok(call->method)) {
        call_fail_later(call, UV_EINVAL, "bad method");
        return call;
    }
    if (!lines_ok(opts->headers) || !lines_ok(opts->trailers)) {
        call_fail_later(call, UV_EINVAL, "bad header line");
        return call;
    }
    call->easy = curl_easy_init();
    if (!call->easy) {
        call_fail_later(call, UV_EIO, "curl_easy_init failed");
        return call;
    }
    call_setup(call, opts);
    if (c->in_curl) {
        /* curl_multi_add_handle may not be called from inside a curl callback. */
        call->state = CALL_PENDING;
        defer(c);
        return call;
    }
    CURLMcode mc = curl_multi_add_handle(c->multi, call->easy);
    if (mc != CURLM_OK) {
        call_fail_later(call, UV_EIO, curl_multi_strerror(mc));
        return call;
    }
    call->in_multi = true;
    call->state = CALL_ACTIVE;
    return call;
}

void p2p_httpc_cancel(struct p2p_httpc_call *call)
{
    if (!call)
        return;
    struct p2p_httpc *c = call->c;
    switch (call->state) {
    case CALL_DONE:
    case CALL_CANCELLED:
        return;
    case CALL_READY:
        ready_remove(c, call);
        break;
    case CALL_ACTIVE:
        if (c->in_curl) {
            /* Removing a handle is not allowed inside curl: reap it from the idle callback. */
            call->state = CALL_CANCELLED;
            defer(c);
            return;
        }
        break;
    case CALL_PENDING:
        break;
    }
    calls_unlink(c, call);
    call_free(call);
}

size_t p2p_httpc_active(const struct p2p_httpc *c)
{
    return c->ncalls;
}

static void on_base_closed(uv_handle_t *handle)
{
    on_handle_closed(handle->data);
}

static void do_shutdown(struct p2p_httpc *c)
{
    struct p2p_httpc_call *call;

    c->shutdown_deferred = false;
    c->ready_head = c->ready_tail = NULL;
    while ((call = c->calls)) {
        calls_unlink(c, call);
        call_free(call);
    }
    /* May call the socket callback (closing cached connections); the timer is still open. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    uv_close((uv_handle_t *)&c->timer, on_base_closed);
    uv_close((uv_handle_t *)&c->idle, on_base_closed);
}

void p2p_httpc_shutdown(struct p2p_httpc *c, void (*done)(void *ud), void *ud)
{
    if (c->closing)
        return;
    c->closing = true;
    c->closed = done;
    c->closed_ud = ud;
    if (c->in_curl) {
        c->shutdown_deferred = true;
        if (!c->deferred) {
            c->deferred = true;
            uv_idle_start(&c->idle, on_idle);
        }
        return;
    }
    do_shutdown(c);
}

const char *p2p_httpc_resp_header(const struct p2p_httpc_resp *resp, const char *name)
{
    const struct p2p_httpc_call *call = resp->call;
    for (size_t i = call->hdr_n; i > 0; i--) {
        if (strcasecmp(call->hdrs[i - 1].name, name) == 0)
            return call->hdrs[i - 1].value;
    }
    return NULL;
}
