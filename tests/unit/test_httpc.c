/* The HTTP client (src/common/httpc.c) and server (src/common/httpd.c) tested together on a real
 * libuv loop over 127.0.0.1, plus a raw TCP responder for misbehaving servers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "common/httpc.h"
#include "common/httpd.h"
#include "common/util.h"

#define BIG_SIZE ((uint64_t)100 << 20)
#define WATCHDOG_MS 50000

/* ---- fixture: loop + server + client ---- */

struct raw_conn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    char head[8192];
    size_t len;
    bool replied, used;
};

/* A raw TCP responder: answers every request head with `reply` (then closes), or never answers
 * when reply is NULL. Connections live in a fixed array, so closing needs no frees. */
struct raw_srv {
    uv_tcp_t listener;
    int port;
    const char *reply;
    size_t reply_len;
    struct raw_conn conns[8];
    bool active;
};

struct fx {
    uv_loop_t loop;
    struct p2p_httpd *srv;
    struct p2p_httpc *cl;
    char base[64];
    uv_timer_t watchdog;
    uv_timer_t resume_timer;
    bool timed_out;
    int closed;
    struct raw_srv raw;
    /* upload route state */
    EVP_MD_CTX *srv_md;
    uint64_t srv_bytes;
    bool paused;
    int pauses;
    bool data_while_paused;
    char small_body[256];
    size_t small_len;
    struct p2p_httpd_req *upload_req;
    /* file route */
    char file_path[256];
    uint64_t file_len;
};

static struct fx *FX;

static void hex_digest(EVP_MD_CTX *md, char out[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, d, &n);
    p2p_hex_encode(d, n, out);
}

static void on_watchdog(uv_timer_t *t)
{
    FX->timed_out = true;
    uv_stop(t->loop);
}

/* ---- routes ---- */

static void h_hello(struct p2p_httpd_req *req, void *ud)
{
    p2p_httpd_add_header(req, "X-Test", "yes");
    p2p_httpd_respond_json(req, 200, json_pack("{s:s}", "hello", "world"));
}

static void h_echo(struct p2p_httpd_req *req, void *ud)
{
    size_t len = 0;
    const char *body = p2p_httpd_body(req, &len);
    json_error_t jerr;
    json_t *v = body ? json_loadb(body, len, 0, &jerr) : NULL;
    if (!v) {
        p2p_httpd_respond_error(req, 400, "E001", "bad json");
        return;
    }
    const char *ct = p2p_httpd_header(req, "Content-Type");
    p2p_httpd_respond_json(req, 200, json_pack("{s:s,s:o,s:s}", "method", p2p_httpd_method(req),
                                               "got", v, "ct", ct ? ct : ""));
}

static void h_peer(struct p2p_httpd_req *req, void *ud)
{
    const char *peer = p2p_httpd_peer(req);
    p2p_httpd_respond(req, 200, "text/plain", peer, strlen(peer));
}

static void h_blob(struct p2p_httpd_req *req, void *ud)
{
    static char blob[64 * 1024];
    memset(blob, 'x', sizeof(blob));
    p2p_httpd_respond(req, 200, "application/octet-stream", blob, sizeof(blob));
}

static void on_resume_timer(uv_timer_t *t)
{
    FX->paused = false;
    p2p_httpd_resume(FX->upload_req);
}

static void up_data(struct p2p_httpd_req *req, const char *data, size_t len, void *ud)
{
    if (FX->paused)
        FX->data_while_paused = true;
    EVP_DigestUpdate(FX->srv_md, data, len);
    if (FX->srv_bytes < sizeof(FX->small_body)) {
        size_t n = len < sizeof(FX->small_body) - FX->srv_bytes
                       ? len
                       : sizeof(FX->small_body) - FX->srv_bytes;
        memcpy(FX->small_body + FX->srv_bytes, data, n);
        FX->small_len += n;
    }
    FX->srv_bytes += len;
    /* Backpressure: stop now and then, and resume from a timer. */
    if ((FX->srv_bytes / len) % 37 == 0) {
        FX->paused = true;
        FX->pauses++;
        p2p_httpd_pause(req);
        uv_timer_start(&FX->resume_timer, on_resume_timer, 1, 0);
    }
}

