/* Fuzz target: the TUS endpoint as a client sees it (src/node/tus*.c behind src/common/httpd.c):
 * bytes in through the real HTTP server into a fresh TUS module on emptied upload directories
 * (on tmpfs) for every input. Upload ids the server hands out can be used by later requests: a run of
 * 32 '@' in the input is replaced by the id of the last Location the client received. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/fsx.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/util.h"
#include "node/tus.h"
#include "seed/seed.h"
#include "fuzz.h"
#include "fuzz_net.h"

/*
 * Input: byte 0 is the client's write size (as in fuzz_http: 0 = all at once); byte 1 holds
 * options: bit 0 requires "Authorization: Bearer secret", bit 1 caps uploads at 4096 bytes
 * (else 1 MiB), bit 2 sets a public URL (else the Host header is used). The rest is sent.
 */
#define TUS_MAX_INPUT (64 * 1024)
#define TUS_MAX_OUTPUT (1u << 20)
#define MAX_SENDS 4096
#define ID_LEN 32

static struct {
    uv_loop_t loop;
    bool init;
    char base[64];      /* per-process directory on tmpfs */
    char up[96];        /* upload dir, recreated for every input */
    char done[96];      /* complete dir */
    struct p2p_tus *tus;
    struct p2p_httpd *srv;
    void (*stop_done)(void *);
    void *stop_ud;
    size_t finished;
    char out[TUS_MAX_OUTPUT];
} g;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Empties a directory, keeping it (cheaper per input than removing and recreating it). */
static void empty_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return; /* not there yet: p2p_tus_new creates it */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) < 0) { /* a directory (or unknown): the whole tree */
            char sub[PATH_MAX];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
    }
    closedir(d);
}

static void cleanup_base(void)
{
    rm_tree(g.base);
}

static void on_finished(void *ud, const struct p2p_seed *seed, const char *data_path)
{
    /* A finished upload is a valid seed of exactly the bytes stored at data_path. */
    struct stat st;
    FUZZ_CHECK(stat(data_path, &st) == 0);
    FUZZ_CHECK((uint64_t)st.st_size == seed->length);
    FUZZ_CHECK(p2p_name_is_safe(seed->file_name, strlen(seed->file_name), NULL));
    FUZZ_CHECK(strncmp(data_path, g.done, strlen(g.done)) == 0);
    g.finished++;
}

/* Thread-pool jobs (file writes, hashing, renames) in flight: quiet turns are no hang then. */
static bool tus_busy(void *ud)
{
    return g.loop.active_reqs.count > 0;
}

static void srv_stopped(void *ud)
{
    p2p_tus_free(g.tus);
    g.tus = NULL;
    g.srv = NULL;
    g.stop_done(g.stop_ud);
}

static void tus_stopped(void *ud)
{
    p2p_httpd_shutdown(g.srv, 0, srv_stopped, NULL);
}

/* The documented order: p2p_tus_shutdown -> done -> p2p_httpd_shutdown -> p2p_tus_free. */
static void stop(void *ud, void (*done)(void *), void *done_ud)
{
    g.stop_done = done;
    g.stop_ud = done_ud;
    p2p_tus_shutdown(g.tus, tus_stopped, NULL);
}

