/* HTTP/1.1 server on libuv + http-parser 2.9.4: one request at a time per connection, driven by
 * a memcached-style state machine (conn_process); pipelined bytes wait in the read buffer until
 * the response has been written; bodies are buffered, streamed with pause/resume or discarded. */
#include "common/httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#include "common/log.h"

#define RBUF_SIZE (64 * 1024)          /* per-connection read buffer; also max data-cb chunk */
#define FILE_CHUNK (128 * 1024)        /* respond_file read size (pread fallback) */
#define FILE_WINDOW (4 * 1024 * 1024)  /* respond_file: most bytes one pool sendfile job sends */
#define MAX_URL (8 * 1024)             /* -> 414 */
#define MAX_HEADERS 128                /* header (and trailer) lines -> 431 */
#define MAX_QUERY_PAIRS 64
#define DRAIN_MAX (64 * 1024)          /* early response: drain at most this much body, else close */
#define LINGER_MS 2000                 /* lingering close: read off the client's bytes this long */
#define LINGER_MAX (8 * 1024 * 1024)   /* ... or this many bytes */

/* ---- bounded header store (curl dynhds-like): names and values NUL-separated in one buffer ---- */

struct hent {
    uint32_t name;
    uint32_t value;
};

struct hstore {
    char *buf;
    size_t len;
    size_t cap;
    struct hent *ents;
    uint32_t n;
    uint32_t nalloc;
    bool in_value; /* the last callback was a value */
    bool finished;
};

/* ---- request and connection ---- */

enum rstate {
    R_IDLE,    /* waiting for the first byte of a request (idle timer) */
    R_HEAD,    /* reading the request head (header timer) */
    R_WAIT,    /* head complete; user code (on_head / not_found) has not decided yet */
    R_BODY,    /* reading the body: buffered, streamed or discarded */
    R_DONE,    /* whole request read; handler running or response being written */
    R_ABANDON, /* request given up (error answered); the connection closes after the response */
};

enum wstate { W_NONE, W_BUSY, W_DONE };
enum body_mode { B_BUFFER, B_STREAM, B_DISCARD };
enum tmode { TM_NONE, TM_IDLE, TM_HEADER, TM_STALL, TM_LINGER };
enum pev { EV_NONE, EV_HEAD, EV_PAUSE, EV_DONE };
/* F_SEND: a pool job is in sendfile(); F_WAITW: waiting for the socket to become writable */
enum fphase { F_OPEN, F_STAT, F_HEAD, F_READ, F_WRITE, F_PACE, F_SEND, F_WAITW };

struct param {
    const char *name; /* borrowed from the route pattern */
    size_t name_len;
    char *value;
};

struct qpair {
    char *name;
    char *value;
};

struct conn;

struct p2p_httpd_req {
    struct conn *conn;
    const struct p2p_httpd_route *route;
    const char *method;
    bool head;
    int http_major;
    int http_minor;
    char *url;
    size_t url_len;
    char *path;
    char *query_raw;
    struct param params[P2P_HTTPD_MAX_PARAMS];
    int nparams;
    struct qpair *query;
    int nquery;
    bool query_parsed;
    struct hstore hdrs;
    struct hstore trailers;
    bool headers_done;
    int64_t content_length;
    bool chunked;
    bool expect_continue;
    bool keep_alive;
    char *body;
    size_t body_len;
    size_t body_cap;
    size_t max_body;
    void *data;
    /* streaming */
    p2p_httpd_data_cb data_cb;
    p2p_httpd_end_cb end_cb;
    void *stream_ud;
    bool streaming;
    bool paused;
    bool ended;
    void (*abort_cb)(struct p2p_httpd_req *, void *);
    void *abort_ud;
    /* response */
    char *rhdrs;
    size_t rhdrs_len;
    bool close_after;
    bool handler_pending; /* user code owns the request until it responds */
    bool responded;
    int status;
};

struct fsend {
    struct conn *conn;
    uv_fs_t fs;
    uv_file fd;
    enum fphase phase;
    char *path;
    char *ctype;
    int status;
    uint64_t offset;
    uint64_t remaining;
    uint64_t length;
    uint64_t last; /* bytes in the chunk being written */
    p2p_httpd_pace_cb pace;
    void *pace_ud;
    void (*done)(void *ud, int status);
    void *done_ud;
    char *buf;
    char *head;
    /* sendfile path */
    bool use_sendfile;
    bool finished;    /* reported done; freed once the pool job and the poll handle are gone */
    bool working;     /* a pool job runs sendfile() */
    bool poll_open;   /* poll is initialised (closed before the struct is freed) */
    int sock;         /* dup() of the connection's socket, used by the pool job and poll */
    uv_poll_t poll;   /* writability of sock while the socket buffer is full */
    uv_work_t work;
    uint64_t sf_len;  /* bytes the job may send */
    uint64_t sf_sent; /* bytes it sent */
    int sf_err;       /* 0, or a negative errno */
    bool sf_again;    /* it stopped on EAGAIN */
    uint64_t credit;  /* bytes the pacer granted that a job could not send yet (EAGAIN) */
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_timer_t ptimer; /* file pacing */
    http_parser parser;
    struct p2p_httpd *srv; /* NULL once detached (all handles closed) */
    struct conn *prev, *next;
    struct p2p_httpd_req req;
    enum rstate rstate;
    enum wstate wstate;
    enum body_mode body_mode;
    enum tmode tmode;
    enum pev ev;
    int err_status; /* set by parser callbacks that fail on purpose (413, 414, 431) */
    char *rbuf;
    size_t in_off, in_len;
    size_t linger_bytes;
    int irefs; /* open handles + fsend objects; the struct lives while > 0 or handler_pending */
    bool reading;
    bool closing;
    bool lingering;
    bool peer_eof;
    bool continue_sent;
    bool resp_keep;
    bool in_process;
    bool again;
    bool progress;
    bool served; /* at least one request answered: idle keep-alive, not a silent new socket */
    uv_write_t wreq;
    uv_write_t creq;
    uv_shutdown_t sreq;
    char *whead;
    char *wbody;
    struct fsend *file;
    char peer[64];
};

struct p2p_httpd {
    uv_loop_t *loop;
    const struct p2p_httpd_route *routes;
    struct p2p_httpd_opts opts;
    uv_tcp_t tcp;
    uv_timer_t grace;
    bool listening;
    bool stopping;
    bool finishing;
    bool listener_closed;
    int port;
    uint32_t nconns;
    struct conn *conns;
    void (*done)(void *ud);
    void *done_ud;
};

static http_parser_settings parser_settings;
static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_process(struct conn *c);
static bool conn_parsing(const struct conn *c);
static void conn_close(struct conn *c, int err);
static void conn_release(struct conn *c);
static void response_finished(struct conn *c);
static void respond_internal(struct conn *c, int status, const char *msg);
static void file_next(struct fsend *f);
static void on_pace_timer(uv_timer_t *t);
static void file_finish(struct fsend *f, int status);
static void srv_maybe_done(struct p2p_httpd *srv);

/* ---------------------------------------------------------------------------------------------
 * small helpers
 */

static void hstore_free(struct hstore *h)
{
    free(h->buf);
    free(h->ents);
    memset(h, 0, sizeof(*h));
}

/* Appends bytes; returns -1 when the store would exceed P2P_HTTPD_MAX_HEADER. */
static int hstore_append(struct hstore *h, const char *s, size_t n)
{
    if (h->len + n + 2 > P2P_HTTPD_MAX_HEADER)
        return -1;
    if (h->len + n + 2 > h->cap) {
        size_t cap = h->cap ? h->cap : 1024;
        while (cap < h->len + n + 2)
            cap *= 2;
        if (cap > P2P_HTTPD_MAX_HEADER)
            cap = P2P_HTTPD_MAX_HEADER;
        h->buf = p2p_xrealloc(h->buf, cap);
        h->cap = cap;
    }
    memcpy(h->buf + h->len, s, n);
    h->len += n;
    return 0;
}

/* Ends the current value: trims trailing whitespace and NUL-terminates. */
static void hstore_end_value(struct hstore *h)
{
    struct hent *e = &h->ents[h->n - 1];
    while (h->len > e->value && (h->buf[h->len - 1] == ' ' || h->buf[h->len - 1] == '\t'))
        h->len--;
    h->buf[h->len++] = '\0'; /* room reserved by hstore_append's + 2 */
}