static void up_end(struct p2p_httpd_req *req, int status, void *ud)
{
    char hex[65];
    if (status < 0) {
        p2p_httpd_respond_error(req, 500, "E001", "cut short");
        return;
    }
    hex_digest(FX->srv_md, hex);
    const char *tr = p2p_httpd_trailer(req, "X-Checksum");
    p2p_httpd_respond_json(
        req, 200,
        json_pack("{s:I,s:s,s:b,s:s,s:s%}", "bytes", (json_int_t)FX->srv_bytes, "sha256", hex,
                  "chunked", p2p_httpd_is_chunked(req), "trailer", tr ? tr : "", "start",
                  FX->small_body, FX->srv_bytes == FX->small_len ? FX->small_len : 0));
}

static void h_upload_head(struct p2p_httpd_req *req, void *ud)
{
    const char *expect = p2p_httpd_header(req, "Expect");
    p2p_httpd_add_header(req, "X-Saw-Expect", expect ? expect : "none");
    FX->upload_req = req;
    FX->srv_bytes = 0;
    FX->small_len = 0;
    EVP_DigestInit_ex(FX->srv_md, EVP_sha256(), NULL);
    p2p_httpd_stream_body(req, up_data, up_end, NULL);
}

static void h_reject_head(struct p2p_httpd_req *req, void *ud)
{
    p2p_httpd_respond_error(req, 413, "E001", "too large");
}

static void h_file(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_httpd_file f = {.path = FX->file_path, .offset = 0, .length = FX->file_len};
    p2p_httpd_respond_file(req, 200, &f);
}

static const struct p2p_httpd_route routes[] = {
    {.method = "GET", .path = "/hello", .handler = h_hello},
    {.method = "POST", .path = "/echo", .handler = h_echo},
    {.method = "PUT", .path = "/echo", .handler = h_echo},
    {.method = "GET", .path = "/peer", .handler = h_peer},
    {.method = "GET", .path = "/blob", .handler = h_blob},
    {.method = "POST", .path = "/upload", .on_head = h_upload_head},
    {.method = "POST", .path = "/reject", .on_head = h_reject_head},
    {.method = "GET", .path = "/file", .handler = h_file},
    {.path = NULL},
};

static int fx_setup(void **state)
{
    struct fx *fx = p2p_xcalloc(1, sizeof(*fx));
    FX = fx;
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    struct p2p_httpd_opts o = {0};
    fx->srv = p2p_httpd_new(&fx->loop, routes, &o);
    assert_non_null(fx->srv);
    assert_int_equal(p2p_httpd_listen(fx->srv, "127.0.0.1:0"), 0);
    assert_true(p2p_httpd_port(fx->srv) > 0);
    snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%d", p2p_httpd_port(fx->srv));
    fx->cl = p2p_httpc_new(&fx->loop);
    uv_timer_init(&fx->loop, &fx->watchdog);
    uv_timer_start(&fx->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_unref((uv_handle_t *)&fx->watchdog);
    uv_timer_init(&fx->loop, &fx->resume_timer);
    fx->srv_md = EVP_MD_CTX_new();
    *state = fx;
    return 0;
}

static void on_part_closed(void *ud)
{
    ((struct fx *)ud)->closed++;
}

static void raw_close(struct raw_srv *r);

/* Shuts the client and server down and checks that the loop closes with nothing left. */
static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    p2p_httpc_shutdown(fx->cl, on_part_closed, fx);
    p2p_httpd_shutdown(fx->srv, 1000, on_part_closed, fx);
    raw_close(&fx->raw);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_close((uv_handle_t *)&fx->resume_timer, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int closed = fx->closed;
    int rc = uv_loop_close(&fx->loop);
    EVP_MD_CTX_free(fx->srv_md);
    if (fx->file_path[0])
        unlink(fx->file_path);
    bool timed_out = fx->timed_out;
    free(fx);
    FX = NULL;
    assert_false(timed_out);
    assert_int_equal(closed, 2);
    assert_int_equal(rc, 0);
    return 0;
}

/* Runs the loop until a test calls uv_stop. */
static void fx_run(struct fx *fx)
{
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_false(fx->timed_out);
}

/* ---- raw TCP responder ---- */

static void raw_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct raw_conn *rc = h->data;
    if (rc->len >= sizeof(rc->head) - 1)
        rc->len = 0; /* never answering: just keep draining */
    buf->base = rc->head + rc->len;
    buf->len = sizeof(rc->head) - 1 - rc->len;
}

static void raw_conn_close(struct raw_conn *rc)
{
    if (!uv_is_closing((uv_handle_t *)&rc->tcp))
        uv_close((uv_handle_t *)&rc->tcp, NULL);
}

