/* A scriptable fake tracker for the node's end-to-end tests (tests/integration/node_announce.sh,
 * node_stop_calls.sh): the original's tracker (no /v2 routes, no `known`), failing reports,
 * short heartbeat intervals, calls that never answer, and a seed behind a redirect. Logs one
 * line per request on stdout. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/fsx.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/util.h"

static struct {
    int v2_report;        /* status for POST /v2/report */
    int v1_report;        /* status for POST /v1/report */
    int peers;            /* status for GET /v2/peers */
    const char *known;    /* "true", "false", or NULL = absent */
    unsigned interval;    /* heartbeat `interval` (s), 0 = absent */
    bool hang;            /* heartbeats, reports, peer lists and GET /hang never answer */
    const char *seed;     /* file served at GET /seed.json (and via GET /redirect) */
    char self[64];        /* "127.0.0.1:port" */
} g = {.v2_report = 200, .v1_report = 200, .peers = 404};

static void note(struct p2p_httpd_req *req, const char *extra)
{
    const char *q = p2p_httpd_query(req, "pieceID");
    printf("REQ %s %s%s%s%s\n", p2p_httpd_method(req), p2p_httpd_path(req), q ? " " : "",
           q ? q : "", extra ? extra : "");
    fflush(stdout);
}

static void aborted(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    p2p_httpd_respond_error(req, 503, "E001", "gone"); /* dropped; frees the request */
}

static void hang(struct p2p_httpd_req *req)
{
    p2p_httpd_on_abort(req, aborted, NULL);
}

static void on_heartbeat(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    note(req, NULL);
    if (g.hang) {
        hang(req);
        return;
    }
    json_t *o = p2p_json_error("E000", "success");
    if (g.interval)
        json_object_set_new(o, "interval", json_integer(g.interval));
    if (g.known)
        json_object_set_new(o, "known", json_boolean(strcmp(g.known, "true") == 0));
    p2p_httpd_respond_json(req, 200, o);
}

static void answer(struct p2p_httpd_req *req, int status)
{
    if (status == 200)
        p2p_httpd_respond_ok(req);
    else
        p2p_httpd_respond_error(req, status, "E001", "fake tracker says %d", status);
}

static void on_v2_report(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *body = p2p_httpd_body(req, &len);
    json_t *o = p2p_json_parse_object(body ? body : "", len, NULL, 0);
    bool full = o && json_object_get(o, "bitfield");
    json_decref(o);
    note(req, full ? " full" : " have");
    if (g.hang) {
        hang(req);
        return;
    }
    answer(req, g.v2_report);
}

static void on_v1_report(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    size_t len = 0;
    const char *body = p2p_httpd_body(req, &len);
    json_t *o = p2p_json_parse_object(body ? body : "", len, NULL, 0);
    const char *id = "", *node = "", *file = "";
    double progress = 0;
    if (o) {
        p2p_json_get_str(o, "pieceID", false, &id, NULL, 0);
        p2p_json_get_str(o, "nodeID", false, &node, NULL, 0);
        p2p_json_get_str(o, "file", false, &file, NULL, 0);
        p2p_json_get_number(o, "progress", false, &progress, NULL, 0);
    }
    printf("V1REPORT %s %s %s %g\n", id, node, file, progress);
    fflush(stdout);
    json_decref(o);
    answer(req, g.v1_report);
}

static void on_peers(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    note(req, NULL);
    if (g.hang) {
        hang(req);
        return;
    }
    if (g.peers == 200) {
        json_t *o = json_object();
        json_object_set_new(o, "pieceCount", json_integer(0));
        json_object_set_new(o, "peers", json_array());
        p2p_httpd_respond_json(req, 200, o);
        return;
    }
    answer(req, g.peers);
}

static void on_hang(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    note(req, NULL);
    hang(req);
}

static void on_seed(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    note(req, NULL);
    char *buf = NULL;
    size_t len = 0;
    if (!g.seed || p2p_read_file(g.seed, 64u << 20, &buf, &len) < 0) {
        p2p_httpd_respond_error(req, 404, "E001", "no seed");
        return;
    }
    p2p_httpd_respond(req, 200, "application/json", buf, len);
    free(buf);
}

static void on_redirect(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    note(req, NULL);
    p2p_httpd_add_headerf(req, "Location", "http://%s/seed.json", g.self);
    p2p_httpd_respond(req, 302, NULL, NULL, 0);
}

static void on_other(struct p2p_httpd_req *req, void *ud)
{
    (void)ud;
    note(req, NULL);
    p2p_httpd_respond_error(req, 404, "E001", "no such route");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--hang") == 0) {
            g.hang = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "usage: node_fake_tracker [--v2-report S] [--v1-report S] "
                            "[--peers S] [--known true|false] [--interval SECS] [--hang] "
                            "[--seed FILE]\n");
            return 2;
        }
        i++;
        if (strcmp(a, "--v2-report") == 0)
            g.v2_report = atoi(v);
        else if (strcmp(a, "--v1-report") == 0)
            g.v1_report = atoi(v);
        else if (strcmp(a, "--peers") == 0)
            g.peers = atoi(v);
        else if (strcmp(a, "--known") == 0)
            g.known = v;
        else if (strcmp(a, "--interval") == 0)
            g.interval = (unsigned)atoi(v);
        else if (strcmp(a, "--seed") == 0)
            g.seed = v;
        else
            return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    static const struct p2p_httpd_route routes[] = {
        {"POST", "/v1/heartBeat", on_heartbeat, NULL, 0, NULL},
        {"POST", "/v2/report", on_v2_report, NULL, 0, NULL},
        {"POST", "/v1/report", on_v1_report, NULL, 0, NULL},
        {"GET", "/v2/peers", on_peers, NULL, 0, NULL},
        {"GET", "/hang", on_hang, NULL, 0, NULL},
        {"GET", "/seed.json", on_seed, NULL, 0, NULL},
        {"GET", "/redirect", on_redirect, NULL, 0, NULL},
        {NULL, NULL, NULL, NULL, 0, NULL},
    };
    struct p2p_httpd_opts opts = {.not_found = on_other};
    struct p2p_httpd *srv = p2p_httpd_new(loop, routes, &opts);
    if (p2p_httpd_listen(srv, "127.0.0.1:0") < 0) {
        fprintf(stderr, "listen failed\n");
        return 1;
    }
    snprintf(g.self, sizeof g.self, "127.0.0.1:%d", p2p_httpd_port(srv));
    printf("LISTENING %s\n", g.self);
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
