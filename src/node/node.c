/* `p2p-sharer node`: configuration, node identity, advertised address, the route table, the
 * tick timer, thread-pool jobs, and the lifecycle (start-up scan, SIGTERM → clean stop). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsx.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"
#include "node/node.h"
#include "node/node_int.h"
#include "node/tus.h"

const char *p2p_node_state_name(enum p2p_node_state s)
{
    switch (s) {
    case P2P_NODE_PENDING: return "pending";
    case P2P_NODE_DOWNLOADING: return "downloading";
    case P2P_NODE_SEEDING: return "seeding";
    case P2P_NODE_FAILED: return "failed";
    case P2P_NODE_CANCELED: return "canceled";
    }
    return "unknown";
}

/* ---- thread-pool jobs ---- */

struct job {
    uv_work_t w;
    struct p2p_node *n;
    void (*work)(void *);
    void (*after)(void *);
    void *arg;
};

static void job_work(uv_work_t *w)
{
    struct job *j = P2P_CONTAINER_OF(w, struct job, w);
    j->work(j->arg);
}

static void job_after(uv_work_t *w, int status)
{
    (void)status; /* never cancelled: uv_cancel is not used */
    struct job *j = P2P_CONTAINER_OF(w, struct job, w);
    struct p2p_node *n = j->n;
    n->jobs--;
    void (*after)(void *) = j->after;
    void *arg = j->arg;
    free(j);
    after(arg);
    if (n->stopping)
        p2p_node_stop_check(n);
}

void p2p_node_job(struct p2p_node *n, void (*work)(void *arg), void (*after)(void *arg),
                  void *arg)
{
    struct job *j = p2p_xcalloc(1, sizeof *j);
    j->n = n;
    j->work = work;
    j->after = after;
    j->arg = arg;
    n->jobs++;
    int rc = uv_queue_work(n->loop, &j->w, job_work, job_after);
    if (rc < 0) {
        p2p_error("uv_queue_work: %s", uv_strerror(rc));
        abort();
    }
}

/* ---- identity and address ---- */

static bool id_ok(const char *s, size_t len)
{
    if (len == 0 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* The node id survives restarts in download_dir/.node-id (blocking: before the loop runs). */
static int load_node_id(struct p2p_node *n)
{
    char *path = p2p_xasprintf("%s/.node-id", n->download_dir);
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    if (p2p_read_file(path, 128, &buf, &len) == 0) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
            len--;
        if (id_ok(buf, len)) {
            memcpy(n->node_id, buf, len);
            n->node_id[len] = '\0';
            goto out;
        }
        p2p_warn("%s: not a node id, making a new one", path);
    }
    char id[37];
    p2p_uuid4(id);
    snprintf(n->node_id, sizeof n->node_id, "%s", id);
    char line[40];
    int l = snprintf(line, sizeof line, "%s\n", id);
    rc = p2p_atomic_write(path, line, (size_t)l);
    if (rc < 0)
        p2p_error("writing %s: %s", path, strerror(-rc));
out:
    free(buf);
    free(path);
    return rc;
}

/* Splits "host:port", "[v6]:port", ":port" into host (no brackets) and returns it. */
static char *listen_host(const char *addr)
{
    if (addr[0] == '[') {
        const char *e = strchr(addr, ']');
        return e ? p2p_xstrndup(addr + 1, (size_t)(e - addr - 1)) : p2p_xstrdup("");
    }
    const char *c = strrchr(addr, ':');
    return c ? p2p_xstrndup(addr, (size_t)(c - addr)) : p2p_xstrdup(addr);
}

static bool is_wildcard(const char *h)
{
    return !*h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "*") == 0;
}

static char *host_port(const char *host, int port)
{
    return strchr(host, ':') ? p2p_xasprintf("[%s]:%d", host, port)
                             : p2p_xasprintf("%s:%d", host, port);
}

static char *first_ipv4(void)
{
    uv_interface_address_t *ifs = NULL;
    int count = 0;
    char *out = NULL;
    if (uv_interface_addresses(&ifs, &count) != 0)
        return NULL;
    for (int i = 0; i < count && !out; i++) {
        if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET)
            continue;
        char ip[64];
        if (uv_ip4_name(&ifs[i].address.address4, ip, sizeof ip) == 0)
            out = p2p_xstrdup(ip);
    }
    uv_free_interface_addresses(ifs, count);
    return out;
}

/* advertise_address if set (port added if missing), else the listen host unless it is a
 * wildcard, else the first non-loopback IPv4, else 127.0.0.1. */