static void raw_written(uv_write_t *w, int status)
{
    raw_conn_close(w->data);
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct raw_conn *rc = s->data;
    struct raw_srv *r = &FX->raw;
    if (n < 0) {
        raw_conn_close(rc);
        return;
    }
    rc->len += (size_t)n;
    rc->head[rc->len] = '\0';
    if (r->reply && !rc->replied && strstr(rc->head, "\r\n\r\n")) {
        rc->replied = true;
        uv_buf_t b = uv_buf_init((char *)r->reply, (unsigned)r->reply_len);
        rc->wreq.data = rc;
        uv_write(&rc->wreq, s, &b, 1, raw_written);
    }
}

static void raw_accept(uv_stream_t *l, int status)
{
    struct raw_srv *r = &FX->raw;
    struct raw_conn *rc = NULL;
    for (size_t i = 0; i < P2P_ARRAY_LEN(r->conns); i++) {
        if (!r->conns[i].used) {
            rc = &r->conns[i];
            break;
        }
    }
    assert_non_null(rc);
    rc->used = true;
    uv_tcp_init(l->loop, &rc->tcp);
    rc->tcp.data = rc;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&rc->tcp), 0);
    uv_read_start((uv_stream_t *)&rc->tcp, raw_alloc, raw_read);
}

static void raw_start(struct fx *fx, const char *reply, size_t reply_len)
{
    struct raw_srv *r = &fx->raw;
    struct sockaddr_in sa;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    r->reply = reply;
    r->reply_len = reply_len;
    uv_tcp_init(&fx->loop, &r->listener);
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&r->listener, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->listener, 16, raw_accept), 0);
    uv_tcp_getsockname(&r->listener, (struct sockaddr *)&ss, &sl);
    r->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    r->active = true;
}

static void raw_close(struct raw_srv *r)
{
    if (!r->active)
        return;
    uv_close((uv_handle_t *)&r->listener, NULL);
    for (size_t i = 0; i < P2P_ARRAY_LEN(r->conns); i++)
        if (r->conns[i].used)
            raw_conn_close(&r->conns[i]);
    r->active = false;
}

/* ---- client-side helpers ---- */

struct result {
    int calls;
    int err;
    long status;
    char body[4096];
    size_t body_len;
    uint64_t bytes;
    char hdr[256];
    char hdr2[256];
    const char *want_hdr;
    const char *want_hdr2;
    bool stop;
};

static bool in_request;

static void copy_hdr(const struct p2p_httpc_resp *r, const char *name, char *out, size_t n)
{
    const char *v = name ? p2p_httpc_resp_header(r, name) : NULL;
    snprintf(out, n, "%s", v ? v : "");
}

static void on_done(const struct p2p_httpc_resp *r, void *ud)
{
    struct result *res = ud;
    assert_false(in_request); /* never synchronous */
    res->calls++;
    res->err = r->err;
    res->status = r->status;
    res->bytes = r->bytes;
    if (r->err == 0)
        assert_null(r->errmsg);
    else
        assert_non_null(r->errmsg);
    if (r->body) {
        assert_int_equal(r->body[r->body_len], '\0');
        res->body_len = r->body_len < sizeof(res->body) - 1 ? r->body_len : sizeof(res->body) - 1;
        memcpy(res->body, r->body, res->body_len);
        res->body[res->body_len] = '\0';
    }
    copy_hdr(r, res->want_hdr, res->hdr, sizeof(res->hdr));
    copy_hdr(r, res->want_hdr2, res->hdr2, sizeof(res->hdr2));
    if (res->stop)
        uv_stop(&FX->loop);
}

static struct p2p_httpc_call *start(struct fx *fx, struct p2p_httpc_opts *o, struct result *res)
{
    in_request = true;
    struct p2p_httpc_call *call = p2p_httpc_request(fx->cl, o, on_done, res);
    in_request = false;
    assert_non_null(call);
    return call;
}

/* Runs one request to completion. */
static void run_one(struct fx *fx, struct p2p_httpc_opts *o, struct result *res)
{
    res->stop = true;
    start(fx, o, res);
    fx_run(fx);
    assert_int_equal(res->calls, 1);
}

static char *url(struct fx *fx, const char *path)
{
    static char buf[4][256];
    static int i;
    char *u = buf[i++ % 4];
    snprintf(u, 256, "%s%s", fx->base, path);
    return u;
}

