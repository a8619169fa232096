/* File responses through the sendfile path of src/common/httpd.c: a large body to a reader slow
 * enough that the socket buffer fills (EAGAIN, then the writability poll), ranges, pacing, a
 * client that vanishes while the server waits to write, and a clean loop close afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/httpd.h"

#define BIG (8 * 1024 * 1024 + 4321) /* several sendfile windows and socket buffers */

struct fx {
    uv_loop_t loop;
    uv_async_t stop;
    struct p2p_httpd *srv;
    int port;
    char path[64];
    unsigned char *data;
    int done_calls, done_ok, done_err;
    int pace_calls;
    pthread_t th;
    int client_ok; /* set by the client thread: 1 = every check passed */
    char why[160];
};

static void on_done(void *ud, int status)
{
    struct fx *f = ud;
    f->done_calls++;
    if (status == 0)
        f->done_ok++;
    else
        f->done_err++;
}

/* Allows 256 KiB, then asks for a 1 ms pause, alternately. */
static size_t pace(void *ud, size_t want, uint64_t *delay_ms)
{
    struct fx *f = ud;
    if (f->pace_calls++ % 2) {
        *delay_ms = 1;
        return 0;
    }
    return want < 262144 ? want : 262144;
}

static void h_file(struct p2p_httpd_req *req, void *ud)
{
    struct fx *f = ud;
    struct p2p_httpd_file file = {.path = f->path, .done = on_done, .done_ud = f};
    uint64_t off = 0, len = BIG;
    int r = p2p_httpd_parse_range(p2p_httpd_header(req, "Range"), BIG, &off, &len);
    if (p2p_httpd_query(req, "pace")) {
        file.pace = pace;
        file.pace_ud = f;
    }
    file.offset = off;
    file.length = len;
    p2p_httpd_respond_file(req, r > 0 ? 206 : 200, &file);
}

static void srv_gone(void *ud)
{
    struct fx *f = ud;
    f->srv = NULL;
    uv_close((uv_handle_t *)&f->stop, NULL);
}

static void on_stop(uv_async_t *a)
{
    struct fx *f = a->data;
    p2p_httpd_shutdown(f->srv, 1000, srv_gone, f);
}

/* ---- client side (its own thread, blocking sockets) ---- */

static int cli_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int small = 16384; /* a small receive buffer fills quickly */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void nap_us(long us)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
    nanosleep(&ts, NULL);
}

/* Sends req, reads the head and body_len body bytes (slowly if slow) and compares them with
 * want. Returns 1 on success; fills why otherwise. */
static int fetch(struct fx *f, int fd, const char *req, int status, const unsigned char *want,
                 size_t body_len, bool slow)
{
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        snprintf(f->why, sizeof f->why, "send failed");
        return 0;
    }
    char head[4096];
    size_t hl = 0;
    char *end = NULL;
    while (!end) {
        if (hl == sizeof head - 1) {
            snprintf(f->why, sizeof f->why, "head too long");
            return 0;
        }
        ssize_t n = read(fd, head + hl, 1); /* byte by byte: do not eat the body */
        if (n <= 0) {
            snprintf(f->why, sizeof f->why, "connection ended in the head");
            return 0;
        }
        hl++;
        head[hl] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    int st = 0;
    if (sscanf(head, "HTTP/1.1 %d", &st) != 1 || st != status) {
        snprintf(f->why, sizeof f->why, "status %d, want %d", st, status);
        return 0;
    }
    unsigned char *buf = malloc(body_len ? body_len : 1);
    size_t got = 0;
    int reads = 0;
    while (got < body_len) {
        size_t want_n = slow ? 32768 : body_len - got;
        if (want_n > body_len - got)
            want_n = body_len - got;
        ssize_t n = read(fd, buf + got, want_n);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (slow && ++reads % 8 == 0)
            nap_us(2000); /* the server's socket buffer fills meanwhile */
    }
    int ok = got == body_len && memcmp(buf, want, body_len) == 0;
    if (!ok)
        snprintf(f->why, sizeof f->why, "body: %zu of %zu bytes, %s", got, body_len,
                 got == body_len ? "content differs" : "short");
    free(buf);
    return ok;
}

static void *client(void *arg)
{
    struct fx *f = arg;
    int ok = 0;
    int fd = cli_connect(f->port);
    if (fd < 0) {
        snprintf(f->why, sizeof f->why, "connect failed");
        goto out;
    }
    /* 1: the whole file to a slow reader (EAGAIN -> poll -> more sendfile jobs) */
    if (!fetch(f, fd, "GET /f HTTP/1.1\r\nHost: t\r\n\r\n", 200, f->data, BIG, true))
        goto out_fd;
    /* 2: an unaligned range on the same keep-alive connection, read at full speed */
    if (!fetch(f, fd, "GET /f HTTP/1.1\r\nHost: t\r\nRange: bytes=12345-5012344\r\n\r\n", 206,
               f->data + 12345, 5000000, false))
        goto out_fd;
    /* 3: paced by the pace hook */
    if (!fetch(f, fd, "GET /f?pace=1 HTTP/1.1\r\nHost: t\r\nRange: bytes=7-3000006\r\n\r\n", 206,
               f->data + 7, 3000000, false))
        goto out_fd;
    /* 4: the client stops reading and resets the connection while the server waits to write */
    const char *req = "GET /f HTTP/1.1\r\nHost: t\r\n\r\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        goto out_fd;
    char some[65536];
    if (read(fd, some, sizeof some) <= 0)
        goto out_fd;
    nap_us(200000); /* long enough for the server to block on a full socket buffer */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ok = 1;
out_fd:
    close(fd);
out:
    f->client_ok = ok;
    nap_us(100000); /* let the server notice the reset before it shuts down */
    uv_async_send(&f->stop);
    return NULL;
}

static void test_sendfile_paths(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as p2p_loop_signals does */
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/p2p-httpd-file-XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    f->data = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        f->data[i] = (unsigned char)((i * 131 + i / 4093) & 0xff);
    assert_int_equal(write(fd, f->data, BIG), BIG);
    close(fd);

    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_async_init(&f->loop, &f->stop, on_stop);
    f->stop.data = f;
    struct p2p_httpd_route routes[] = {
        {"GET", "/f", h_file, NULL, 0, f},
        {NULL, NULL, NULL, NULL, 0, NULL},
    };
    f->srv = p2p_httpd_new(&f->loop, routes, NULL);
    assert_non_null(f->srv);
    assert_int_equal(p2p_httpd_listen(f->srv, "127.0.0.1:0"), 0);
    f->port = p2p_httpd_port(f->srv);
    assert_true(f->port > 0);
    assert_int_equal(pthread_create(&f->th, NULL, client, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->th, NULL);
    if (!f->client_ok)
        fail_msg("client: %s", f->why);
    assert_null(f->srv);
    assert_int_equal(f->done_ok, 3);
    assert_int_equal(f->done_err, 1); /* the reset one */
    assert_true(f->pace_calls > 4);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    unlink(f->path);
    free(f->data);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sendfile_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
