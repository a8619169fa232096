/* Fuzz target: the HTTP request path of src/common/httpd.c. The input is what a client sends;
 * it enters through a real socket (one end of a socketpair adopted with p2p_httpd_adopt), the
 * real http-parser and router, and reaches a test handler that uses the whole request API:
 * buffered and streamed bodies, pause/resume, deferred responses, aborts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include "common/httpd.h"
#include "common/log.h"
#include "common/util.h"
#include "fuzz.h"
#include "fuzz_net.h"

/*
 * Input: byte 0 is the client's write size (0 = everything at once, n = n bytes per loop turn,
 * so requests get split at every possible point); the rest is the byte stream sent, followed by
 * a half-close (EOF). Handlers act on query parameters: defer (respond on a later loop turn),
 * close (Connection: close), json, pause (streamed body: pause after each chunk, resume on the
 * next turn), early (respond before reading a streamed body), e=<v> (echoed in a header),
 * pace (GET /file: send the file in small paced pieces).
 */
#define HTTP_MAX_INPUT (64 * 1024)
#define HTTP_MAX_OUTPUT (1u << 20) /* response bytes kept for checking */
#define MAX_SENDS 4096             /* writes per input (small steps grow for long inputs) */
#define FILE_SIZE (300 * 1024)     /* served by GET /file: several 128 KiB chunks */
#define MAX_HREQ 256
/* Most bytes the pacer grants at once: a whole paced file takes 4 pieces. Every piece is a
 * thread-pool round trip and every "not now" a 1 ms timer; with the 1,000-byte pieces and a wait
 * every third call that this harness used before, one paced file cost up to 0.7 s without
 * reaching any other code. */
#define PACE_PIECE 100000

struct hreq {
    struct p2p_httpd_req *req; /* NULL once responded (the server may free it then) */
    bool streaming;
    bool ended;
    bool aborted;
    bool pause;     /* pause after each data chunk */
    bool paused;    /* paused now: resume on the next turn */
    bool defer;     /* respond on the next turn */
    bool early;
    size_t got;
    uint32_t sum;
};

static struct {
    uv_loop_t loop;
    bool init;
    struct hreq reqs[MAX_HREQ];
    size_t nreqs;
    size_t handler_calls;
    char file_path[64];
    size_t file_done;  /* respond_file done callbacks */
    size_t file_started;
    unsigned pace_calls;
    char out[HTTP_MAX_OUTPUT]; /* static: a large malloc per input costs ASan more than a run */
} g;

static const char *q(struct p2p_httpd_req *req, const char *name)
{
    return p2p_httpd_query(req, name);
}

static struct hreq *hreq_new(struct p2p_httpd_req *req)
{
    FUZZ_CHECK(p2p_httpd_get_data(req) == NULL); /* one handler call per request */
    g.handler_calls++;
    if (g.nreqs == MAX_HREQ)
        return NULL;
    struct hreq *h = &g.reqs[g.nreqs++];
    memset(h, 0, sizeof(*h));
    h->req = req;
    p2p_httpd_set_data(req, h);
    FUZZ_CHECK(p2p_httpd_get_data(req) == h);
    return h;
}

/* Reads everything the request offers, as a real handler might. */
static void inspect(struct p2p_httpd_req *req)
{
    const char *m = p2p_httpd_method(req), *path = p2p_httpd_path(req);
    FUZZ_CHECK(m && *m && path);
    /* Origin-form and absolute-form give "/..."; the asterisk-form is exactly "*". */
    FUZZ_CHECK(path[0] == '/' || strcmp(path, "*") == 0);
    FUZZ_CHECK(p2p_httpd_is_head(req) == (strcmp(m, "HEAD") == 0));
    const char *name, *value;
    size_t i = 0;
    while (p2p_httpd_header_at(req, i, &name, &value)) {
        FUZZ_CHECK(name && value);
        FUZZ_CHECK(p2p_httpd_header(req, name) != NULL);
        FUZZ_CHECK(p2p_httpd_header_count(req, name) >= 1);
        i++;
    }
    FUZZ_CHECK(p2p_httpd_header_count(req, "x-no-such-header") == 0);
    int64_t cl = p2p_httpd_content_length(req);
    FUZZ_CHECK(cl >= -1);
    if (p2p_httpd_is_chunked(req))
        FUZZ_CHECK(cl == -1);
    (void)q(req, "a");
    (void)q(req, "");
    (void)p2p_httpd_param(req, "id");
    (void)p2p_httpd_param(req, "*");
    FUZZ_CHECK(p2p_httpd_peer(req) != NULL);
}