/* ---- tests ---- */

static void test_get_json(void **state)
{
    struct fx *fx = *state;
    struct result res = {.want_hdr = "x-test", .want_hdr2 = "Content-Type"};
    struct p2p_httpc_opts o = {.url = url(fx, "/hello")};
    run_one(fx, &o, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.hdr, "yes");
    assert_non_null(strstr(res.hdr2, "application/json"));
    json_t *v = json_loads(res.body, 0, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "hello")), "world");
    json_decref(v);
}

static void test_post_json_roundtrip(void **state)
{
    struct fx *fx = *state;
    const char *body = "{\"a\":1,\"b\":[true,\"x\"]}";
    const char *hdrs[] = {"Content-Type: application/json", NULL};
    struct result res = {0};
    struct p2p_httpc_opts o = {
        .url = url(fx, "/echo"), .headers = hdrs, .body = body, .body_len = strlen(body)};
    run_one(fx, &o, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.status, 200);
    json_t *v = json_loads(res.body, 0, NULL);
    json_t *want = json_loads(body, 0, NULL);
    assert_non_null(v);
    assert_string_equal(json_string_value(json_object_get(v, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(v, "ct")), "application/json");
    assert_true(json_equal(json_object_get(v, "got"), want));
    json_decref(v);
    json_decref(want);

    /* Another method with a body, and a malformed body getting the JSON error. */
    struct result res2 = {0};
    struct p2p_httpc_opts o2 = {
        .method = "PUT", .url = url(fx, "/echo"), .body = "[1]", .body_len = 3};
    run_one(fx, &o2, &res2);
    assert_int_equal(res2.status, 200);
    assert_non_null(strstr(res2.body, "\"PUT\""));
    struct result res3 = {0};
    struct p2p_httpc_opts o3 = {.url = url(fx, "/echo"), .body = "{nope", .body_len = 5};
    run_one(fx, &o3, &res3);
    assert_int_equal(res3.err, 0);
    assert_int_equal(res3.status, 400);
    assert_non_null(strstr(res3.body, "E001"));
}

static void test_head(void **state)
{
    struct fx *fx = *state;
    struct result get = {.want_hdr = "Content-Length"};
    struct p2p_httpc_opts o = {.url = url(fx, "/hello")};
    run_one(fx, &o, &get);
    struct result head = {.want_hdr = "Content-Length"};
    struct p2p_httpc_opts h = {.method = "HEAD", .url = url(fx, "/hello")};
    run_one(fx, &h, &head);
    assert_int_equal(head.err, 0);
    assert_int_equal(head.status, 200);
    assert_int_equal(head.body_len, 0);
    assert_int_equal(head.bytes, 0);
    char len[32];
    snprintf(len, sizeof(len), "%zu", get.body_len);
    assert_string_equal(head.hdr, len);
    assert_string_equal(get.hdr, len);
}

/* Sequential requests reuse one kept-alive connection: the server sees one peer port. */
struct seq {
    struct fx *fx;
    int left;
    char peers[8][64];
    int n;
    int errs;
};

static void seq_next(struct seq *s);

static void seq_done(const struct p2p_httpc_resp *r, void *ud)
{
    struct seq *s = ud;
    if (r->err || r->status != 200 || !r->body || r->body_len >= 64)
        s->errs++;
    else
        snprintf(s->peers[s->n++], 64, "%s", r->body);
    seq_next(s);
}

static void seq_next(struct seq *s)
{
    if (s->left-- == 0) {
        uv_stop(&s->fx->loop);
        return;
    }
    struct p2p_httpc_opts o = {.url = url(s->fx, "/peer")};
    assert_non_null(p2p_httpc_request(s->fx->cl, &o, seq_done, s));
}

static void test_connection_reuse(void **state)
{
    struct fx *fx = *state;
    struct seq s = {.fx = fx, .left = 6};
    seq_next(&s);
    fx_run(fx);
    assert_int_equal(s.errs, 0);
    assert_int_equal(s.n, 6);
    for (int i = 1; i < s.n; i++)
        assert_string_equal(s.peers[i], s.peers[0]);

    /* Parallel requests open their own connections; the next one reuses one of them. */
    struct result par[3] = {{0}};
    for (int i = 0; i < 3; i++) {
        struct p2p_httpc_opts o = {.url = url(fx, "/peer")};
        start(fx, &o, &par[i]);
    }
    /* responses come back in any order; run until all three are in */
    while (par[0].calls + par[1].calls + par[2].calls < 3)
        uv_run(&fx->loop, UV_RUN_ONCE);
    struct result again = {0};
    struct p2p_httpc_opts o = {.url = url(fx, "/peer")};
    run_one(fx, &o, &again);
    bool reused = false;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(par[i].status, 200);
        if (strcmp(par[i].body, again.body) == 0)
            reused = true;
    }
    assert_true(reused || strcmp(again.body, s.peers[0]) == 0);
    assert_int_equal(p2p_httpc_active(fx->cl), 0);
}