static char *advertise_addr(const struct p2p_node *n, const char *listen, int port)
{
    const char *adv = n->cfg.advertise_address;
    if (adv && *adv) {
        bool has_port = adv[0] == '[' ? strstr(adv, "]:") != NULL
                                      : (strchr(adv, ':') && strchr(adv, ':') == strrchr(adv, ':'));
        if (has_port)
            return p2p_xstrdup(adv);
        if (adv[0] == '[')
            return p2p_xasprintf("%s:%d", adv, port);
        return host_port(adv, port);
    }
    char *host = listen_host(listen);
    char *out = NULL;
    if (!is_wildcard(host)) {
        out = host_port(host, port);
    } else {
        char *ip = first_ipv4();
        out = host_port(ip ? ip : "127.0.0.1", port);
        free(ip);
    }
    free(host);
    return out;
}

/* ---- routes: the one place the HTTP surface is defined ---- */

static struct p2p_httpd_route *build_routes(struct p2p_node *n)
{
    const struct p2p_httpd_route table[] = {
        {"POST", "/v1/task", p2p_node_api_task_post, NULL, P2P_HTTPD_MAX_JSON_BODY, n},
        {"GET", "/v1/task/{id}", p2p_node_api_task_get, NULL, 0, n},
        {"DELETE", "/v1/task/{id}", p2p_node_api_task_delete, NULL, 0, n},
        {"GET", "/v1/tasks", p2p_node_api_tasks, NULL, 0, n},
        {"POST", "/v1/scan", p2p_node_api_scan, NULL, 0, n},
        {"GET", "/v1/probe", p2p_node_api_probe, NULL, 0, n},
        {"GET", "/v1/pieceData", p2p_node_serve_piece_v1, NULL, 0, n},
        {"GET", "/v2/piece/{infoHash}/{index}", p2p_node_serve_piece, NULL, 0, n},
        {"GET", "/v2/file/{infoHash}", p2p_node_serve_file, NULL, 0, n},
        {"GET", "/v2/seed/{infoHash}", p2p_node_serve_seed, NULL, 0, n},
        {"GET", "/v2/seeds", p2p_node_serve_seeds, NULL, 0, n},
        {"GET", "/metrics", p2p_node_api_metrics, NULL, 0, n},
        {"GET", "/healthz", p2p_node_api_healthz, NULL, 0, n},
    };
    /* TUS hook (issue 5): create the module with p2p_tus_new() before p2p_httpd_new(), let
     * p2p_tus_routes(t, r + P2P_ARRAY_LEN(table), 2) fill the two entries reserved here, pass
     * on_finished = a wrapper around p2p_node_adopt_complete(), and call p2p_tus_shutdown()
     * from on_stop. Room: 2 TUS routes + terminator (+1 spare). */
    size_t extra = 4;
    struct p2p_httpd_route *r = p2p_xcalloc(P2P_ARRAY_LEN(table) + extra, sizeof *r);
    memcpy(r, table, sizeof table);
    return r;
}

/* ---- lifecycle ---- */

static void on_tick(uv_timer_t *t)
{
    struct p2p_node *n = t->data;
    if (n->stopping)
        return;
    uint64_t now = p2p_now_ms();
    p2p_node_store_tick(n, now);
    p2p_node_announce_tick(n, now);
    p2p_node_download_tick(n, now);
}

static void httpc_closed(void *ud)
{
    struct p2p_node *n = ud;
    n->httpc = NULL;
    uv_stop(n->loop);
}

static void finish_stop(struct p2p_node *n)
{
    if (n->stop_done)
        return;
    n->stop_done = true;
    uv_timer_stop(&n->tick);
    p2p_loop_signals_close();
    struct p2p_httpc *c = n->httpc;
    p2p_node_calls_cancel(n); /* stop reports still in flight: freed, not leaked */
    if (c)
        p2p_httpc_shutdown(c, httpc_closed, n);
    else
        uv_stop(n->loop);
}

void p2p_node_stop_check(struct p2p_node *n)
{
    if (!n->stopping || n->stop_done)
        return;
    if (n->jobs > 0 || n->calls > 0 || n->httpd || n->tus_stopping)
        return;
    finish_stop(n);
}

static void stop_deadline(uv_timer_t *t)
{
    struct p2p_node *n = t->data;
    if (n->stop_done)
        return;
    p2p_warn("stop: grace period over (%u jobs, %u reports left)", n->jobs, n->calls);
    if (n->jobs > 0) {
        /* thread-pool work cannot be abandoned; check again shortly */
        n->calls = 0;
        uv_timer_start(&n->tick, stop_deadline, 200, 0);
        if (!n->httpd)
            p2p_node_stop_check(n);
        return;
    }
    finish_stop(n);
}

