/* Node control API: tasks (create from a seed URL or inline seed, status, list, cancel), scan,
 * probe, Prometheus metrics, health, and the bearer-token guard. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/fsx.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "node/node_int.h"

/* Constant-time check of "Authorization: Bearer <token>" when auth_token is set. */
static bool authorized(struct p2p_node *n, struct p2p_httpd_req *req)
{
    const char *tok = n->cfg.auth_token;
    if (!tok || !*tok)
        return true;
    const char *h = p2p_httpd_header(req, "Authorization");
    bool ok = false;
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *v = h + 7;
        size_t a = strlen(v), b = strlen(tok);
        unsigned diff = (unsigned)(a ^ b);
        for (size_t i = 0; i < a && i < b; i++)
            diff |= (unsigned)(v[i] ^ tok[i]);
        ok = diff == 0;
    }
    if (!ok) {
        p2p_httpd_add_header(req, "WWW-Authenticate", "Bearer");
        p2p_httpd_respond_error(req, 401, "E001", "missing or wrong bearer token");
    }
    return ok;
}

void *p2p_node_task_json(const struct p2p_node_file *f)
{
    uint32_t peers = 0;
    for (size_t i = 0; i < f->npeers; i++)
        peers += !f->peers[i]->banned;
    json_t *o = json_object();
    json_object_set_new(o, "taskId", json_string(f->seed.info_hash));
    json_object_set_new(o, "fileName", json_string(f->seed.file_name));
    json_object_set_new(o, "state", json_string(p2p_node_state_name(f->state)));
    json_object_set_new(o, "piecesDone", json_integer(f->have.count));
    json_object_set_new(o, "pieceCount", json_integer(f->seed.npieces));
    json_object_set_new(o, "bytesDone", json_integer((json_int_t)f->bytes_done));
    json_object_set_new(o, "length", json_integer((json_int_t)f->seed.length));
    json_object_set_new(o, "speed", json_integer((json_int_t)f->speed));
    json_object_set_new(o, "peers", json_integer(f->state == P2P_NODE_DOWNLOADING ? peers : 0));
    if (f->error)
        json_object_set_new(o, "error", json_string(f->error));
    return o;
}

/* ---- POST /v1/task ---- */

struct task_req {
    struct p2p_node_pending pend; /* first: drop() gets it back */
    struct p2p_node *n;
    struct p2p_httpd_req *req;
};

/* A seed fetch cancelled by a stop: the waiting request is answered 503. */
static void task_req_drop(struct p2p_node_pending *p)
{
    struct task_req *t = (struct task_req *)p;
    p2p_httpd_add_header(t->req, "Retry-After", "10");
    p2p_httpd_respond_error(t->req, 503, "E001", "node is stopping");
    free(t);
}

/* Seed parsing and validation (infoHash included) of a fetched or inline seed, on the pool. */
struct parse_job {
    struct p2p_node *n;
    struct p2p_httpd_req *req;
    char *buf;                    /* fetched seed text, or NULL */
    size_t len;
    json_t *obj;                  /* inline seed (owned reference), or NULL */
    struct p2p_seed seed;
    int rc;
    char err[256];
};

static void created(struct p2p_node_file *f, int status, const char *err, void *ud)
{
    struct p2p_httpd_req *req = ud;
    struct p2p_node *n = f->node;
    if (status == 0) {
        json_t *o = p2p_json_error("E000", "success");
        json_object_set_new(o, "taskId", json_string(f->seed.info_hash));
        p2p_httpd_respond_json(req, 200, o);
        return;
    }
    p2p_warn("task %s (%s) refused: %s", f->seed.file_name, f->seed.info_hash, err);
    int code = status == -EEXIST ? 409 : status == -ENOSPC || status == -EDQUOT ? 507 : 500;
    p2p_httpd_respond_error(req, code, "E001", "%s", err);
    p2p_node_unregister(n, f);
}

static bool idle(const struct p2p_node_file *f)
{
    return f->busy == 0 && f->fd < 0 && !f->closing &&
           (f->state == P2P_NODE_CANCELED || f->state == P2P_NODE_FAILED);
}

/* Admits a validated seed (takes its contents): idempotent for a known infoHash, 409 for a
 * name held by another file, else a new task created on disk before the answer. */