static int hstore_field(struct hstore *h, const char *at, size_t len)
{
    if (h->n == 0 || h->in_value) {
        if (h->n > 0)
            hstore_end_value(h);
        if (h->n == MAX_HEADERS)
            return -1;
        if (h->n == h->nalloc) {
            h->nalloc = h->nalloc ? h->nalloc * 2 : 16;
            h->ents = p2p_xrealloc(h->ents, h->nalloc * sizeof(*h->ents));
        }
        h->ents[h->n].name = (uint32_t)h->len;
        h->ents[h->n].value = (uint32_t)h->len;
        h->n++;
        h->in_value = false;
    }
    return hstore_append(h, at, len);
}

static int hstore_value(struct hstore *h, const char *at, size_t len)
{
    if (h->n == 0)
        return -1;
    if (!h->in_value) {
        h->buf[h->len++] = '\0';
        h->ents[h->n - 1].value = (uint32_t)h->len;
        h->in_value = true;
    }
    return hstore_append(h, at, len);
}

/* Terminates the last entry; every value is a NUL-terminated string afterwards. */
static void hstore_finish(struct hstore *h)
{
    if (h->n == 0 || h->finished)
        return;
    if (!h->in_value) { /* a field without a value: give it "" */
        h->buf[h->len++] = '\0';
        h->ents[h->n - 1].value = (uint32_t)h->len;
    }
    hstore_end_value(h);
    h->finished = true;
}

static const char *hstore_get(const struct hstore *h, const char *name, int *count)
{
    const char *first = NULL;
    int cnt = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->buf + h->ents[i].name, name) == 0) {
            if (!first)
                first = h->buf + h->ents[i].value;
            cnt++;
        }
    }
    if (count)
        *count = cnt;
    return first;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into a new string; NULL on a bad escape, a NUL, or (when !allow_slash)
 * a decoded '/'. */
static char *pct_decode(const char *s, size_t len, bool plus_space, bool allow_slash)
{
    char *out = p2p_xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= len)
                goto fail;
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                goto fail;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (ch == '\0' || (ch == '/' && !allow_slash))
            goto fail;
        out[o++] = ch;
    }
    out[o] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

static bool header_char_ok(char ch)
{
    return ch != '\r' && ch != '\n' && ch != '\0';
}

static void format_date(char *out, size_t outlen)
{
    static __thread time_t cached_t;
    static __thread char cached[40];
    time_t now = time(NULL);
    if (now != cached_t || cached[0] == '\0') {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_t = now;
    }
    snprintf(out, outlen, "%s", cached);
}

static const char *status_text(int status)
{
    const char *s = http_status_str((enum http_status)status);
    if (!s || s[0] == '<')
        return "Unknown";
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * request reset
 */

static void req_reset(struct p2p_httpd_req *req)
{
    struct conn *c = req->conn;
    free(req->url);
    free(req->path);
    free(req->query_raw);
    for (int i = 0; i < req->nparams; i++)
        free(req->params[i].value);
    for (int i = 0; i < req->nquery; i++) {
        free(req->query[i].name);
        free(req->query[i].value);
    }
    free(req->query);
    hstore_free(&req->hdrs);
    hstore_free(&req->trailers);
    free(req->body);
    free(req->rhdrs);
    memset(req, 0, sizeof(*req));
    req->conn = c;
    req->content_length = -1;
}

/* ---------------------------------------------------------------------------------------------
 * http-parser callbacks: record, pause, and let conn_process act outside the parser
 */

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->rstate = R_HEAD;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct p2p_httpd_req *req = &c->req;
    if (req->url_len + len > MAX_URL) {
        c->err_status = 414;
        return -1;
    }
    req->url = p2p_xrealloc(req->url, req->url_len + len + 1);
    memcpy(req->url + req->url_len, at, len);
    req->url_len += len;
    req->url[req->url_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct hstore *h = c->req.headers_done ? &c->req.trailers : &c->req.hdrs;
    if (hstore_field(h, at, len) < 0) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct hstore *h = c->req.headers_done ? &c->req.trailers : &c->req.hdrs;
    if (hstore_value(h, at, len) < 0) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct p2p_httpd_req *req = &c->req;
    hstore_finish(&req->hdrs);
    req->headers_done = true;
    req->method = http_method_str((enum http_method)p->method);
    req->head = p->method == HTTP_HEAD;
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    req->chunked = (p->flags & F_CHUNKED) != 0;
    req->content_length = (p->flags & F_CONTENTLENGTH) && !req->chunked
                              ? (int64_t)p->content_length
                              : -1;
    req->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    const char *expect = hstore_get(&req->hdrs, "Expect", NULL);
    /* RFC 7231 5.1.1: 100-continue is meaningful for HTTP/1.1 requests only. */
    req->expect_continue = expect && strcasecmp(expect, "100-continue") == 0 &&
                           (p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1));
    c->ev = EV_HEAD;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct p2p_httpd_req *req = &c->req;
    switch (c->body_mode) {
    case B_BUFFER:
        if (req->body_len + len > req->max_body) {
            c->err_status = 413;
            return -1;
        }
        if (req->body_len + len + 1 > req->body_cap) {
            size_t cap = req->body_cap ? req->body_cap : 4096;
            while (cap < req->body_len + len + 1)
                cap *= 2;
            if (cap > req->max_body + 1)
                cap = req->max_body + 1;
            req->body = p2p_xrealloc(req->body, cap);
            req->body_cap = cap;
        }
        memcpy(req->body + req->body_len, at, len);
        req->body_len += len;
        req->body[req->body_len] = '\0';
        break;
    case B_STREAM:
        if (req->data_cb && !req->responded && len > 0)
            req->data_cb(req, at, len, req->stream_ud);
        /* Paused by the consumer, or it answered and the rest is abandoned: stop here. */
        if (!conn_parsing(c)) {
            c->ev = EV_PAUSE;
            http_parser_pause(p, 1);
        }
        break;
    case B_DISCARD:
        break;
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    hstore_finish(&c->req.trailers);
    c->ev = EV_DONE;
    http_parser_pause(p, 1);
    return 0;
}

static void settings_init(void)
{
    static bool done;
    if (done)
        return;
    http_parser_settings_init(&parser_settings);
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
    /* Process-wide in http-parser; this module is its only user. */
    http_parser_set_max_header_size(P2P_HTTPD_MAX_HEADER);
    done = true;
}

/* ---------------------------------------------------------------------------------------------
 * routing
 */

struct span {
    const char *name;
    size_t name_len;
    const char *val;
    size_t val_len;
    bool rest;
};

/* Structural match of path against pattern; records parameter spans (not yet decoded). */
static bool route_match(const char *pat, const char *path, struct span *sp, int *nsp)
{
    const char *p = pat, *s = path;
    int n = 0;
    while (*p) {
        if (p[0] == '*' && p[1] == '\0') {
            if (n == P2P_HTTPD_MAX_PARAMS)
                return false;
            sp[n++] = (struct span){"*", 1, s, strlen(s), true};
            *nsp = n;
            return true;
        }
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (!close || n == P2P_HTTPD_MAX_PARAMS)
                return false;
            const char *end = strchr(s, '/');
            size_t vlen = end ? (size_t)(end - s) : strlen(s);
            if (vlen == 0)
                return false;
            sp[n++] = (struct span){p + 1, (size_t)(close - p - 1), s, vlen, false};
            p = close + 1;
            s += vlen;
            continue;
        }
        if (*p != *s) {
            /* A pattern ending in "/" + "*" also matches the path without that slash. */
            if (*s == '\0' && p[0] == '/' && p[1] == '*' && p[2] == '\0' &&
                n < P2P_HTTPD_MAX_PARAMS) {
                sp[n++] = (struct span){"*", 1, s, 0, true};
                *nsp = n;
                return true;
            }
            return false;
        }
        p++;
        s++;
    }
    *nsp = n;
    return *s == '\0';
}

static bool method_matches(const char *route_method, const struct p2p_httpd_req *req)
{
    if (!route_method)
        return true;
    if (strcmp(route_method, req->method) == 0)
        return true;
    return req->head && strcmp(route_method, "GET") == 0;
}

