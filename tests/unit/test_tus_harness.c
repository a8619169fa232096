/* Test harness: the TUS module on its own HTTP server (127.0.0.1:0), stub node callbacks; prints
 * "LISTENING 127.0.0.1:<port>" and "FINISHED <infoHash> <name> <path>" lines for the scripts in
 * tests/integration/tus/. SIGTERM stops it; exit 0 only if every handle was closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/config.h"
#include "common/httpc.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"
#include "node/tus.h"

struct harness {
    uv_loop_t *loop;
    struct p2p_tus *tus_stopped;
    struct p2p_httpd *srv;
    struct p2p_httpc *httpc;
    struct p2p_tus *tus;
    struct p2p_httpd_route routes[4];
    int stage;
};

static void on_finished(void *ud, const struct p2p_seed *seed, const char *data_path)
{
    (void)ud;
    printf("FINISHED %s %s %s\n", seed->info_hash, seed->file_name, data_path);
    fflush(stdout);
}

static void httpc_done(void *ud)
{
    struct harness *h = ud;
    h->httpc = NULL;
}

static void srv_done(void *ud)
{
    struct harness *h = ud;
    h->srv = NULL;
    p2p_tus_free(h->tus_stopped);
    h->tus_stopped = NULL;
    p2p_httpc_shutdown(h->httpc, httpc_done, h);
}

static void tus_done(void *ud)
{
    struct harness *h = ud;
    h->tus_stopped = h->tus;
    h->tus = NULL;
    p2p_httpd_shutdown(h->srv, 2000, srv_done, h);
}

static void stop(void *ud)
{
    struct harness *h = ud;
    p2p_loop_signals_close();
    p2p_tus_shutdown(h->tus, tus_done, h);
}

int main(int argc, char **argv)
{
    struct p2p_tus_cfg cfg = {.enabled = true, .base_path = "/files/", .dir = "",
                              .max_size = 0, .expiration_ms = 0, .hook_url = ""};
    const char *dir = NULL, *complete = NULL, *token = NULL, *public_url = NULL;
    const char *trackers[4] = {"127.0.0.1:35330"};
    size_t ntrackers = 1;
    size_t max_unfinished = 0, meta_budget = 0;
    uint64_t finished_keep_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--dir") == 0)
            dir = v;
        else if (strcmp(k, "--complete") == 0)
            complete = v;
        else if (strcmp(k, "--max-size") == 0)
            cfg.max_size = strtoull(v, NULL, 10);
        else if (strcmp(k, "--expiration-ms") == 0)
            cfg.expiration_ms = strtoull(v, NULL, 10);
        else if (strcmp(k, "--token") == 0)
            token = v;
        else if (strcmp(k, "--hook") == 0)
            cfg.hook_url = (char *)v;
        else if (strcmp(k, "--public-url") == 0)
            public_url = v;
        else if (strcmp(k, "--base") == 0)
            cfg.base_path = (char *)v;
        else if (strcmp(k, "--max-unfinished") == 0)
            max_unfinished = strtoull(v, NULL, 10);
        else if (strcmp(k, "--meta-budget") == 0)
            meta_budget = strtoull(v, NULL, 10);
        else if (strcmp(k, "--finished-keep-ms") == 0)
            finished_keep_ms = strtoull(v, NULL, 10);
        else if (strcmp(k, "--tracker") == 0 && ntrackers < 4)
            trackers[ntrackers++] = v;
        else {
            fprintf(stderr, "unknown flag %s\n", k);
            return 2;
        }
    }
    if (!dir || !complete) {
        fprintf(stderr, "usage: %s --dir D --complete C [flags]\n", argv[0]);
        return 2;
    }
    p2p_log_setup(getenv("TUS_DEBUG") ? P2P_LOG_DEBUG : P2P_LOG_WARN, P2P_LOG_TEXT, "tus-test");
    struct harness h = {.loop = uv_default_loop()};
    h.httpc = p2p_httpc_new(h.loop);
    struct p2p_tus_opts o = {
        .cfg = &cfg,
        .dir = dir,
        .complete_dir = complete,
        .trackers = trackers,
        .ntrackers = ntrackers,
        .auth_token = token,
        .public_url = public_url,
        .httpc = h.httpc,
        .on_finished = on_finished,
        .ud = &h,
        .max_unfinished = max_unfinished,
        .meta_budget = meta_budget,
        .finished_keep_ms = finished_keep_ms,
    };
    char err[256];
    h.tus = p2p_tus_new(h.loop, &o, err, sizeof err);
    if (!h.tus) {
        fprintf(stderr, "tus: %s\n", err);
        return 1;
    }
    p2p_tus_routes(h.tus, h.routes, 3);
    struct p2p_httpd_opts ho = {.idle_timeout_ms = 5000};
    h.srv = p2p_httpd_new(h.loop, h.routes, &ho);
    int rc = p2p_httpd_listen(h.srv, "127.0.0.1:0");
    if (rc != 0) {
        fprintf(stderr, "listen: %s\n", uv_strerror(rc));
        return 1;
    }
    printf("LISTENING 127.0.0.1:%d\n", p2p_httpd_port(h.srv));
    fflush(stdout);
    p2p_loop_signals(h.loop, stop, &h);
    uv_run(h.loop, UV_RUN_DEFAULT);
    rc = p2p_loop_close_all(h.loop);
    if (rc != 0 || h.tus || h.srv || h.httpc) {
        fprintf(stderr, "harness: unclean stop (loop close %d)\n", rc);
        return 3;
    }
    return 0;
}