static void admit(struct p2p_node *n, struct p2p_httpd_req *req, struct p2p_seed *seed)
{
    const char *why = NULL;
    if (n->stopping) {
        p2p_httpd_respond_error(req, 503, "E001", "node is stopping");
        goto out;
    }
    if (!p2p_name_is_safe(seed->file_name, strlen(seed->file_name), &why)) {
        p2p_httpd_respond_error(req, 400, "E001", "seed: field 'fileName': %s", why);
        goto out;
    }
    if (n->cfg.max_file_size && seed->length > n->cfg.max_file_size) {
        p2p_httpd_respond_error(req, 413, "E001", "seed: length %llu exceeds max_file_size",
                                (unsigned long long)seed->length);
        goto out;
    }
    struct p2p_node_file *f = p2p_node_find(n, seed->info_hash);
    if (f && !idle(f)) {
        json_t *o = p2p_json_error("E000", "success");
        json_object_set_new(o, "taskId", json_string(f->seed.info_hash));
        p2p_httpd_respond_json(req, 200, o);
        goto out;
    }
    if (f) { /* a cancelled or failed task of the same file: start again */
        p2p_node_unregister(n, f);
        f = NULL;
    }
    struct p2p_node_file *other = p2p_node_find_name(n, seed->file_name);
    if (other && idle(other)) {
        p2p_node_unregister(n, other);
        other = NULL;
    }
    if (other) {
        p2p_httpd_respond_error(req, 409, "E001",
                                "a different file named '%s' is held (infoHash %s)",
                                seed->file_name, other->seed.info_hash);
        goto out;
    }
    size_t active = 0;
    for (struct p2p_node_file *g = n->files; g; g = g->next)
        active += g->state == P2P_NODE_PENDING || g->state == P2P_NODE_DOWNLOADING;
    if (n->cfg.max_tasks && active >= n->cfg.max_tasks) {
        p2p_httpd_add_header(req, "Retry-After", "10");
        p2p_httpd_respond_error(req, 503, "E001", "too many tasks (%zu)", active);
        goto out;
    }
    f = p2p_node_file_new(n, seed);
    if (!f) {
        p2p_httpd_respond_error(req, 400, "E001", "seed: field 'fileName': not usable");
        goto out;
    }
    p2p_node_register(n, f);
    n->m.tasks_created++;
    p2p_info("task %s: %s, %llu bytes, %u pieces", f->seed.info_hash, f->seed.file_name,
             (unsigned long long)f->seed.length, f->seed.npieces);
    p2p_node_store_create(f, created, req);
out:
    p2p_seed_cleanup(seed);
}

static void parse_work(void *arg)
{
    struct parse_job *j = arg;
    if (j->obj)
        j->rc = p2p_seed_from_json(j->obj, &j->seed, j->err, sizeof j->err);
    else
        j->rc = p2p_seed_parse(j->buf ? j->buf : "", j->len, &j->seed, j->err, sizeof j->err);
}

static void parse_after(void *arg)
{
    struct parse_job *j = arg;
    if (j->obj)
        json_decref(j->obj);
    free(j->buf);
    if (j->rc < 0) {
        p2p_seed_cleanup(&j->seed);
        p2p_httpd_respond_error(j->req, 400, "E001", "seed: %s", j->err);
    } else {
        admit(j->n, j->req, &j->seed);
    }
    free(j);
}

static void parse_seed(struct p2p_node *n, struct p2p_httpd_req *req, char *buf, size_t len,
                       json_t *obj)
{
    struct parse_job *j = p2p_xcalloc(1, sizeof *j);
    j->n = n;
    j->req = req;
    j->buf = buf;
    j->len = len;
    j->obj = obj;
    p2p_node_job(n, parse_work, parse_after, j);
}

static void seed_fetched(const struct p2p_httpc_resp *resp, void *ud)
{
    struct task_req *t = ud;
    struct p2p_node *n = t->n;
    struct p2p_httpd_req *req = t->req;
    p2p_node_call_done(n, &t->pend);
    free(t);
    if (resp->err == UV_E2BIG) {
        p2p_httpd_respond_error(req, 400, "E001", "seedFile: larger than %u bytes",
                                P2P_SEED_MAX_BYTES);
        return;
    }
    if (resp->err) {
        p2p_httpd_respond_error(req, 400, "E001", "seedFile: fetch failed: %s",
                                resp->errmsg ? resp->errmsg : "error");
        return;
    }
    if (resp->status != 200) {
        p2p_httpd_respond_error(req, 400, "E001", "seedFile: fetch failed: HTTP %ld",
                                resp->status);
        return;
    }
    if (n->stopping) {
        p2p_httpd_respond_error(req, 503, "E001", "node is stopping");
        return;
    }
    /* parsed, validated and hashed on the pool: a seed may be up to 64 MiB */
    char *copy = p2p_xmalloc(resp->body_len + 1);
    if (resp->body_len)
        memcpy(copy, resp->body, resp->body_len);
    copy[resp->body_len] = '\0';
    parse_seed(n, req, copy, resp->body_len, NULL);
}