/* Appends method to the comma-separated list unless already there. */
static void allow_add(char *allow, size_t allowlen, const char *m)
{
    size_t ml = strlen(m);
    for (const char *q = allow; *q;) {
        const char *e = strchr(q, ',');
        size_t l = e ? (size_t)(e - q) : strlen(q);
        if (l == ml && memcmp(q, m, ml) == 0)
            return;
        q += l;
        while (*q == ',' || *q == ' ')
            q++;
    }
    size_t al = strlen(allow);
    snprintf(allow + al, allowlen - al, "%s%s", al ? ", " : "", m);
}

/* Finds the route; fills params. Sets *path_matched when some route matched the path only. */
static const struct p2p_httpd_route *route_find(struct p2p_httpd *srv, struct p2p_httpd_req *req,
                                                char *allow, size_t allowlen)
{
    struct span sp[P2P_HTTPD_MAX_PARAMS];
    int nsp = 0;
    allow[0] = '\0';
    for (const struct p2p_httpd_route *r = srv->routes; r && r->path; r++) {
        if (!route_match(r->path, req->path, sp, &nsp))
            continue;
        if (!method_matches(r->method, req)) {
            allow_add(allow, allowlen, r->method);
            if (strcmp(r->method, "GET") == 0)
                allow_add(allow, allowlen, "HEAD");
            continue;
        }
        bool ok = true;
        int np = 0;
        for (int i = 0; i < nsp; i++) {
            char *v = pct_decode(sp[i].val, sp[i].val_len, false, sp[i].rest);
            if (!v) {
                ok = false;
                break;
            }
            req->params[np++] = (struct param){sp[i].name, sp[i].name_len, v};
        }
        if (!ok) {
            for (int i = 0; i < np; i++)
                free(req->params[i].value);
            continue;
        }
        req->nparams = np;
        return r;
    }
    return NULL;
}

/* Splits req->url into path and raw query. Returns -1 if it is not a usable request target:
 * origin-form ("/..."), absolute-form ("http://host/...", path "/" when it has none) or the
 * asterisk-form, exactly "*" (path "*"). Anything else (http-parser also takes "*.1" or "*?x")
 * is refused, so handlers only ever see a path that starts with '/' or is "*". */