static void finish(struct hreq *h, struct p2p_httpd_req *req)
{
    const char *e = q(req, "e");
    if (e)
        p2p_httpd_add_header(req, "X-Echo", e);
    if (q(req, "close"))
        p2p_httpd_close_after(req);
    if (h)
        h->req = NULL;
    if (q(req, "json")) {
        json_t *o = json_pack("{s:s, s:I, s:s?}", "path", p2p_httpd_path(req), "got",
                              (json_int_t)(h ? h->got : 0), "id", p2p_httpd_param(req, "id"));
        if (!o) /* the path or id is not valid UTF-8 */
            o = json_object();
        p2p_httpd_respond_json(req, 200, o);
    } else if (q(req, "err")) {
        p2p_httpd_respond_error(req, 400, "E001", "bad %s", p2p_httpd_path(req));
    } else {
        char body[64];
        int n = snprintf(body, sizeof(body), "ok %zu %u\n", h ? h->got : 0, h ? h->sum : 0);
        p2p_httpd_respond(req, 200, "text/plain", body, (size_t)n);
    }
}

static void on_abort(struct p2p_httpd_req *req, void *ud)
{
    struct hreq *h = p2p_httpd_get_data(req);
    FUZZ_CHECK(h && h->req == req && !h->aborted);
    h->aborted = true;
    h->defer = true; /* must still respond: do it on the next turn */
}

/* Buffered routes. */
static void h_plain(struct p2p_httpd_req *req, void *ud)
{
    inspect(req);
    struct hreq *h = hreq_new(req);
    size_t len = 0;
    const char *body = p2p_httpd_body(req, &len);
    int64_t cl = p2p_httpd_content_length(req);
    if (cl >= 0)
        FUZZ_CHECK(len == (size_t)cl);
    if (body) {
        FUZZ_CHECK(body[len] == '\0');
        if (h) {
            h->got = len;
            for (size_t i = 0; i < len; i++)
                h->sum = h->sum * 31 + (uint8_t)body[i];
        }
    }
    const char *r = p2p_httpd_header(req, "Range");
    if (r) {
        uint64_t off = 0, rl = 0;
        int rc = p2p_httpd_parse_range(r, 1000, &off, &rl);
        FUZZ_CHECK(rc >= -1 && rc <= 1);
        if (rc == 1)
            FUZZ_CHECK(rl >= 1 && off < 1000 && rl <= 1000 - off);
    }
    if (h && q(req, "defer")) {
        h->defer = true;
        p2p_httpd_on_abort(req, on_abort, NULL);
        return;
    }
    finish(h, req);
}

static size_t pace(void *ud, size_t want, uint64_t *delay_ms)
{
    /* The second call of each input: not now (asked again after 0 ms, which httpd makes 1 ms);
     * else at most PACE_PIECE bytes. */
    if (g.pace_calls++ == 1) {
        *delay_ms = 0;
        return 0;
    }
    return want < PACE_PIECE ? want : PACE_PIECE;
}

static void file_done(void *ud, int status)
{
    g.file_done++;
}