static void task_aborted(struct p2p_httpd_req *req, void *ud)
{
    (void)req;
    (void)ud; /* the answer is still produced (and dropped) when the work ends */
}

void p2p_node_api_task_post(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    if (!authorized(n, req))
        return;
    if (n->stopping) {
        p2p_httpd_respond_error(req, 503, "E001", "node is stopping");
        return;
    }
    size_t len = 0;
    const char *body = p2p_httpd_body(req, &len);
    char err[256];
    json_t *o = p2p_json_parse_object(body ? body : "", len, err, sizeof err);
    if (!o) {
        p2p_httpd_respond_error(req, 400, "E001", "body: %s", err);
        return;
    }
    json_t *inline_seed = json_object_get(o, "seed");
    const char *url = NULL;
    int has_url = p2p_json_get_str(o, "seedFile", false, &url, err, sizeof err);
    if (has_url < 0) {
        p2p_httpd_respond_error(req, 400, "E001", "%s", err);
        goto out;
    }
    if ((inline_seed != NULL) == (has_url == 0)) {
        p2p_httpd_respond_error(req, 400, "E001", "give exactly one of 'seedFile' and 'seed'");
        goto out;
    }
    p2p_httpd_on_abort(req, task_aborted, NULL);
    if (inline_seed) {
        if (!json_is_object(inline_seed)) {
            p2p_httpd_respond_error(req, 400, "E001", "field 'seed': must be an object");
            goto out;
        }
        /* detached from the body object: from here on only the pool job touches it */
        json_incref(inline_seed);
        json_object_del(o, "seed");
        parse_seed(n, req, NULL, 0, inline_seed);
        goto out;
    }
    if (strlen(url) > 4096 ||
        (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)) {
        p2p_httpd_respond_error(req, 400, "E001", "field 'seedFile': only http:// and https:// "
                                                  "URLs are accepted");
        goto out;
    }
    struct task_req *t = p2p_xcalloc(1, sizeof *t);
    t->pend.drop = task_req_drop;
    t->n = n;
    t->req = req;
    struct p2p_httpc_opts opts = {
        .url = url,
        .max_body = P2P_SEED_MAX_BYTES,
        .connect_timeout_ms = 5000,
        .timeout_ms = P2P_NODE_SEED_FETCH_MS,
        .max_redirects = 5, /* the original followed redirects; http/https targets only */
    };
    p2p_node_call(n, &t->pend, &opts, seed_fetched, t);
out:
    json_decref(o);
}

/* ---- task status / cancel ---- */

void p2p_node_api_task_get(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    const char *id = p2p_httpd_param(req, "id");
    struct p2p_node_file *f = id ? p2p_node_find(n, id) : NULL;
    if (!f) {
        p2p_httpd_respond_error(req, 404, "E001", "no such task");
        return;
    }
    p2p_httpd_respond_json(req, 200, p2p_node_task_json(f));
}

void p2p_node_api_tasks(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    json_t *arr = json_array();
    for (struct p2p_node_file *f = n->files; f; f = f->next)
        json_array_append_new(arr, p2p_node_task_json(f));
    json_t *o = json_object();
    json_object_set_new(o, "tasks", arr);
    p2p_httpd_respond_json(req, 200, o);
}