static int req_split_url(struct p2p_httpd_req *req)
{
    const char *u = req->url ? req->url : "";
    if (u[0] == '*') {
        if (req->url_len != 1)
            return -1;
        req->path = p2p_xstrdup("*");
        return 0;
    }
    if (u[0] == '/') {
        const char *q = strchr(u, '?');
        const char *h = strchr(u, '#');
        size_t plen = q ? (size_t)(q - u) : (h ? (size_t)(h - u) : strlen(u));
        req->path = p2p_xstrndup(u, plen);
        if (q) {
            size_t qlen = h && h > q ? (size_t)(h - q - 1) : strlen(q + 1);
            req->query_raw = p2p_xstrndup(q + 1, qlen);
        }
        return 0;
    }
    struct http_parser_url pu;
    http_parser_url_init(&pu);
    if (http_parser_parse_url(u, req->url_len, 0, &pu) != 0)
        return -1;
    if (pu.field_set & (1 << UF_PATH)) {
        if (u[pu.field_data[UF_PATH].off] != '/')
            return -1;
        req->path = p2p_xstrndup(u + pu.field_data[UF_PATH].off, pu.field_data[UF_PATH].len);
    } else {
        req->path = p2p_xstrdup("/");
    }
    if (pu.field_set & (1 << UF_QUERY))
        req->query_raw =
            p2p_xstrndup(u + pu.field_data[UF_QUERY].off, pu.field_data[UF_QUERY].len);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * connection control: reading, timers, closing
 */

static bool conn_parsing(const struct conn *c)
{
    if (c->rstate == R_IDLE || c->rstate == R_HEAD)
        return true;
    return c->rstate == R_BODY && !(c->body_mode == B_STREAM && c->req.paused);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    if (!c->rbuf)
        c->rbuf = p2p_xmalloc(RBUF_SIZE);
    if (c->lingering)
        c->in_off = c->in_len = 0;
    if (c->in_off > 0) {
        memmove(c->rbuf, c->rbuf + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    buf->base = c->rbuf + c->in_len;
    buf->len = RBUF_SIZE - c->in_len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_update_reading(struct conn *c)
{
    bool want;
    if (c->closing)
        return;
    if (c->lingering)
        want = true;
    else if (c->peer_eof || c->rstate == R_ABANDON)
        want = false;
    else if (conn_parsing(c))
        want = c->in_off == c->in_len;
    else if (c->rstate == R_BODY) /* paused by the consumer */
        want = false;
    else /* handler or response in progress: read ahead (bounded) to notice a reset peer */
        want = c->in_len - c->in_off < RBUF_SIZE;
    if (want && !c->reading) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc < 0) {
            conn_close(c, rc);
            return;
        }
        c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_timer(uv_timer_t *t);

static void conn_update_timer(struct conn *c)
{
    struct p2p_httpd *srv = c->srv;
    enum tmode want = TM_NONE;
    uint64_t ms = 0;
    if (c->closing || !srv)
        return;
    if (c->lingering) {
        want = TM_LINGER;
        ms = LINGER_MS;
    } else if (c->rstate == R_HEAD) {
        want = TM_HEADER;
        ms = srv->opts.header_timeout_ms;
    } else if (c->wstate == W_BUSY && !(c->file && c->file->phase == F_PACE)) {
        want = TM_STALL;
        ms = srv->opts.idle_timeout_ms;
    } else if (c->rstate == R_BODY && conn_parsing(c)) {
        want = TM_STALL;
        ms = srv->opts.idle_timeout_ms;
    } else if (c->rstate == R_IDLE) {
        /* A new connection that never sends a byte gets the header timeout, not the keep-alive
         * idle one, so silent sockets cannot hold connection slots for a minute each. */
        want = TM_IDLE;
        ms = c->served ? srv->opts.idle_timeout_ms : srv->opts.header_timeout_ms;
    }
    if (want != c->tmode || (want == TM_STALL && c->progress)) {
        uv_timer_stop(&c->timer);
        if (want != TM_NONE)
            uv_timer_start(&c->timer, on_timer, ms, 0);
        c->tmode = want;
    }
    c->progress = false;
}

static void conn_kick(struct conn *c)
{
    if (c->in_process)
        c->again = true;
    else
        conn_process(c);
}

static void on_handle_close(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->irefs--;
    conn_release(c);
}

static void conn_free(struct conn *c)
{
    req_reset(&c->req);
    free(c->rbuf);
    free(c->whead);
    free(c->wbody);
    free(c);
}

/* Drops the server link once every handle and fs request is gone; frees the connection when the
 * handler has also responded. Only called from close/fs callbacks or a late respond. */
static void conn_release(struct conn *c)
{
    if (c->irefs > 0)
        return;
    struct p2p_httpd *srv = c->srv;
    if (srv) {
        if (c->prev)
            c->prev->next = c->next;
        else
            srv->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        c->srv = NULL;
        srv->nconns--;
        srv_maybe_done(srv);
    }
    if (!c->req.handler_pending)
        conn_free(c);
}

static void conn_close(struct conn *c, int err)
{
    struct p2p_httpd_req *req = &c->req;
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    uv_close((uv_handle_t *)&c->tcp, on_handle_close);
    uv_close((uv_handle_t *)&c->timer, on_handle_close);
    uv_close((uv_handle_t *)&c->ptimer, on_handle_close);
    if (c->file && (c->file->phase == F_PACE || c->file->phase == F_WAITW))
        file_finish(c->file, UV_ECANCELED);
    if (req->handler_pending && !req->responded) {
        if (req->streaming && !req->ended && req->end_cb) {
            req->ended = true;
            req->end_cb(req, err < 0 ? err : UV_ECONNRESET, req->stream_ud);
        } else if (req->abort_cb) {
            void (*cb)(struct p2p_httpd_req *, void *) = req->abort_cb;
            req->abort_cb = NULL;
            cb(req, req->abort_ud);
        }
    }
}

static void on_shutdown(uv_shutdown_t *r, int status)
{
    struct conn *c = r->data;
    if (status < 0 && status != UV_ECANCELED)
        conn_close(c, status);
}

/* Closes after a response. When the client may still be sending (body not read, pipelined bytes),
 * send FIN and read off its bytes for a while first, so it sees our response instead of a RST. */
static void conn_finish_close(struct conn *c)
{
    if (c->closing)
        return;
    bool pending_input = c->rstate != R_DONE || c->in_off != c->in_len;
    if (!pending_input || c->peer_eof) {
        conn_close(c, 0);
        return;
    }
    c->lingering = true;
    c->in_off = c->in_len = 0;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c, 0);
        return;
    }
    conn_kick(c);
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    enum tmode m = c->tmode;
    c->tmode = TM_NONE;
    switch (m) {
    case TM_HEADER:
        p2p_debug("httpd %s: header timeout", c->peer);
        if (c->wstate != W_BUSY) {
            c->rstate = R_ABANDON;
            respond_internal(c, 408, "request header timeout");
        } else {
            conn_close(c, UV_ETIMEDOUT);
        }
        break;
    case TM_STALL:
        p2p_debug("httpd %s: stalled", c->peer);
        conn_close(c, UV_ETIMEDOUT);
        break;
    case TM_IDLE:
    case TM_LINGER:
    case TM_NONE:
        conn_close(c, 0);
        break;
    }
}

/* ---------------------------------------------------------------------------------------------
 * dispatch
 */

static bool req_has_body(const struct p2p_httpd_req *req)
{
    return req->chunked || req->content_length > 0;
}

static void send_continue(struct conn *c)
{
    if (c->continue_sent || !c->req.expect_continue || !req_has_body(&c->req))
        return;
    c->continue_sent = true;
    uv_buf_t b = uv_buf_init((char *)continue_line, sizeof(continue_line) - 1);
    c->creq.data = c;
    int rc = uv_write(&c->creq, (uv_stream_t *)&c->tcp, &b, 1, NULL);
    if (rc < 0)
        conn_close(c, rc);
}

static void dispatch_head(struct conn *c)
{
    struct p2p_httpd *srv = c->srv;
    struct p2p_httpd_req *req = &c->req;
    char allow[256];

    if (srv->stopping)
        req->keep_alive = false;
    if (req_split_url(req) < 0) {
        c->rstate = R_ABANDON;
        respond_internal(c, 400, "bad request target");
        return;
    }
    c->rstate = R_WAIT;
    const struct p2p_httpd_route *r = route_find(srv, req, allow, sizeof(allow));
    if (!r) {
        if (srv->opts.not_found) {
            req->handler_pending = true;
            srv->opts.not_found(req, srv->opts.not_found_ud);
        } else if (allow[0]) {
            p2p_httpd_add_header(req, "Allow", allow);
            p2p_httpd_respond_error(req, 405, "E001", "method not allowed");
        } else {
            p2p_httpd_respond_error(req, 404, "E001", "not found");
        }
        return;
    }
    req->route = r;
    req->max_body = r->max_body ? r->max_body : P2P_HTTPD_MAX_JSON_BODY;
    if (r->on_head) {
        req->handler_pending = true;
        r->on_head(req, r->ud);
        return;
    }
    if (req->content_length > 0 && (uint64_t)req->content_length > req->max_body) {
        p2p_httpd_respond_error(req, 413, "E001", "request body too large (max %zu bytes)",
                                req->max_body);
        return;
    }
    send_continue(c);
    c->body_mode = B_BUFFER;
    c->rstate = R_BODY;
}

static void next_request(struct conn *c)
{
    c->served = true;
    req_reset(&c->req);
    c->rstate = R_IDLE;
    c->wstate = W_NONE;
    c->body_mode = B_BUFFER;
    c->continue_sent = false;
    c->err_status = 0;
    if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
        free(c->rbuf); /* idle keep-alive connections hold no read buffer */
        c->rbuf = NULL;
    }
    conn_kick(c);
}

static void message_done(struct conn *c)
{
    struct p2p_httpd_req *req = &c->req;
    c->rstate = R_DONE;
    if (req->responded) { /* body drained after an early response */
        if (c->wstate == W_DONE)
            next_request(c);
        return;
    }
    if (c->body_mode == B_STREAM) {
        req->ended = true;
        if (req->end_cb)
            req->end_cb(req, 0, req->stream_ud);
        return;
    }
    req->handler_pending = true;
    req->route->handler(req, req->route->ud);
}

static void protocol_error(struct conn *c, enum http_errno e)
{
    struct p2p_httpd_req *req = &c->req;
    int status = c->err_status ? c->err_status : (e == HPE_HEADER_OVERFLOW ? 431 : 400);
    p2p_debug("httpd %s: parse error %s (%d)", c->peer, http_errno_name(e), status);
    if (c->rstate == R_BODY && req->streaming && !req->responded) {
        conn_close(c, UV_EPROTO); /* end(< 0); the handler's response is dropped */
        return;
    }
    if (req->responded) { /* draining after an early response */
        c->rstate = R_ABANDON;
        if (c->wstate == W_DONE)
            conn_finish_close(c);
        return;
    }
    c->rstate = R_ABANDON;
    respond_internal(c, status,
                     status == 431   ? "request header too large"
                     : status == 414 ? "request target too long"
                     : status == 413 ? "request body too large"
                                     : "malformed request");
}

/* One step of the state machine: parse what is buffered, act on what the parser reported. */
static void conn_step(struct conn *c)
{
    if (!conn_parsing(c) || c->in_off == c->in_len)
        return;
    c->ev = EV_NONE;
    size_t n = http_parser_execute(&c->parser, &parser_settings, c->rbuf + c->in_off,
                                   c->in_len - c->in_off);
    size_t avail = c->in_len - c->in_off;
    c->in_off += n;
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) {
        http_parser_pause(&c->parser, 0);
    } else if (e != HPE_OK || (n < avail && c->ev == EV_NONE)) {
        protocol_error(c, e == HPE_OK ? HPE_UNKNOWN : e);
        return;
    }
    if (c->closing)
        return;
    switch (c->ev) {
    case EV_HEAD:
        dispatch_head(c);
        break;
    case EV_DONE:
        message_done(c);
        break;
    case EV_PAUSE:
    case EV_NONE:
        break;
    }
    if (n > 0 || c->ev != EV_NONE)
        c->again = true;
}

static void conn_process(struct conn *c)
{
    if (c->in_process) {
        c->again = true;
        return;
    }
    c->in_process = true;
    do {
        c->again = false;
        conn_step(c);
    } while (c->again && !c->closing);
    c->in_process = false;
    if (c->closing)
        return;
    /* A half-closed client that we would have to wait on: nothing more can come. */
    if (c->peer_eof && !c->lingering && conn_parsing(c) && c->in_off == c->in_len &&
        c->wstate != W_BUSY && !c->req.handler_pending) {
        conn_close(c, UV_EOF);
        return;
    }
    conn_update_reading(c);
    conn_update_timer(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread == 0 || c->closing)
        return;
    if (nread == UV_ENOBUFS) { /* buffer full: wait until it drains */
        uv_read_stop(s);
        c->reading = false;
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF || c->lingering) {
            conn_close(c, (int)nread);
            return;
        }
        c->peer_eof = true;
        uv_read_stop(s);
        c->reading = false;
        /* The client went away while user code still works on its request (nginx's 499):
         * abort. Otherwise treat it as a half-close and finish what is buffered. */
        if (c->req.handler_pending && !c->req.responded) {
            conn_close(c, UV_ECONNRESET);
            return;
        }
        conn_process(c);
        return;
    }
    c->progress = true;
    if (c->lingering) {
        c->linger_bytes += (size_t)nread;
        c->in_off = c->in_len = 0;
        if (c->linger_bytes > LINGER_MAX)
            conn_close(c, 0);
        return;
    }
    c->in_len += (size_t)nread;
    conn_process(c);
}

/* ---------------------------------------------------------------------------------------------
 * accept, listen, shutdown
 */

static void srv_on_close_grace(uv_handle_t *h)
{
    struct p2p_httpd *srv = h->data;
    if (srv->done)
        srv->done(srv->done_ud);
    free(srv);
}