/* GET /file: the test file, whole or one Range. */
static void h_file(struct p2p_httpd_req *req, void *ud)
{
    inspect(req);
    struct hreq *h = hreq_new(req);
    if (h)
        h->req = NULL;
    uint64_t off = 0, len = FILE_SIZE;
    int status = 200;
    const char *r = p2p_httpd_header(req, "Range");
    int rc = r ? p2p_httpd_parse_range(r, FILE_SIZE, &off, &len) : 0;
    if (rc < 0) {
        p2p_httpd_add_headerf(req, "Content-Range", "bytes */%u", FILE_SIZE);
        p2p_httpd_respond(req, 416, NULL, NULL, 0);
        return;
    }
    if (rc == 1) {
        FUZZ_CHECK(len >= 1 && off + len <= FILE_SIZE);
        status = 206;
        p2p_httpd_add_headerf(req, "Content-Range", "bytes %llu-%llu/%u",
                              (unsigned long long)off, (unsigned long long)(off + len - 1),
                              FILE_SIZE);
    }
    struct p2p_httpd_file f;
    memset(&f, 0, sizeof(f));
    f.path = g.file_path;
    f.offset = off;
    f.length = len;
    f.pace = q(req, "pace") ? pace : NULL;
    f.done = file_done;
    g.file_started++;
    p2p_httpd_respond_file(req, status, &f);
}

/* Streamed route. */
static void s_data(struct p2p_httpd_req *req, const char *data, size_t len, void *ud)
{
    struct hreq *h = ud;
    FUZZ_CHECK(h->req == req && !h->ended && !h->paused);
    FUZZ_CHECK(len > 0 && len <= 64 * 1024);
    h->got += len;
    for (size_t i = 0; i < len; i++)
        h->sum = h->sum * 31 + (uint8_t)data[i];
    if (h->pause) {
        p2p_httpd_pause(req);
        h->paused = true;
    }
}

static void s_end(struct p2p_httpd_req *req, int status, void *ud)
{
    struct hreq *h = ud;
    FUZZ_CHECK(h->req == req && !h->ended);
    h->ended = true;
    h->paused = false;
    if (status == 0) {
        int64_t cl = p2p_httpd_content_length(req);
        if (cl >= 0)
            FUZZ_CHECK(h->got == (uint64_t)cl);
        (void)p2p_httpd_trailer(req, "x-checksum");
    }
    if (h->defer)
        return; /* answered on the next turn */
    finish(h, req);
}

static void s_head(struct p2p_httpd_req *req, void *ud)
{
    inspect(req);
    struct hreq *h = hreq_new(req);
    if (!h || q(req, "early")) {
        if (h)
            h->early = true;
        p2p_httpd_respond_error(req, 413, "E001", "early");
        if (h)
            h->req = NULL;
        return;
    }
    h->streaming = true;
    h->pause = q(req, "pause") != NULL;
    h->defer = q(req, "defer") != NULL;
    p2p_httpd_stream_body(req, s_data, s_end, h);
}

static void not_found(struct p2p_httpd_req *req, void *ud)
{
    inspect(req);
    struct hreq *h = hreq_new(req);
    if (h)
        h->req = NULL;
    p2p_httpd_respond_error(req, 404, "E001", "nothing at %s", p2p_httpd_path(req));
}

static const struct p2p_httpd_route routes[] = {
    {"GET", "/ok", h_plain, NULL, 0, NULL},
    {"POST", "/echo", h_plain, NULL, 4096, NULL},
    {"GET", "/items/{id}/sub/{name}", h_plain, NULL, 0, NULL},
    {"DELETE", "/items/{id}", h_plain, NULL, 0, NULL},
    {"GET", "/static/*", h_plain, NULL, 0, NULL},
    {NULL, "/any/{id}", h_plain, NULL, 0, NULL},
    {"PUT", "/stream/{id}", NULL, s_head, 0, NULL},
    {"POST", "/files/", NULL, s_head, 0, NULL},
    {"GET", "/file", h_file, NULL, 0, NULL},
    {NULL, NULL, NULL, NULL, 0, NULL},
};