/* ---- 100 MiB upload through a read callback, server applying backpressure ---- */

struct producer {
    uint64_t x;
    uint64_t left;
    EVP_MD_CTX *md;
    int calls;
};
static struct producer PROD;

static int64_t produce(char *buf, size_t len, void *ud)
{
    struct producer *p = &PROD;
    size_t n = len < p->left ? len : (size_t)p->left;
    for (size_t i = 0; i < n; i++) {
        p->x ^= p->x << 13;
        p->x ^= p->x >> 7;
        p->x ^= p->x << 17;
        buf[i] = (char)(p->x >> 24);
    }
    EVP_DigestUpdate(p->md, buf, n);
    p->left -= n;
    p->calls++;
    return (int64_t)n;
}

static void test_upload_100mib_backpressure(void **state)
{
    struct fx *fx = *state;
    struct result res = {.want_hdr = "X-Saw-Expect"};
    PROD = (struct producer){.x = 88172645463325252ull, .left = BIG_SIZE, .md = EVP_MD_CTX_new()};
    EVP_MD_CTX *md = PROD.md;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    struct p2p_httpc_opts o = {.url = url(fx, "/upload"), .read_body = produce,
                               .body_len = BIG_SIZE, .timeout_ms = 60000};
    run_one(fx, &o, &res);
    char hex[65];
    hex_digest(md, hex);
    EVP_MD_CTX_free(md);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.hdr, "100-continue"); /* curl asks before a large body */
    json_t *v = json_loads(res.body, 0, NULL);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "bytes")), BIG_SIZE);
    assert_string_equal(json_string_value(json_object_get(v, "sha256")), hex);
    assert_false(json_is_true(json_object_get(v, "chunked")));
    json_decref(v);
    assert_true(fx->pauses > 10);
    assert_false(fx->data_while_paused);
}

/* 100-continue rejected: the server answers 413 before the body; curl does not hang. */
static void test_expect_rejected(void **state)
{
    struct fx *fx = *state;
    size_t n = 2u << 20;
    char *body = p2p_xcalloc(1, n);
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = url(fx, "/reject"), .body = body, .body_len = n,
                               .timeout_ms = 20000};
    run_one(fx, &o, &res);
    free(body);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.status, 413);
    assert_non_null(strstr(res.body, "E001"));
    /* The server keeps serving, and so does the client. */
    struct result res2 = {0};
    struct p2p_httpc_opts o2 = {.url = url(fx, "/hello")};
    run_one(fx, &o2, &res2);
    assert_int_equal(res2.status, 200);
}

/* Chunked request body with a trailer. */
static void test_chunked_trailer(void **state)
{
    struct fx *fx = *state;
    const char *trailers[] = {"X-Checksum: abc123", NULL};
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = url(fx, "/upload"), .body = "hello chunked world",
                               .body_len = 19, .trailers = trailers};
    run_one(fx, &o, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.status, 200);
    json_t *v = json_loads(res.body, 0, NULL);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_object_get(v, "bytes")), 19);
    assert_true(json_is_true(json_object_get(v, "chunked")));
    assert_string_equal(json_string_value(json_object_get(v, "trailer")), "abc123");
    assert_string_equal(json_string_value(json_object_get(v, "start")), "hello chunked world");
    json_decref(v);
}

/* ---- 100 MiB streamed download via on_data, hash checked ---- */

struct sink {
    EVP_MD_CTX *md;
    uint64_t n;
    int chunks;
};
static struct sink SINK;

static int sink_data(const char *data, size_t len, void *ud)
{
    EVP_DigestUpdate(SINK.md, data, len);
    SINK.n += len;
    SINK.chunks++;
    return 0;
}