static void httpd_closed(void *ud)
{
    struct p2p_node *n = ud;
    n->httpd = NULL;
    p2p_node_stop_check(n);
}

static void tus_finished(void *ud, const struct p2p_seed *seed, const char *data_path)
{
    struct p2p_node *n = ud;
    int rc = p2p_node_adopt_complete(n, seed);
    if (rc < 0)
        p2p_warn("tus: cannot seed %s (%s): %s", data_path, seed->info_hash, strerror(-rc));
}

static void tus_stopped(void *ud)
{
    struct p2p_node *n = ud;
    n->tus_stopping = false;
    p2p_node_stop_check(n);
}

/* TUS ingest (issue 5): created before the HTTP server; its routes fill the reserved entries. */
static void tus_setup(struct p2p_node *n)
{
    if (!n->cfg.tus.enabled)
        return;
    char *dir = n->cfg.tus.dir && *n->cfg.tus.dir ? p2p_xstrdup(n->cfg.tus.dir)
                                                   : p2p_xasprintf("%s/.tus", n->download_dir);
    struct p2p_tus_opts o = {
        .cfg = &n->cfg.tus,
        .dir = dir,
        .complete_dir = n->complete_dir,
        .trackers = (const char *const *)n->cfg.trackers.v,
        .ntrackers = n->cfg.trackers.n,
        .auth_token = n->cfg.auth_token,
        .httpc = n->httpc,
        .on_finished = tus_finished,
        .ud = n,
    };
    char err[256];
    n->tus = p2p_tus_new(n->loop, &o, err, sizeof err);
    free(dir);
    if (!n->tus) {
        p2p_warn("TUS ingest disabled: %s", err);
        return;
    }
    struct p2p_httpd_route *r = n->routes;
    while (r->path)
        r++;
    p2p_tus_routes(n->tus, r, 2);
}

static void on_stop(void *ud)
{
    struct p2p_node *n = ud;
    if (n->stopping)
        return;
    p2p_info("stopping: saving bitfields, telling trackers");
    n->stopping = true;
    atomic_store(&n->abandon, true); /* long hashing/copy loops on the pool give up */
    p2p_node_calls_cancel(n);        /* heartbeats, reports, peer lists, seed fetches (503) */
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        bool active = f->state == P2P_NODE_DOWNLOADING || f->state == P2P_NODE_SEEDING;
        if (active)
            p2p_node_announce_stopped(f);
        p2p_node_download_stop(f);
        if (f->fd >= 0 || f->busy)
            p2p_node_store_close(f, false); /* saves the bitfield first */
    }
    uv_timer_stop(&n->tick);
    uv_timer_start(&n->tick, stop_deadline, P2P_NODE_STOP_GRACE_MS, 0);
    if (n->tus) {
        n->tus_stopping = true;
        p2p_tus_shutdown(n->tus, tus_stopped, n);
    }
    if (n->httpd)
        p2p_httpd_shutdown(n->httpd, 1000, httpd_closed, n);
    p2p_node_stop_check(n);
}

static void startup_scanned(struct p2p_node *n, int added, void *ud)
{
    (void)ud;
    p2p_info("start-up scan: %d file(s) registered", added);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: p2p-sharer node [-c|--config FILE] [--listen ADDR]\n"
                 "  -c, --config FILE  YAML config (default ./config/config.node.yaml, then\n"
                 "                     /etc/p2p-sharer/config.node.yaml, else defaults)\n"
                 "  --listen ADDR      overrides web.listen_address (\"127.0.0.1:0\" = any port)\n"
                 "Prints \"LISTENING <host>:<port>\" on stdout once the server is bound.\n");
}