/* One loop turn of the harness: resume paused bodies and send deferred responses. Returns
 * whether it did any of that. */
static bool harness_turn(void *ud)
{
    bool did = false;
    for (size_t i = 0; i < g.nreqs; i++) {
        struct hreq *h = &g.reqs[i];
        if (!h->req)
            continue;
        if (h->paused && !h->aborted) {
            h->paused = false;
            did = true;
            p2p_httpd_resume(h->req); /* may call s_data / s_end synchronously */
            continue;
        }
        if (h->defer && (!h->streaming || h->ended || h->aborted)) {
            struct p2p_httpd_req *req = h->req;
            did = true;
            finish(h, req);
        }
    }
    return did;
}

static bool reqs_pending(void *ud)
{
    for (size_t i = 0; i < g.nreqs; i++)
        if (g.reqs[i].req)
            return true;
    return false;
}

/* A file response waits on the thread pool. */
static bool file_busy(void *ud)
{
    return g.file_done < g.file_started;
}

/* Checks what the client received: a sequence of responses, each starting with a status line,
 * and no header smuggled in through an echoed value. */
static void check_output(const char *out, size_t len)
{
    if (len == 0)
        return;
    FUZZ_CHECK(len >= 12 && memcmp(out, "HTTP/1.1 ", 9) == 0);
    FUZZ_CHECK(memmem(out, len, "\r\nX-Injected", 12) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > HTTP_MAX_INPUT)
        return 0;
    if (!g.init) {
        /* FUZZ_LOG=1 shows the server's debug log (reproducing a finding). */
        p2p_log_setup(getenv("FUZZ_LOG") ? P2P_LOG_DEBUG : P2P_LOG_OFF, P2P_LOG_TEXT, "fuzz");
        FUZZ_CHECK(uv_loop_init(&g.loop) == 0);
        /* The file GET /file serves: a memfd, opened by path through /proc. */
        int mfd = memfd_create("fuzz_http", 0);
        FUZZ_CHECK(mfd >= 0);
        static char pattern[FILE_SIZE];
        for (size_t i = 0; i < FILE_SIZE; i++)
            pattern[i] = (char)('a' + i % 26);
        FUZZ_CHECK(write(mfd, pattern, FILE_SIZE) == FILE_SIZE);
        snprintf(g.file_path, sizeof(g.file_path), "/proc/self/fd/%d", mfd);
        g.init = true;
    }
    size_t step = data[0] ? data[0] : size;
    if (step < size / MAX_SENDS + 1)
        step = size / MAX_SENDS + 1;
    size_t inlen = size - 1;

    g.nreqs = 0;
    g.handler_calls = 0;
    g.file_done = g.file_started = 0;
    g.pace_calls = 0;
    struct p2p_httpd_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.header_timeout_ms = 10000;
    opts.idle_timeout_ms = 10000;
    opts.not_found = (data[0] & 1) ? not_found : NULL; /* both the default and a custom 404 */
    struct p2p_httpd *srv = p2p_httpd_new(&g.loop, routes, &opts);

    static const struct fuzz_net_ops ops = {
        .turn = harness_turn, .busy = file_busy, .pending = reqs_pending};
    /* The input is copied: libFuzzer's data is read-only, and the client may rewrite. */
    uint8_t *in = p2p_xmalloc(inlen ? inlen : 1);
    memcpy(in, data + 1, inlen);
    size_t outlen = fuzz_net_run(&g.loop, srv, in, inlen, step, &ops, NULL, g.out,
                                 sizeof(g.out));
    free(in);
    /* Every request the handlers saw was answered; every file response reported its end. */
    FUZZ_CHECK(!reqs_pending(NULL));
    FUZZ_CHECK(g.file_done == g.file_started);
    check_output(g.out, outlen);
    return 0;
}