static void srv_maybe_done(struct p2p_httpd *srv)
{
    if (!srv->stopping || srv->finishing || !srv->listener_closed || srv->nconns > 0)
        return;
    srv->finishing = true;
    uv_close((uv_handle_t *)&srv->grace, srv_on_close_grace);
}

/* Sets up a connection around a socket: accepted from the listener (fd < 0) or already
 * connected (p2p_httpd_adopt). Returns 0, or a negative libuv error (the connection is closed
 * and an adopted fd stays the caller's). */
static int conn_start(struct p2p_httpd *srv, uv_os_sock_t fd)
{
    struct conn *c = p2p_xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->req.conn = c;
    c->req.content_length = -1;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    uv_timer_init(srv->loop, &c->ptimer);
    c->tcp.data = c->timer.data = c->ptimer.data = c;
    c->irefs = 3;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    int rc = fd < 0 ? uv_accept((uv_stream_t *)&srv->tcp, (uv_stream_t *)&c->tcp)
                    : uv_tcp_open(&c->tcp, fd);
    if (rc < 0) {
        conn_close(c, rc);
        return rc;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    snprintf(c->peer, sizeof(c->peer), "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[INET6_ADDRSTRLEN] = "";
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip, ntohs(a->sin6_port));
        } else if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            snprintf(c->peer, sizeof(c->peer), "%s:%u", ip, ntohs(a->sin_port));
        }
    }
    if (srv->nconns > srv->opts.max_conns) {
        p2p_warn("httpd: too many connections (%u), refusing %s", srv->nconns, c->peer);
        c->rstate = R_ABANDON;
        respond_internal(c, 503, "too many connections");
        return 0;
    }
    conn_process(c);
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct p2p_httpd *srv = server->data;
    if (status < 0) {
        p2p_warn("httpd: accept: %s", uv_strerror(status));
        return;
    }
    conn_start(srv, -1);
}

int p2p_httpd_adopt(struct p2p_httpd *srv, uv_os_sock_t fd)
{
    if (srv->stopping || fd < 0)
        return UV_EINVAL;
    return conn_start(srv, fd);
}

struct p2p_httpd *p2p_httpd_new(uv_loop_t *loop, const struct p2p_httpd_route *routes,
                                const struct p2p_httpd_opts *opts)
{
    settings_init();
    struct p2p_httpd *srv = p2p_xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->routes = routes;
    if (opts)
        srv->opts = *opts;
    if (!srv->opts.header_timeout_ms)
        srv->opts.header_timeout_ms = 10000;
    if (!srv->opts.idle_timeout_ms)
        srv->opts.idle_timeout_ms = 60000;
    if (!srv->opts.max_conns)
        srv->opts.max_conns = 10000;
    srv->port = -1;
    srv->listener_closed = true;
    return srv;
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
    char host[256];
    const char *colon;
    const char *hs = addr, *he;
    if (!addr)
        return UV_EINVAL;
    if (addr[0] == '[') {
        he = strchr(addr, ']');
        if (!he || he[1] != ':')
            return UV_EINVAL;
        hs = addr + 1;
        colon = he + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return UV_EINVAL;
        he = colon;
    }
    uint64_t port;
    if (p2p_parse_u64(colon + 1, strlen(colon + 1), &port) < 0 || port > 65535)
        return UV_EINVAL;
    size_t hl = (size_t)(he - hs);
    if (hl >= sizeof(host))
        return UV_EINVAL;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (hl == 0)
        snprintf(host, sizeof(host), "0.0.0.0");
    else if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (addr[0] == '[')
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

int p2p_httpd_listen(struct p2p_httpd *srv, const char *addr)
{
    struct sockaddr_storage ss;
    int rc;
    memset(&ss, 0, sizeof(ss));
    if (srv->listening || srv->stopping)
        return UV_EALREADY;
    rc = parse_addr(addr, &ss);
    if (rc < 0)
        return rc;
    uv_tcp_init(srv->loop, &srv->tcp);
    srv->tcp.data = srv;
    srv->listening = true;
    srv->listener_closed = false;
    rc = uv_tcp_bind(&srv->tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->tcp, 511, on_connection);
    if (rc == 0) {
        int len = sizeof(ss);
        rc = uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&ss, &len);
        if (rc == 0)
            srv->port = ntohs(ss.ss_family == AF_INET6
                                  ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                  : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return rc;
}

int p2p_httpd_port(const struct p2p_httpd *srv)
{
    return srv->port;
}

static void srv_on_listener_close(uv_handle_t *h)
{
    struct p2p_httpd *srv = h->data;
    srv->listener_closed = true;
    srv_maybe_done(srv);
}

static void srv_on_grace(uv_timer_t *t)
{
    struct p2p_httpd *srv = t->data;
    for (struct conn *c = srv->conns; c; c = c->next)
        conn_close(c, UV_ECANCELED);
}

void p2p_httpd_shutdown(struct p2p_httpd *srv, uint64_t grace_ms, void (*done)(void *ud), void *ud)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    srv->done = done;
    srv->done_ud = ud;
    uv_timer_init(srv->loop, &srv->grace);
    srv->grace.data = srv;
    if (srv->listening)
        uv_close((uv_handle_t *)&srv->tcp, srv_on_listener_close);
    for (struct conn *c = srv->conns; c; c = c->next) {
        bool idle = c->lingering || (c->rstate == R_IDLE && c->in_off == c->in_len &&
                                     c->wstate != W_BUSY && !c->req.handler_pending);
        if (idle)
            conn_close(c, UV_ECANCELED);
    }
    if (srv->nconns > 0)
        uv_timer_start(&srv->grace, srv_on_grace, grace_ms, 0);
    srv_maybe_done(srv);
}

/* ---------------------------------------------------------------------------------------------
 * request accessors
 */

const char *p2p_httpd_method(const struct p2p_httpd_req *req)
{
    return req->method ? req->method : "";
}

bool p2p_httpd_is_head(const struct p2p_httpd_req *req)
{
    return req->head;
}

const char *p2p_httpd_path(const struct p2p_httpd_req *req)
{
    return req->path ? req->path : "";
}

const char *p2p_httpd_param(const struct p2p_httpd_req *req, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < req->nparams; i++) {
        if (req->params[i].name_len == nl && memcmp(req->params[i].name, name, nl) == 0)
            return req->params[i].value;
    }
    return NULL;
}

static void query_parse(struct p2p_httpd_req *req)
{
    req->query_parsed = true;
    const char *s = req->query_raw;
    if (!s)
        return;
    req->query = p2p_xcalloc(MAX_QUERY_PAIRS, sizeof(*req->query));
    while (*s && req->nquery < MAX_QUERY_PAIRS) {
        const char *amp = strchr(s, '&');
        size_t len = amp ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        size_t kl = eq ? (size_t)(eq - s) : len;
        if (kl > 0) {
            char *k = pct_decode(s, kl, true, true);
            char *v = eq ? pct_decode(eq + 1, len - kl - 1, true, true) : p2p_xstrdup("");
            if (k && v) {
                req->query[req->nquery++] = (struct qpair){k, v};
            } else {
                free(k);
                free(v);
            }
        }
        s += len;
        if (*s == '&')
            s++;
    }
}

const char *p2p_httpd_query(struct p2p_httpd_req *req, const char *name)
{
    if (!req->query_parsed)
        query_parse(req);
    for (int i = 0; i < req->nquery; i++) {
        if (strcmp(req->query[i].name, name) == 0)
            return req->query[i].value;
    }
    return NULL;
}

const char *p2p_httpd_header(const struct p2p_httpd_req *req, const char *name)
{
    return hstore_get(&req->hdrs, name, NULL);
}

int p2p_httpd_header_count(const struct p2p_httpd_req *req, const char *name)
{
    int n = 0;
    hstore_get(&req->hdrs, name, &n);
    return n;
}

bool p2p_httpd_header_at(const struct p2p_httpd_req *req, size_t i, const char **name,
                         const char **value)
{
    if (i >= req->hdrs.n || !req->headers_done)
        return false;
    *name = req->hdrs.buf + req->hdrs.ents[i].name;
    *value = req->hdrs.buf + req->hdrs.ents[i].value;
    return true;
}