static void test_download_100mib_stream(void **state)
{
    struct fx *fx = *state;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(fx->file_path, sizeof(fx->file_path), "%s/test_httpc.XXXXXX", tmp);
    int fd = mkstemp(fx->file_path);
    assert_true(fd >= 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    static char chunk[1 << 20];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint64_t off = 0; off < BIG_SIZE; off += sizeof(chunk)) {
        for (size_t i = 0; i < sizeof(chunk); i += 8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(chunk + i, &x, 8);
        }
        EVP_DigestUpdate(md, chunk, sizeof(chunk));
        assert_int_equal(write(fd, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
    }
    close(fd);
    fx->file_len = BIG_SIZE;
    char want[65];
    hex_digest(md, want);
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    SINK = (struct sink){.md = md};

    struct result res = {0};
    struct p2p_httpc_opts o = {.url = url(fx, "/file"), .on_data = sink_data,
                               .max_body = BIG_SIZE, .timeout_ms = 60000};
    run_one(fx, &o, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.body_len, 0); /* streamed, not buffered */
    assert_int_equal(res.bytes, BIG_SIZE);
    assert_int_equal(SINK.n, BIG_SIZE);
    assert_true(SINK.chunks > 1);
    char got[65];
    hex_digest(md, got);
    EVP_MD_CTX_free(md);
    assert_string_equal(got, want);

    /* The same file with a cap one byte short: refused by size. */
    SINK = (struct sink){.md = EVP_MD_CTX_new()};
    EVP_DigestInit_ex(SINK.md, EVP_sha256(), NULL);
    struct result res2 = {0};
    struct p2p_httpc_opts o2 = {.url = url(fx, "/file"), .on_data = sink_data,
                                .max_body = BIG_SIZE - 1};
    run_one(fx, &o2, &res2);
    EVP_MD_CTX_free(SINK.md);
    assert_int_equal(res2.err, UV_E2BIG);
}

static void test_body_cap(void **state)
{
    struct fx *fx = *state;
    /* Content-Length over the cap. */
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = url(fx, "/blob"), .max_body = 1000};
    run_one(fx, &o, &res);
    assert_int_equal(res.err, UV_E2BIG);
    /* Exactly at the cap is fine. */
    struct result ok = {0};
    struct p2p_httpc_opts o2 = {.url = url(fx, "/blob"), .max_body = 64 * 1024};
    run_one(fx, &o2, &ok);
    assert_int_equal(ok.err, 0);
    assert_int_equal(ok.bytes, 64 * 1024);

    /* No Content-Length (body up to EOF): the write callback enforces the cap. */
    static char reply[40000];
    int hl = snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    memset(reply + hl, 'y', sizeof(reply) - (size_t)hl);
    raw_start(fx, reply, sizeof(reply));
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", fx->raw.port);
    struct result res2 = {0};
    struct p2p_httpc_opts o3 = {.url = u, .max_body = 1000};
    run_one(fx, &o3, &res2);
    assert_int_equal(res2.err, UV_E2BIG);
    assert_true(res2.bytes <= 1000);
}

static void test_header_cap(void **state)
{
    struct fx *fx = *state;
    static char reply[16384];
    size_t n = (size_t)snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(reply + n, sizeof(reply) - n, "X-H%d: v\r\n", i);
    n += (size_t)snprintf(reply + n, sizeof(reply) - n, "Content-Length: 0\r\n\r\n");
    raw_start(fx, reply, n);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", fx->raw.port);
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = u};
    run_one(fx, &o, &res);
    assert_int_equal(res.err, UV_E2BIG);
}

static int abort_data(const char *data, size_t len, void *ud)
{
    return -1;
}

static void test_on_data_abort(void **state)
{
    struct fx *fx = *state;
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = url(fx, "/blob"), .on_data = abort_data};
    run_one(fx, &o, &res);
    assert_int_equal(res.err, UV_ECANCELED);
}

static void test_connect_refused(void **state)
{
    struct fx *fx = *state;
    /* A bound but not listening socket: its port is ours and refuses connections. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/x", ntohs(sa.sin_port));
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = u};
    run_one(fx, &o, &res);
    close(s);
    assert_int_equal(res.err, UV_ECONNREFUSED);
    assert_int_equal(res.status, 0);
}

static void test_timeout_silent_server(void **state)
{
    struct fx *fx = *state;
    raw_start(fx, NULL, 0);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", fx->raw.port);
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = u, .timeout_ms = 300};
    uint64_t t0 = uv_hrtime();
    run_one(fx, &o, &res);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(res.err, UV_ETIMEDOUT);
    assert_true(ms >= 250);   /* the curl timer really ran to the deadline... */
    assert_true(ms < 20000);  /* ...and fired (generous bound, not a performance check) */
}