static size_t count(const void *hay, size_t len, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    const char *p = hay, *end = (const char *)hay + len;
    while ((p = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
        n++;
        p += nl;
    }
    return n;
}

/*
 * Upload ids for later requests: a run of 32 '@' stands for the id of the last Location the
 * client received. The client does not send past such a placeholder until every POST it sent
 * has been answered with a Location (or the server is idle without having answered them all:
 * it then goes as is).
 */
static size_t rewrite(void *ud, uint8_t *in, size_t sent, size_t len, const char *out,
                      size_t outlen, int idle)
{
    static const char loc[] = "\r\nLocation: ";
    uint8_t *at = memmem(in + sent, len - sent, "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@", ID_LEN);
    if (!at)
        return len - sent;
    if (at > in + sent)
        return (size_t)(at - (in + sent)); /* everything before the placeholder may go */
    size_t posts = count(in, sent, "POST ");
    size_t locs = count(out, outlen, loc);
    if (locs < posts && idle < FUZZ_NET_IDLE_TURNS)
        return 0;
    const char *id = NULL;
    for (const char *p = out; (p = memmem(p, outlen - (size_t)(p - out), loc, 12)) != NULL;
         p += 12) {
        const char *eol = memmem(p + 12, outlen - (size_t)(p + 12 - out), "\r\n", 2);
        if (eol && eol - (p + 12) >= ID_LEN)
            id = eol - ID_LEN;
    }
    if (id)
        memcpy(at, id, ID_LEN);
    else
        *at = '#'; /* no id to use: send it as it is */
    return len - sent;
}

static void init_once(void)
{
    p2p_log_setup(getenv("FUZZ_LOG") ? P2P_LOG_DEBUG : P2P_LOG_OFF, P2P_LOG_TEXT, "fuzz");
    FUZZ_CHECK(uv_loop_init(&g.loop) == 0);
    const char *shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g.base, sizeof(g.base), "%s/p2p-fuzz-tus-%ld", shm, (long)getpid());
    rm_tree(g.base);
    FUZZ_CHECK(mkdir(g.base, 0700) == 0);
    snprintf(g.up, sizeof(g.up), "%s/up", g.base);
    snprintf(g.done, sizeof(g.done), "%s/done", g.base);
    atexit(cleanup_base);
    g.init = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > TUS_MAX_INPUT)
        return 0;
    if (!g.init)
        init_once();
    size_t step = data[0] ? data[0] : size;
    if (step < size / MAX_SENDS + 1)
        step = size / MAX_SENDS + 1;
    uint8_t opt = data[1];

    /* A fresh module on empty directories, so every input starts from the same state. */
    empty_dir(g.up);
    empty_dir(g.done);
    g.finished = 0;
    char base_path[] = "/files/", hook[] = "";
    struct p2p_tus_cfg cfg = {.enabled = true, .base_path = base_path, .dir = hook,
                              .max_size = (opt & 2) ? 4096 : 1u << 20,
                              .expiration_ms = 24 * 3600 * 1000ull, .hook_url = hook};
    const char *trackers[] = {"127.0.0.1:35330"};
    struct p2p_tus_opts o = {
        .cfg = &cfg,
        .dir = g.up,
        .complete_dir = g.done,
        .trackers = trackers,
        .ntrackers = 1,
        .auth_token = (opt & 1) ? "secret" : NULL,
        .public_url = (opt & 4) ? "http://10.0.0.5:35331" : NULL,
        .on_finished = on_finished,
    };
    char err[256];
    g.tus = p2p_tus_new(&g.loop, &o, err, sizeof(err));
    if (!g.tus)
        fprintf(stderr, "tus_http: p2p_tus_new: %s\n", err);
    FUZZ_CHECK(g.tus != NULL);
    struct p2p_httpd_route routes[3];
    memset(routes, 0, sizeof(routes));
    FUZZ_CHECK(p2p_tus_routes(g.tus, routes, 2) == 2);
    struct p2p_httpd_opts hopts;
    memset(&hopts, 0, sizeof(hopts));
    hopts.header_timeout_ms = 10000;
    hopts.idle_timeout_ms = 10000;
    g.srv = p2p_httpd_new(&g.loop, routes, &hopts);

    static const struct fuzz_net_ops ops = {.busy = tus_busy, .stop = stop, .rewrite = rewrite};
    uint8_t *in = p2p_xmalloc(size - 2 ? size - 2 : 1);
    memcpy(in, data + 2, size - 2);
    size_t outlen = fuzz_net_run(&g.loop, g.srv, in, size - 2, step, &ops, NULL, g.out,
                                 sizeof(g.out));
    free(in);
    FUZZ_CHECK(g.tus == NULL && g.srv == NULL); /* stopped and freed */
    if (outlen > 0)
        FUZZ_CHECK(outlen >= 12 && memcmp(g.out, "HTTP/1.1 ", 9) == 0);
    return 0;
}