const char *p2p_httpd_trailer(const struct p2p_httpd_req *req, const char *name)
{
    if (!req->ended && req->conn->rstate != R_DONE)
        return NULL;
    return hstore_get(&req->trailers, name, NULL);
}

const char *p2p_httpd_body(const struct p2p_httpd_req *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    if (req->streaming)
        return NULL;
    return req->body ? req->body : "";
}

int64_t p2p_httpd_content_length(const struct p2p_httpd_req *req)
{
    return req->content_length;
}

bool p2p_httpd_is_chunked(const struct p2p_httpd_req *req)
{
    return req->chunked;
}

const char *p2p_httpd_peer(const struct p2p_httpd_req *req)
{
    return req->conn->peer;
}

void p2p_httpd_set_data(struct p2p_httpd_req *req, void *data)
{
    req->data = data;
}

void *p2p_httpd_get_data(const struct p2p_httpd_req *req)
{
    return req->data;
}

/* ---------------------------------------------------------------------------------------------
 * streaming request bodies
 */

void p2p_httpd_stream_body(struct p2p_httpd_req *req, p2p_httpd_data_cb data, p2p_httpd_end_cb end,
                           void *ud)
{
    struct conn *c = req->conn;
    if (req->responded || req->streaming || c->closing || c->rstate != R_WAIT)
        return;
    req->data_cb = data;
    req->end_cb = end;
    req->stream_ud = ud;
    req->streaming = true;
    c->body_mode = B_STREAM;
    c->rstate = R_BODY;
    send_continue(c);
    conn_kick(c);
}

void p2p_httpd_pause(struct p2p_httpd_req *req)
{
    struct conn *c = req->conn;
    if (!req->streaming || req->paused)
        return;
    req->paused = true;
    if (!c->in_process && !c->closing) { /* outside the parser: just stop reading */
        conn_update_reading(c);
        conn_update_timer(c);
    }
}

void p2p_httpd_resume(struct p2p_httpd_req *req)
{
    struct conn *c = req->conn;
    if (!req->paused)
        return;
    req->paused = false;
    if (!c->closing)
        conn_kick(c);
}

void p2p_httpd_on_abort(struct p2p_httpd_req *req, void (*cb)(struct p2p_httpd_req *, void *),
                        void *ud)
{
    req->abort_cb = cb;
    req->abort_ud = ud;
}

/* ---------------------------------------------------------------------------------------------
 * responses
 */

void p2p_httpd_add_header(struct p2p_httpd_req *req, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    req->rhdrs = p2p_xrealloc(req->rhdrs, req->rhdrs_len + nl + vl + 5);
    char *o = req->rhdrs + req->rhdrs_len;
    memcpy(o, name, nl);
    o += nl;
    *o++ = ':';
    *o++ = ' ';
    for (size_t i = 0; i < vl; i++) /* no header injection through values */
        *o++ = header_char_ok(value[i]) ? value[i] : ' ';
    *o++ = '\r';
    *o++ = '\n';
    req->rhdrs_len = (size_t)(o - req->rhdrs);
}

void p2p_httpd_add_headerf(struct p2p_httpd_req *req, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    if (vasprintf(&v, fmt, ap) < 0)
        abort();
    va_end(ap);
    p2p_httpd_add_header(req, name, v);
    free(v);
}

void p2p_httpd_close_after(struct p2p_httpd_req *req)
{
    req->close_after = true;
}

/*
 * Common start of every respond_*: marks the request answered and decides what happens to the
 * rest of the request and the connection. Returns false when nothing is to be written (the
 * connection is gone); the request may then have been freed.
 */
static bool respond_begin(struct p2p_httpd_req *req, int status)
{
    struct conn *c = req->conn;
    if (req->responded) {
        p2p_error("httpd: second response (%d) for %s %s ignored", status, p2p_httpd_method(req),
                  p2p_httpd_path(req));
        return false;
    }
    req->responded = true;
    req->status = status;
    req->abort_cb = NULL;
    bool was_pending = req->handler_pending;
    if (c->closing) {
        req->handler_pending = false;
        if (was_pending && c->irefs == 0)
            conn_free(c);
        return false;
    }
    if (c->rstate == R_ABANDON) {
        req->close_after = true;
    } else if (c->rstate != R_DONE) {
        /* Early response (RFC 7230 6.6): drain a small known body to keep the connection,
         * otherwise close. If the client waits for 100-continue it may or may not send. */
        bool waiting = req->expect_continue && !c->continue_sent && req_has_body(req);
        uint64_t left = c->rstate == R_WAIT ? (uint64_t)(req->content_length > 0
                                                             ? req->content_length
                                                             : 0)
                                            : c->parser.content_length;
        bool drain = !req->chunked && !waiting && left <= DRAIN_MAX;
        if (drain) {
            c->body_mode = B_DISCARD;
            req->paused = false;
            c->rstate = R_BODY;
        } else {
            req->close_after = true;
            c->rstate = R_ABANDON;
        }
    }
    c->resp_keep = req->keep_alive && !req->close_after && !(c->srv && c->srv->stopping);
    c->wstate = W_BUSY;
    req->handler_pending = false;
    return true;
}

static char *build_head(struct conn *c, int status, const char *ctype, bool send_length,
                        uint64_t length, size_t *outlen)
{
    struct p2p_httpd_req *req = &c->req;
    char date[64];
    char cl[64] = "";
    format_date(date, sizeof(date));
    if (send_length)
        snprintf(cl, sizeof(cl), "Content-Length: %llu\r\n", (unsigned long long)length);
    char *head = p2p_xasprintf("HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\n%s%s%s%s%.*s\r\n",
                               status, status_text(status), date,
                               c->resp_keep ? "keep-alive" : "close",
                               ctype ? "Content-Type: " : "", ctype ? ctype : "",
                               ctype ? "\r\n" : "", cl, (int)req->rhdrs_len,
                               req->rhdrs ? req->rhdrs : "");
    *outlen = strlen(head);
    return head;
}

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

static void on_resp_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    free(c->whead);
    free(c->wbody);
    c->whead = c->wbody = NULL;
    if (status < 0) {
        conn_close(c, status);
        return;
    }
    c->progress = true;
    response_finished(c);
}

void p2p_httpd_respond(struct p2p_httpd_req *req, int status, const char *content_type,
                       const void *body, size_t len)
{
    struct conn *c = req->conn;
    if (!respond_begin(req, status))
        return;
    bool with_body = status_has_body(status);
    if (!with_body)
        len = 0;
    size_t hl;
    c->whead = build_head(c, status, len ? content_type : NULL, with_body, len, &hl);
    uv_buf_t bufs[2];
    unsigned nb = 1;
    bufs[0] = uv_buf_init(c->whead, (unsigned)hl);
    if (len > 0 && !req->head) {
        c->wbody = p2p_xmalloc(len);
        memcpy(c->wbody, body, len);
        bufs[1] = uv_buf_init(c->wbody, (unsigned)len);
        nb = 2;
    }
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, nb, on_resp_write);
    if (rc < 0) {
        free(c->whead);
        free(c->wbody);
        c->whead = c->wbody = NULL;
        conn_close(c, rc);
        return;
    }
    conn_kick(c);
}

void p2p_httpd_respond_json(struct p2p_httpd_req *req, int status, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!s) {
        static const char err[] = "{\"code\":\"E001\",\"msg\":\"internal error\"}";
        p2p_httpd_respond(req, 500, "application/json", err, sizeof(err) - 1);
        return;
    }
    p2p_httpd_respond(req, status, "application/json", s, strlen(s));
    free(s);
}

void p2p_httpd_respond_error(struct p2p_httpd_req *req, int status, const char *code,
                             const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *v = json_pack("{s:s,s:s}", "code", code, "msg", msg);
    if (!v) /* msg was not valid UTF-8 */
        v = json_pack("{s:s,s:s}", "code", code, "msg", status_text(status));
    p2p_httpd_respond_json(req, status, v);
}

void p2p_httpd_respond_ok(struct p2p_httpd_req *req)
{
    p2p_httpd_respond_json(req, 200, json_pack("{s:s,s:s}", "code", "E000", "msg", "success"));
}