/* A listener whose accept queue is full drops SYNs: the connect timeout must fire, well
 * before the total timeout. */
static void test_connect_timeout(void **state)
{
    struct fx *fx = *state;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 0), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sa, sizeof(sa)); /* EINPROGRESS expected */
    }
    usleep(100 * 1000);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = u, .connect_timeout_ms = 300, .timeout_ms = 20000};
    uint64_t t0 = uv_hrtime();
    run_one(fx, &o, &res);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(l);
    assert_int_equal(res.err, UV_ETIMEDOUT);
    assert_true(ms < 10000); /* the connect timeout, not the 20 s total one */
}

/* Many transfers at once, all multiplexed on the loop. */
static void test_many_parallel(void **state)
{
    struct fx *fx = *state;
    enum { N = 40 };
    static struct result res[N];
    memset(res, 0, sizeof(res));
    for (int i = 0; i < N; i++) {
        struct p2p_httpc_opts o = {.url = url(fx, i % 2 ? "/hello" : "/blob")};
        start(fx, &o, &res[i]);
    }
    assert_int_equal(p2p_httpc_active(fx->cl), N);
    int done = 0;
    while (done < N) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        assert_false(fx->timed_out);
        done = 0;
        for (int i = 0; i < N; i++)
            done += res[i].calls;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].err, 0);
        assert_int_equal(res[i].status, 200);
        assert_int_equal(res[i].bytes, i % 2 ? res[1].bytes : 64 * 1024);
    }
    assert_int_equal(p2p_httpc_active(fx->cl), 0);
}

static void test_bad_url(void **state)
{
    struct fx *fx = *state;
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = "ftp://127.0.0.1/x"};
    run_one(fx, &o, &res); /* on_done asserts it was not called synchronously */
    assert_int_equal(res.err, UV_EINVAL);
    struct result res2 = {0};
    struct p2p_httpc_opts o2 = {.url = "file:///etc/passwd"};
    run_one(fx, &o2, &res2);
    assert_int_equal(res2.err, UV_EINVAL);
}

/* ---- cancellation ---- */

static struct p2p_httpc_call *to_cancel;

static void on_cancel_timer(uv_timer_t *t)
{
    p2p_httpc_cancel(to_cancel);
    to_cancel = NULL;
    assert_int_equal(p2p_httpc_active(FX->cl), 0);
}

static void on_stop_timer(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void test_cancel(void **state)
{
    struct fx *fx = *state;
    raw_start(fx, NULL, 0);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", fx->raw.port);
    struct result res = {0};
    struct p2p_httpc_opts o = {.url = u, .timeout_ms = 10000};

    /* In flight (connected, waiting for the answer), cancelled from a timer. */
    to_cancel = start(fx, &o, &res);
    uv_timer_t t1, t2;
    uv_timer_init(&fx->loop, &t1);
    uv_timer_init(&fx->loop, &t2);
    uv_timer_start(&t1, on_cancel_timer, 100, 0);
    uv_timer_start(&t2, on_stop_timer, 400, 0);
    fx_run(fx);

    /* Cancelled right away, and cancelled while its setup error is queued. */
    p2p_httpc_cancel(start(fx, &o, &res));
    struct p2p_httpc_opts bad = {.url = "gopher://x/"};
    p2p_httpc_cancel(start(fx, &bad, &res));
    assert_int_equal(p2p_httpc_active(fx->cl), 0);
    uv_timer_start(&t2, on_stop_timer, 100, 0);
    fx_run(fx);
    uv_close((uv_handle_t *)&t1, NULL);
    uv_close((uv_handle_t *)&t2, NULL);
    assert_int_equal(res.calls, 0);

    /* A call left in flight is dropped by shutdown without its done (see teardown). */
    start(fx, &o, &res);
    assert_int_equal(p2p_httpc_active(fx->cl), 1);
}

/* From inside on_data of one call: cancel another call and start a new one (both deferred
 * until curl has returned). */
struct nested {
    struct fx *fx;
    struct p2p_httpc_call *victim;
    struct result victim_res, child_res, main_res;
    bool did;
};
static struct nested NEST;

static int nested_data(const char *data, size_t len, void *ud)
{
    if (!NEST.did) {
        NEST.did = true;
        p2p_httpc_cancel(NEST.victim);
        struct p2p_httpc_opts o = {.url = url(NEST.fx, "/hello")};
        NEST.child_res.stop = true;
        assert_non_null(p2p_httpc_request(NEST.fx->cl, &o, on_done, &NEST.child_res));
    }
    return 0;
}

static void test_nested_calls_from_on_data(void **state)
{
    struct fx *fx = *state;
    raw_start(fx, NULL, 0);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", fx->raw.port);
    memset(&NEST, 0, sizeof(NEST));
    NEST.fx = fx;
    struct p2p_httpc_opts vo = {.url = u};
    NEST.victim = start(fx, &vo, &NEST.victim_res);
    struct p2p_httpc_opts mo = {.url = url(fx, "/blob"), .on_data = nested_data};
    start(fx, &mo, &NEST.main_res);
    while (NEST.child_res.calls == 0 || NEST.main_res.calls == 0) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        assert_false(fx->timed_out);
    }
    assert_true(NEST.did);
    assert_int_equal(NEST.main_res.err, 0);
    assert_int_equal(NEST.main_res.bytes, 64 * 1024);
    assert_int_equal(NEST.child_res.status, 200);
    assert_int_equal(NEST.victim_res.calls, 0);
    assert_int_equal(p2p_httpc_active(fx->cl), 0);
}