void p2p_node_api_task_delete(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    if (!authorized(n, req))
        return;
    const char *id = p2p_httpd_param(req, "id");
    struct p2p_node_file *f = id ? p2p_node_find(n, id) : NULL;
    if (!f) {
        p2p_httpd_respond_error(req, 404, "E001", "no such task");
        return;
    }
    if (f->state == P2P_NODE_PENDING || f->state == P2P_NODE_DOWNLOADING ||
        f->state == P2P_NODE_SEEDING) {
        bool partial = f->state != P2P_NODE_SEEDING && !f->finishing;
        p2p_node_announce_stopped(f);
        f->state = P2P_NODE_CANCELED;
        p2p_node_store_close(f, partial);
        p2p_info("task %s (%s) cancelled", f->seed.info_hash, f->seed.file_name);
    }
    json_t *o = p2p_json_error("E000", "success");
    json_object_set_new(o, "taskId", json_string(f->seed.info_hash));
    p2p_httpd_respond_json(req, 200, o);
}

/* ---- scan ---- */

static void scanned(struct p2p_node *n, int added, void *ud)
{
    (void)n;
    struct p2p_httpd_req *req = ud;
    json_t *o = p2p_json_error("E000", "success");
    json_object_set_new(o, "added", json_integer(added));
    p2p_httpd_respond_json(req, 200, o);
}

void p2p_node_api_scan(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    if (!authorized(n, req))
        return;
    if (n->stopping) {
        p2p_httpd_respond_error(req, 503, "E001", "node is stopping");
        return;
    }
    p2p_httpd_on_abort(req, task_aborted, NULL);
    p2p_node_store_scan(n, scanned, req);
}

/* ---- probe, metrics, health ---- */

void p2p_node_api_probe(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    json_t *files = json_array(), *tasks = json_array(), *peers = json_array();
    json_t *trackers = json_array();
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        json_t *o = json_object();
        json_object_set_new(o, "infoHash", json_string(f->seed.info_hash));
        json_object_set_new(o, "fileName", json_string(f->seed.file_name));
        json_object_set_new(o, "state", json_string(p2p_node_state_name(f->state)));
        json_object_set_new(o, "length", json_integer((json_int_t)f->seed.length));
        json_object_set_new(o, "piecesDone", json_integer(f->have.count));
        json_object_set_new(o, "pieceCount", json_integer(f->seed.npieces));
        json_object_set_new(o, "progress", json_real(f->seed.npieces ? (double)f->have.count /
                                                                          f->seed.npieces
                                                                    : 1.0));
        json_array_append_new(files, o);
        if (f->state != P2P_NODE_SEEDING)
            json_array_append_new(tasks, p2p_node_task_json(f));
        for (size_t i = 0; i < f->npeers; i++) {
            const struct p2p_node_peer *p = f->peers[i];
            json_t *q = json_object();
            json_object_set_new(q, "nodeId", json_string(p->node_id));
            json_object_set_new(q, "addr", json_string(p->addr ? p->addr : ""));
            json_object_set_new(q, "infoHash", json_string(f->seed.info_hash));
            json_object_set_new(q, "pieces", json_integer(p->bf.count));
            json_object_set_new(q, "inflight", json_integer(p->inflight));
            json_object_set_new(q, "faults", json_integer(p->faults));
            json_object_set_new(q, "banned", json_boolean(p->banned));
            json_object_set_new(q, "bytes", json_integer((json_int_t)p->bytes));
            json_array_append_new(peers, q);
        }
    }
    for (struct p2p_node_tracker *t = n->trackers; t; t = t->next) {
        json_t *o = json_object();
        json_object_set_new(o, "addr", json_string(t->addr));
        json_object_set_new(o, "alive", json_boolean(t->alive));
        json_array_append_new(trackers, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "nodeId", json_string(n->node_id));
    json_object_set_new(o, "addr", json_string(n->advertise));
    json_object_set_new(o, "zone", json_string(n->cfg.zone ? n->cfg.zone : ""));
    json_object_set_new(o, "version", json_string(P2P_VERSION));
    json_object_set_new(o, "files", files);
    json_object_set_new(o, "tasks", tasks);
    json_object_set_new(o, "peers", peers);
    json_object_set_new(o, "trackers", trackers);
    json_object_set_new(o, "uploads", json_integer(n->uploads));
    p2p_httpd_respond_json(req, 200, o);
}