static void respond_internal(struct conn *c, int status, const char *msg)
{
    p2p_httpd_respond_error(&c->req, status, "E001", "%s", msg);
}

/* Called when the last byte of a response has been handed to the kernel. */
static void response_finished(struct conn *c)
{
    struct p2p_httpd_req *req = &c->req;
    c->wstate = W_DONE;
    if (c->srv && c->srv->opts.on_response)
        c->srv->opts.on_response(req, req->status, c->srv->opts.on_response_ud);
    if (c->closing)
        return;
    /* A request whose body turned out unparseable (R_ABANDON) while an early answer was being
     * written can never be drained: close instead of waiting on it (found by fuzz_http). */
    if (!c->resp_keep || c->rstate == R_ABANDON)
        conn_finish_close(c);
    else if (c->rstate == R_DONE)
        next_request(c);
    else
        conn_kick(c); /* keep draining the body */
}

/* ---- file responses -----------------------------------------------------------------------
 * open, fstat, head (uv_write), then the body in one of two ways:
 *  - sendfile path (the default): a pool job calls sendfile(2) from the file to a dup() of the
 *    socket until FILE_WINDOW bytes are sent or the socket buffer is full (the socket is
 *    non-blocking, so the job only ever waits for the disk); on EAGAIN a uv_poll on the dup
 *    waits for writability and the next job follows. No byte is copied through user space (on
 *    loopback the page-cache pages go to the receiver as they are) and there is one pool round
 *    trip per socket-buffer-full instead of one per chunk. libuv's own uv_fs_sendfile is not
 *    used: it tries copy_file_range first and falls back to 8 KiB pread/write steps for sockets.
 *    The job uses the dup, so closing the connection meanwhile cannot recycle the fd under it;
 *    no uv_write is queued while a job or poll is active (one response at a time).
 *  - pread path (fallback where sendfile() refuses the file, e.g. EINVAL): uv_fs_read ->
 *    uv_write -> uv_fs_read ..., one FILE_CHUNK in flight.
 */

static bool sendfile_disabled; /* set once sendfile() refused a file: pread from then on */

static void file_free(struct fsend *f)
{
    struct conn *c = f->conn;
    free(f->path);
    free(f->ctype);
    free(f->buf);
    free(f->head);
    free(f);
    c->irefs--;
    conn_release(c);
}

static void on_file_close(uv_fs_t *r)
{
    struct fsend *f = r->data;
    uv_fs_req_cleanup(r);
    file_free(f);
}

static void file_release(struct fsend *f);

static void on_sf_poll_close(uv_handle_t *h)
{
    struct fsend *f = h->data;
    f->poll_open = false;
    file_release(f);
}

/* Frees a finished file response once no pool job or handle uses it: closes the poll handle,
 * the socket dup and (asynchronously) the file. */
static void file_release(struct fsend *f)
{
    if (f->working)
        return; /* sf_after releases it */
    if (f->poll_open) {
        if (!uv_is_closing((uv_handle_t *)&f->poll))
            uv_close((uv_handle_t *)&f->poll, on_sf_poll_close);
        return;
    }
    if (f->sock >= 0) {
        close(f->sock);
        f->sock = -1;
    }
    if (f->fd >= 0) {
        uv_file fd = f->fd;
        f->fd = -1;
        f->fs.data = f;
        if (uv_fs_close(f->conn->tcp.loop, &f->fs, fd, on_file_close) == 0)
            return;
    }
    file_free(f);
}

/* Ends the file response: reports status and detaches; the fd is closed and the struct freed
 * once the pool job and the poll handle are gone. The caller must not have an fs request (pread
 * path) in flight. */
static void file_finish(struct fsend *f, int status)
{
    struct conn *c = f->conn;
    if (f->finished)
        return;
    f->finished = true;
    if (c->file == f)
        c->file = NULL;
    uv_timer_stop(&c->ptimer);
    if (f->done) {
        void (*done)(void *, int) = f->done;
        f->done = NULL;
        done(f->done_ud, status);
    }
    file_release(f);
}

/* The file failed before any byte went out: answer 500 instead. */
static void file_fail_early(struct fsend *f, int err)
{
    struct conn *c = f->conn;
    p2p_warn("httpd: cannot serve %s: %s", f->path, uv_strerror(err));
    file_finish(f, err);
    if (c->closing)
        return;
    c->req.responded = false; /* re-answer with an error instead */
    c->req.rhdrs_len = 0;
    c->wstate = W_NONE;
    p2p_httpd_respond_error(&c->req, 500, "E001", "cannot read file");
}

/* Switches a response whose head has just gone out to the sendfile path (false: use pread). */
static bool sf_begin(struct fsend *f)
{
    struct conn *c = f->conn;
    uv_os_fd_t sock;
    if (sendfile_disabled || uv_fileno((uv_handle_t *)&c->tcp, &sock) < 0)
        return false;
    f->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (f->sock < 0)
        return false;
    if (uv_poll_init(c->tcp.loop, &f->poll, f->sock) < 0) {
        close(f->sock);
        f->sock = -1;
        return false;
    }
    f->poll.data = f;
    f->poll_open = true;
    f->use_sendfile = true;
    return true;
}

static void on_file_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    struct fsend *f = c->file;
    if (!f)
        return;
    if (status < 0) {
        file_finish(f, status);
        conn_close(c, status);
        return;
    }
    c->progress = true;
    if (f->phase == F_WRITE) {
        f->offset += f->last;
        f->remaining -= f->last;
    }
    if (f->remaining == 0 || c->req.head) {
        file_finish(f, 0);
        response_finished(c);
        return;
    }
    if (f->phase == F_HEAD)
        sf_begin(f);
    file_next(f);
    conn_update_timer(c);
}

/* Pool thread: sendfile() until sf_len bytes are out, the socket buffer is full, or an error. */
static void sf_work(uv_work_t *req)
{
    struct fsend *f = P2P_CONTAINER_OF(req, struct fsend, work);
    /* sendfile() to a reset socket raises SIGPIPE in the calling thread; the services ignore it
     * (p2p_loop_signals), but keep this pool thread safe on its own. Pool threads handle no
     * signals, so blocking it here for good is harmless. */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    off_t off = (off_t)(f->offset);
    while (f->sf_sent < f->sf_len) {
        ssize_t n = sendfile(f->sock, f->fd, &off, (size_t)(f->sf_len - f->sf_sent));
        if (n > 0) {
            f->sf_sent += (uint64_t)n;
            continue;
        }
        if (n == 0) { /* the file shrank under us */
            f->sf_err = UV_EIO;
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            f->sf_again = true;
        else
            f->sf_err = -errno;
        return;
    }
}

static void sf_next(struct fsend *f);

static void on_sf_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct fsend *f = h->data;
    struct conn *c = f->conn;
    uv_poll_stop(h);
    if (f->finished || f->phase != F_WAITW)
        return;
    if (status < 0) {
        file_finish(f, status);
        conn_close(c, status);
        return;
    }
    sf_next(f);
}

static void sf_after(uv_work_t *req, int status)
{
    struct fsend *f = P2P_CONTAINER_OF(req, struct fsend, work);
    struct conn *c = f->conn;
    f->working = false;
    if (f->finished) {
        file_release(f);
        return;
    }
    if (c->closing) {
        file_finish(f, UV_ECANCELED);
        return;
    }
    int err = status < 0 ? status : f->sf_err;
    bool untouched = f->remaining == f->length && f->sf_sent == 0;
    f->offset += f->sf_sent;
    f->remaining -= f->sf_sent;
    if (f->pace && f->sf_sent < f->sf_len)
        f->credit += f->sf_len - f->sf_sent;
    if (f->sf_sent > 0) {
        c->progress = true;
        conn_update_timer(c);
    }
    if (err < 0 && untouched && (err == UV_EINVAL || err == UV_ENOSYS || err == UV_ENOTSUP)) {
        /* this file system cannot sendfile: nothing of the body is out yet, so read instead */
        p2p_warn("httpd: sendfile unsupported here (%s); serving files with pread",
                 uv_strerror(err));
        sendfile_disabled = true;
        f->use_sendfile = false;
        file_next(f);
        return;
    }
    if (err < 0) { /* headers are out: cut the connection, as on a short read */
        file_finish(f, err);
        conn_close(c, err);
        return;
    }
    if (f->remaining == 0) {
        file_finish(f, 0);
        response_finished(c);
        return;
    }
    if (f->sf_again) {
        f->phase = F_WAITW;
        int rc = uv_poll_start(&f->poll, UV_WRITABLE, on_sf_poll);
        if (rc < 0) {
            file_finish(f, rc);
            conn_close(c, rc);
        }
        return;
    }
    sf_next(f);
}