int p2p_node_main(int argc, char **argv)
{
    const char *cfg_path = NULL, *listen_override = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            cfg_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            cfg_path = a + 9;
        } else if (strcmp(a, "--listen") == 0 && i + 1 < argc) {
            listen_override = argv[++i];
        } else if (strncmp(a, "--listen=", 9) == 0) {
            listen_override = a + 9;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "p2p-sharer node: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }

    struct p2p_node *n = p2p_xcalloc(1, sizeof *n);
    char err[512];
    char *used = NULL;
    int rc;
    if (p2p_node_cfg_load(&n->cfg, cfg_path, &used, err, sizeof err) < 0) {
        fprintf(stderr, "p2p-sharer node: %s\n", err);
        free(n);
        return 1; /* a bad config is 1 (as for the tracker); 2 is for usage errors */
    }
    enum p2p_log_level level = P2P_LOG_INFO;
    enum p2p_log_format format = P2P_LOG_TEXT;
    if (n->cfg.log.level)
        p2p_log_parse_level(n->cfg.log.level, &level);
    if (n->cfg.log.format)
        p2p_log_parse_format(n->cfg.log.format, &format);
    if (n->cfg.web_mode && strcmp(n->cfg.web_mode, "debug") == 0)
        level = P2P_LOG_DEBUG;
    p2p_log_setup(level, format, "node");
    p2p_info("config: %s", used ? used : "(defaults)");
    free(used);

    n->exit_code = 0;
    n->download_dir = p2p_xstrdup(n->cfg.download_dir && *n->cfg.download_dir
                                      ? n->cfg.download_dir
                                      : "./data");
    n->complete_dir = p2p_xstrdup(n->cfg.complete_dir && *n->cfg.complete_dir
                                      ? n->cfg.complete_dir
                                      : n->download_dir);
    if ((rc = p2p_mkdirs(n->download_dir)) < 0 || (rc = p2p_mkdirs(n->complete_dir)) < 0) {
        fprintf(stderr, "p2p-sharer node: creating directories: %s\n", strerror(-rc));
        n->exit_code = 1;
        goto out_cfg;
    }
    load_node_id(n);
    n->up_rate.rate = n->cfg.upload_rate_limit;
    n->down_rate.rate = n->cfg.download_rate_limit;

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    p2p_loop_threadpool_size((unsigned)(ncpu > 2 ? ncpu + 2 : 4));
    n->loop = p2p_xmalloc(sizeof *n->loop);
    uv_loop_init(n->loop);
    n->httpc = p2p_httpc_new(n->loop);
    n->routes = build_routes(n);
    tus_setup(n);
    struct p2p_httpd_opts hopts = {
        .on_response = p2p_node_metrics_response,
        .on_response_ud = n,
    };
    n->httpd = p2p_httpd_new(n->loop, n->routes, &hopts);
    const char *listen = listen_override ? listen_override : n->cfg.listen_address;
    if (!listen || !*listen)
        listen = ":35331";
    rc = p2p_httpd_listen(n->httpd, listen);
    if (rc < 0) {
        fprintf(stderr, "p2p-sharer node: listen %s: %s\n", listen, uv_strerror(rc));
        n->exit_code = 1;
        n->stopping = true;
        p2p_httpd_shutdown(n->httpd, 0, httpd_closed, n);
        n->httpd = NULL;
        finish_stop(n);
        uv_run(n->loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    int port = p2p_httpd_port(n->httpd);
    n->advertise = advertise_addr(n, listen, port);
    if (n->tus) {
        char *pub = p2p_xasprintf("http://%s", n->advertise);
        p2p_tus_set_public_url(n->tus, pub);
        free(pub);
    }
    {
        char *host = listen_host(listen);
        char *shown = host_port(is_wildcard(host) ? "127.0.0.1" : host, port);
        printf("LISTENING %s\n", shown);
        fflush(stdout);
        free(shown);
        free(host);
    }
    p2p_info("node %s listening on %s, advertised as %s; download_dir %s, complete_dir %s",
             n->node_id, listen, n->advertise, n->download_dir, n->complete_dir);
    for (size_t i = 0; i < n->cfg.trackers.n; i++)
        p2p_node_tracker_get(n, n->cfg.trackers.v[i]);

    uv_timer_init(n->loop, &n->tick);
    n->tick.data = n;
    uv_timer_start(&n->tick, on_tick, P2P_NODE_TICK_MS, P2P_NODE_TICK_MS);
    p2p_loop_signals(n->loop, on_stop, n);
    p2p_node_store_scan(n, startup_scanned, NULL);
    uv_run(n->loop, UV_RUN_DEFAULT);
    p2p_info("stopped");

out_loop:
    while (n->files) {
        struct p2p_node_file *f = n->files;
        n->files = f->next;
        f->in_store = false;
        p2p_node_file_free(f);
    }
    while (n->trackers) {
        struct p2p_node_tracker *t = n->trackers;
        n->trackers = t->next;
        free(t->addr);
        free(t->base);
        free(t);
    }
    p2p_node_buf_drain(n);
    rc = p2p_loop_close_all(n->loop);
    p2p_tus_free(n->tus);
    n->tus = NULL;
    if (rc != 0)
        p2p_warn("loop close: %s", uv_strerror(rc));
    free(n->loop);
    free(n->routes);
    free(n->advertise);
out_cfg:
    free(n->download_dir);
    free(n->complete_dir);
    p2p_node_cfg_free(&n->cfg);
    int code = n->exit_code;
    free(n);
    return code;
}