/* Route label for metrics: the route pattern, not the raw path (bounded cardinality). */
static const char *route_label(const char *path)
{
    static const struct {
        const char *prefix;
        const char *label;
    } map[] = {
        {"/v2/piece/", "/v2/piece"}, {"/v2/file/", "/v2/file"}, {"/v2/seed/", "/v2/seed"},
        {"/v2/seeds", "/v2/seeds"},  {"/v1/pieceData", "/v1/pieceData"},
        {"/v1/tasks", "/v1/tasks"},  {"/v1/task", "/v1/task"}, {"/v1/scan", "/v1/scan"},
        {"/v1/probe", "/v1/probe"},  {"/metrics", "/metrics"}, {"/healthz", "/healthz"},
    };
    for (size_t i = 0; i < P2P_ARRAY_LEN(map); i++)
        if (strncmp(path, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].label;
    return "other";
}

void p2p_node_metrics_response(struct p2p_httpd_req *req, int status, void *ud)
{
    struct p2p_node *n = ud;
    const char *path = p2p_httpd_path(req);
    const char *label = route_label(path ? path : "");
    struct p2p_node_metrics *m = &n->m;
    for (size_t i = 0; i < m->nreq; i++) {
        if (m->req[i].status == status && strcmp(m->req[i].route, label) == 0) {
            m->req[i].n++;
            return;
        }
    }
    if (m->nreq < P2P_ARRAY_LEN(m->req)) {
        snprintf(m->req[m->nreq].route, sizeof m->req[m->nreq].route, "%s", label);
        m->req[m->nreq].status = status;
        m->req[m->nreq].n = 1;
        m->nreq++;
    }
}

void p2p_node_api_metrics(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    const struct p2p_node_metrics *m = &n->m;
    size_t states[5] = {0};
    uint64_t peers = 0, banned = 0, verified_bytes = 0;
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        states[f->state]++;
        verified_bytes += f->bytes_done;
        for (size_t i = 0; i < f->npeers; i++) {
            peers += !f->peers[i]->banned;
            banned += f->peers[i]->banned;
        }
    }
    size_t cap = 4096 + m->nreq * 128, len = 0;
    char *buf = p2p_xmalloc(cap);
#define OUT(...) len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__)
    OUT("# HELP p2p_node_bytes_up_total Bytes of pieces and files served.\n"
        "# TYPE p2p_node_bytes_up_total counter\np2p_node_bytes_up_total %llu\n",
        (unsigned long long)m->bytes_up);
    OUT("# HELP p2p_node_bytes_down_total Piece bytes received from peers.\n"
        "# TYPE p2p_node_bytes_down_total counter\np2p_node_bytes_down_total %llu\n",
        (unsigned long long)m->bytes_down);
    OUT("# TYPE p2p_node_pieces_verified_total counter\np2p_node_pieces_verified_total %llu\n",
        (unsigned long long)m->pieces_verified);
    OUT("# TYPE p2p_node_pieces_failed_total counter\np2p_node_pieces_failed_total %llu\n",
        (unsigned long long)m->pieces_failed);
    OUT("# TYPE p2p_node_tasks_created_total counter\np2p_node_tasks_created_total %llu\n",
        (unsigned long long)m->tasks_created);
    OUT("# TYPE p2p_node_tasks gauge\n");
    for (int s = 0; s < 5; s++)
        OUT("p2p_node_tasks{state=\"%s\"} %zu\n", p2p_node_state_name((enum p2p_node_state)s),
            states[s]);
    OUT("# TYPE p2p_node_peers gauge\np2p_node_peers %llu\n", (unsigned long long)peers);
    OUT("# TYPE p2p_node_peers_banned gauge\np2p_node_peers_banned %llu\n",
        (unsigned long long)banned);
    OUT("# TYPE p2p_node_bytes_held gauge\np2p_node_bytes_held %llu\n",
        (unsigned long long)verified_bytes);
    OUT("# TYPE p2p_node_upload_slots_busy gauge\np2p_node_upload_slots_busy %u\n", n->uploads);
    OUT("# TYPE p2p_node_http_requests_total counter\n");
    for (size_t i = 0; i < m->nreq; i++)
        OUT("p2p_node_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", m->req[i].route,
            m->req[i].status, (unsigned long long)m->req[i].n);
#undef OUT
    if (len >= cap)
        len = cap - 1;
    p2p_httpd_respond(req, 200, "text/plain; version=0.0.4", buf, len);
    free(buf);
}

void p2p_node_api_healthz(struct p2p_httpd_req *req, void *ud)
{
    struct p2p_node *n = ud;
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(n->stopping ? "stopping" : "ok"));
    json_object_set_new(o, "nodeId", json_string(n->node_id));
    p2p_httpd_respond_json(req, n->stopping ? 503 : 200, o);
}