/* sendfile path: the next pool job, at most FILE_WINDOW bytes (or what the pacer allows). */
static void sf_next(struct fsend *f)
{
    struct conn *c = f->conn;
    uint64_t want = f->remaining < FILE_WINDOW ? f->remaining : FILE_WINDOW;
    if (f->pace && f->credit > 0) {
        /* granted before but stopped by a full socket buffer: those bytes go first, so a
         * slow reader does not waste the rate limit's tokens */
        if (f->credit < want)
            want = f->credit;
        f->credit -= want;
    } else if (f->pace) {
        uint64_t delay = 0;
        size_t n = f->pace(f->pace_ud, (size_t)want, &delay);
        if (n == 0) {
            f->phase = F_PACE;
            uv_timer_start(&c->ptimer, on_pace_timer, delay ? delay : 1, 0);
            conn_update_timer(c);
            return;
        }
        if (n < want)
            want = n;
    }
    f->phase = F_SEND;
    f->sf_len = want;
    f->sf_sent = 0;
    f->sf_err = 0;
    f->sf_again = false;
    int rc = uv_queue_work(c->tcp.loop, &f->work, sf_work, sf_after);
    if (rc < 0) {
        file_finish(f, rc);
        conn_close(c, rc);
        return;
    }
    f->working = true;
}

static void on_file_read(uv_fs_t *r)
{
    struct fsend *f = r->data;
    struct conn *c = f->conn;
    if (c->closing) {
        uv_fs_req_cleanup(r);
        file_finish(f, UV_ECANCELED);
        return;
    }
    if (r->result <= 0) { /* error, or the file shrank under us: headers are out, so cut */
        int err = r->result < 0 ? (int)r->result : UV_EIO;
        uv_fs_req_cleanup(r);
        file_finish(f, err);
        conn_close(c, err);
        return;
    }
    f->phase = F_WRITE;
    f->last = r->result < (ssize_t)f->remaining ? (uint64_t)r->result : f->remaining;
    uv_fs_req_cleanup(r);
    uv_buf_t b = uv_buf_init(f->buf, (unsigned)f->last);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_file_write);
    if (rc < 0) {
        file_finish(f, rc);
        conn_close(c, rc);
    }
}

static void on_pace_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->file && c->file->phase == F_PACE)
        file_next(c->file);
}

static void file_next(struct fsend *f)
{
    struct conn *c = f->conn;
    if (f->use_sendfile) {
        sf_next(f);
        return;
    }
    size_t want = f->remaining < FILE_CHUNK ? (size_t)f->remaining : FILE_CHUNK;
    if (f->pace) {
        uint64_t delay = 0;
        size_t n = f->pace(f->pace_ud, want, &delay);
        if (n == 0) {
            f->phase = F_PACE;
            uv_timer_start(&c->ptimer, on_pace_timer, delay ? delay : 1, 0);
            conn_update_timer(c);
            return;
        }
        if (n < want)
            want = n;
    }
    f->phase = F_READ;
    if (!f->buf)
        f->buf = p2p_xmalloc(FILE_CHUNK);
    uv_buf_t b = uv_buf_init(f->buf, (unsigned)want);
    f->fs.data = f;
    int rc = uv_fs_read(c->tcp.loop, &f->fs, f->fd, &b, 1, (int64_t)f->offset, on_file_read);
    if (rc < 0) {
        file_finish(f, rc);
        conn_close(c, rc);
    }
}

static void on_file_stat(uv_fs_t *r)
{
    struct fsend *f = r->data;
    struct conn *c = f->conn;
    int err = (int)r->result;
    uint64_t size = r->statbuf.st_size;
    bool reg = (r->statbuf.st_mode & S_IFMT) == S_IFREG;
    uv_fs_req_cleanup(r);
    if (c->closing) {
        file_finish(f, UV_ECANCELED);
        return;
    }
    if (err == 0 && !reg)
        err = UV_EISDIR;
    if (err == 0 && (f->offset > size || f->length > size - f->offset))
        err = UV_EINVAL;
    if (err < 0) {
        file_fail_early(f, err);
        return;
    }
    size_t hl;
    f->head = build_head(c, f->status, f->ctype, true, f->length, &hl);
    f->phase = F_HEAD;
    uv_buf_t b = uv_buf_init(f->head, (unsigned)hl);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_file_write);
    if (rc < 0) {
        file_finish(f, rc);
        conn_close(c, rc);
    }
}

static void on_file_open(uv_fs_t *r)
{
    struct fsend *f = r->data;
    struct conn *c = f->conn;
    int res = (int)r->result;
    uv_fs_req_cleanup(r);
    if (res >= 0)
        f->fd = res;
    if (c->closing) {
        file_finish(f, UV_ECANCELED);
        return;
    }
    if (res < 0) {
        file_fail_early(f, res);
        return;
    }
    f->phase = F_STAT;
    int rc = uv_fs_fstat(c->tcp.loop, &f->fs, f->fd, on_file_stat);
    if (rc < 0) {
        file_fail_early(f, rc);
    }
}

void p2p_httpd_respond_file(struct p2p_httpd_req *req, int status,
                            const struct p2p_httpd_file *file)
{
    struct conn *c = req->conn;
    if (req->responded || c->closing) {
        if (file->done)
            file->done(file->done_ud, UV_ECANCELED);
        p2p_httpd_respond(req, status, NULL, NULL, 0); /* releases the request */
        return;
    }
    if (!respond_begin(req, status))
        return;
    struct fsend *f = p2p_xcalloc(1, sizeof(*f));
    f->conn = c;
    f->fd = -1;
    f->sock = -1;
    f->path = p2p_xstrdup(file->path);
    f->ctype = p2p_xstrdup(file->content_type ? file->content_type : "application/octet-stream");
    f->status = status;
    f->offset = file->offset;
    f->length = file->length;
    f->remaining = file->length;
    f->pace = file->pace;
    f->pace_ud = file->pace_ud;
    f->done = file->done;
    f->done_ud = file->done_ud;
    f->phase = F_OPEN;
    f->fs.data = f;
    c->file = f;
    c->irefs++;
    int rc = uv_fs_open(c->tcp.loop, &f->fs, f->path, O_RDONLY | O_CLOEXEC, 0, on_file_open);
    if (rc < 0) {
        file_fail_early(f, rc);
        return;
    }
    conn_kick(c);
}

/* ---------------------------------------------------------------------------------------------
 * Range
 */

int p2p_httpd_parse_range(const char *hdr, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (!hdr)
        return 0;
    while (*hdr == ' ' || *hdr == '\t')
        hdr++;
    if (strncasecmp(hdr, "bytes=", 6) != 0)
        return 0;
    const char *s = hdr + 6;
    const char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (memchr(s, ',', (size_t)(end - s)))
        return 0; /* several ranges: serve the whole representation */
    const char *dash = memchr(s, '-', (size_t)(end - s));
    if (!dash)
        return 0;
    uint64_t a, b;
    if (dash == s) { /* suffix: last n bytes */
        if (p2p_parse_u64(dash + 1, (size_t)(end - dash - 1), &b) < 0)
            return 0;
        if (b == 0 || size == 0)
            return -1;
        if (b > size)
            b = size;
        *off = size - b;
        *len = b;
        return 1;
    }
    if (p2p_parse_u64(s, (size_t)(dash - s), &a) < 0)
        return 0;
    if (dash + 1 == end) {
        b = UINT64_MAX;
    } else {
        if (p2p_parse_u64(dash + 1, (size_t)(end - dash - 1), &b) < 0)
            return 0;
        if (b < a)
            return 0; /* syntactically invalid: ignore the header (RFC 7233 3.1) */
    }
    if (a >= size)
        return -1;
    if (b >= size)
        b = size - 1;
    *off = a;
    *len = b - a + 1;
    return 1;
}