/* A done callback cancelling a call whose done is already queued, and starting a new call. */
static struct p2p_httpc_call *queued_victim;
static struct result re_a, re_b, re_c, re_d;

static void reentrant_done(const struct p2p_httpc_resp *r, void *ud)
{
    on_done(r, ud);
    p2p_httpc_cancel(queued_victim);
    struct p2p_httpc_opts o = {.url = "ftp://again/"};
    assert_non_null(p2p_httpc_request(FX->cl, &o, on_done, &re_d));
    assert_int_equal(re_c.calls, 0);
}

static void test_done_reentrancy(void **state)
{
    struct fx *fx = *state;
    struct p2p_httpc_opts o = {.url = "ftp://x/"};
    memset(&re_a, 0, sizeof(re_a));
    re_b = re_c = re_d = re_a;
    assert_non_null(p2p_httpc_request(fx->cl, &o, reentrant_done, &re_a));
    queued_victim = start(fx, &o, &re_b);
    start(fx, &o, &re_c);
    while (re_d.calls == 0) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        assert_false(fx->timed_out);
    }
    assert_int_equal(re_a.calls, 1);
    assert_int_equal(re_b.calls, 0);
    assert_int_equal(re_c.calls, 1);
    assert_int_equal(re_d.err, UV_EINVAL);
    assert_int_equal(p2p_httpc_active(fx->cl), 0);
}

/* Shutdown from inside a done callback, with other calls still in flight. */
static void shutdown_done(const struct p2p_httpc_resp *r, void *ud)
{
    struct result *res = ud;
    res->calls++;
    p2p_httpc_shutdown(FX->cl, on_part_closed, FX);
    FX->cl = NULL;
}

static void test_shutdown_from_done(void **state)
{
    struct fx *fx = *state;
    raw_start(fx, NULL, 0);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", fx->raw.port);
    struct result silent = {0}, first = {0};
    struct p2p_httpc_opts so = {.url = u};
    start(fx, &so, &silent);
    start(fx, &so, &silent);
    struct p2p_httpc_opts o = {.url = url(fx, "/hello")};
    assert_non_null(p2p_httpc_request(fx->cl, &o, shutdown_done, &first));
    while (fx->closed == 0) {
        uv_run(&fx->loop, UV_RUN_ONCE);
        assert_false(fx->timed_out);
    }
    assert_int_equal(first.calls, 1);
    assert_int_equal(silent.calls, 0);
    /* teardown shuts a fresh client down so the closed count stays right */
    fx->closed = 0;
    fx->cl = p2p_httpc_new(&fx->loop);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as p2p_loop_signals does: peers closing early give EPIPE */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_json, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_post_json_roundtrip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_head, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connection_reuse, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_header_cap, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_on_data_abort, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_timeout_silent_server, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_many_parallel, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_url, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cancel, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_nested_calls_from_on_data, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_done_reentrancy, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_from_done, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_chunked_trailer, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_expect_rejected, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_upload_100mib_backpressure, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_download_100mib_stream, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
