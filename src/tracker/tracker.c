/* The tracker service: command line and config, the HTTP routes of docs/PROTOCOL.md "Tracker"
 * on top of the swarm state, metrics, the expiry timer and graceful shutdown. */
#include "tracker/tracker.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <uv.h>

#include "common/bitfield.h"
#include "common/config.h"
#include "common/httpd.h"
#include "common/json.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/util.h"
#include "tracker/proto.h"
#include "tracker/swarm.h"

#define SHUTDOWN_GRACE_MS 2000
#define MIN_STATUS 100
#define MAX_STATUS 599
#define PROBE_LIMIT_DEFAULT 1000   /* entries per list of /v1/probe without ?limit= */
#define PROBE_LIMIT_MAX 10000     /* unauthenticated: bounds one answer's work */

/* Route names for metrics; index = enum route. */
enum route {
    R_HEARTBEAT, R_REPORT, R_PEERS, R_PROBE, R_METRICS, R_HEALTHZ, R_V1REPORT, R_V1NODELIST,
    R_OTHER, R_COUNT
};
static const char *const route_paths[R_COUNT] = {
    "/v1/heartBeat", "/v2/report", "/v2/peers", "/v1/probe", "/metrics", "/healthz",
    "/v1/report", "/v1/nodeList", "other",
};

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) P2P_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->p = p2p_xrealloc(b->p, b->cap);
    }
}

/* Ensures room for n more bytes. */
static char *sb_reserve(struct sbuf *b, size_t n)
{
    if (b->cap - b->len < n) {
        b->cap = b->cap * 2 + n;
        b->p = p2p_xrealloc(b->p, b->cap);
    }
    return b->p + b->len;
}

static void sb_append(struct sbuf *b, const char *s, size_t n)
{
    memcpy(sb_reserve(b, n), s, n);
    b->len += n;
}

#define SB_LIT(b, lit) sb_append((b), (lit), sizeof(lit) - 1)

struct tracker {
    uv_loop_t loop;
    struct p2p_tracker_cfg cfg;
    struct p2p_swarm sw;
    struct p2p_httpd *srv;
    uv_timer_t expiry;
    uint64_t started_ms;
    uint64_t requests[R_COUNT][MAX_STATUS - MIN_STATUS + 1];
    struct sbuf scratch; /* response building; the server copies the body */
    struct p2p_swarm_holder **peers; /* max_peers entries, for /v2/peers */
};

/* ---- small helpers ---- */

static uint64_t now_ms(struct tracker *t)
{
    return uv_now(&t->loop);
}

/* Recommended heartbeat period: half the session lifetime. */
static uint64_t interval_ms(const struct tracker *t)
{
    uint64_t ms = t->cfg.session_expire_ms / 2;
    return ms ? ms : 1;
}

static bool authorized(struct tracker *t, struct p2p_httpd_req *req)
{
    const char *token = t->cfg.auth_token;
    if (!token[0])
        return true;
    const char *h = p2p_httpd_header(req, "Authorization");
    size_t tlen = strlen(token);
    if (h && strncasecmp(h, "Bearer ", 7) == 0 && strlen(h + 7) == tlen &&
        CRYPTO_memcmp(h + 7, token, tlen) == 0)
        return true;
    p2p_httpd_add_header(req, "WWW-Authenticate", "Bearer");
    p2p_httpd_respond_error(req, 401, "E001", "missing or wrong Authorization: Bearer token");
    return false;
}

/* The start of every write route: checks the token, then parses the body as one JSON object.
 * On failure it has answered (401 or 400) and returns NULL. */
static json_t *authorized_body(struct tracker *t, struct p2p_httpd_req *req)
{
    if (!authorized(t, req))
        return NULL;
    size_t len = 0;
    const char *body = p2p_httpd_body(req, &len);
    char err[200];
    if (!body || len == 0) {
        p2p_httpd_respond_error(req, 400, "E001", "empty body: expected a JSON object");
        return NULL;
    }
    json_t *obj = p2p_json_parse_object(body, len, err, sizeof err);
    if (!obj)
        p2p_httpd_respond_error(req, 400, "E001", "malformed JSON: %s", err);
    return obj;
}

/* Answers a swarm error code with the matching status. */
static void respond_swarm_error(struct tracker *t, struct p2p_httpd_req *req, int rc)
{
    switch (rc) {
    case -EUSERS:
    case -ENFILE:
    case -ENOSPC:
    case -ENOBUFS:
    case -EDQUOT:
        p2p_httpd_add_headerf(req, "Retry-After", "%llu",
                              (unsigned long long)(interval_ms(t) + 999) / 1000);
        p2p_httpd_respond_error(req, 503, "E001", "tracker full: %s limit reached",
                                rc == -EUSERS    ? "max_nodes"
                                : rc == -ENFILE  ? "max_files"
                                : rc == -ENOBUFS ? "max_total_pieces"
                                : rc == -EDQUOT  ? "max_holder_bytes"
                                                 : "v1 piece (max_pieces)");
        break;
    case -EADDRINUSE:
        p2p_httpd_respond_error(req, 409, "E001",
                                "field 'addr': this nodeId has a live session with another "
                                "address or zone, set from another IP");
        break;
    case -EEXIST:
        p2p_httpd_respond_error(req, 409, "E001",
                                "field 'pieceCount': differs from the count already known for "
                                "this infoHash");
        break;
    case -EFBIG:
        p2p_httpd_respond_error(req, 400, "E001", "field 'pieceCount': exceeds max_pieces");
        break;
    default:
        p2p_httpd_respond_error(req, 400, "E001", "invalid report (%d)", rc);
        break;
    }
}

/* ---- native API ---- */

/* The request's source IP without the port ("1.2.3.4", "[::1]"), or NULL if unknown. */
static const char *source_ip(struct p2p_httpd_req *req, char *buf, size_t len)
{
    const char *peer = p2p_httpd_peer(req);
    const char *colon = peer ? strrchr(peer, ':') : NULL;
    size_t n = colon ? (size_t)(colon - peer) : 0;
    if (n == 0 || n >= len || n > P2P_SWARM_MAX_SRC)
        return NULL;
    memcpy(buf, peer, n);
    buf[n] = '\0';
    return buf;
}

static void on_heartbeat(struct p2p_httpd_req *req, void *ud)
{
    struct tracker *t = ud;
    struct p2p_proto_heartbeat hb;
    char err[200];
    json_t *obj = authorized_body(t, req);
    if (!obj)
        return;
    if (p2p_proto_heartbeat_decode(obj, &hb, err, sizeof err) < 0) {
        p2p_httpd_respond_error(req, 400, "E001", "%s", err);
        goto out;
    }
    bool known = false;
    char src[P2P_SWARM_MAX_SRC + 1];
    int rc = p2p_swarm_heartbeat(&t->sw, hb.node_id, hb.addr, hb.zone,
                                 source_ip(req, src, sizeof src), now_ms(t), &known);
    if (rc < 0) {
        if (rc == -EADDRINUSE)
            p2p_debug("node %s: address change to %s from %s refused (session bound to %s)",
                      hb.node_id, hb.addr, p2p_httpd_peer(req),
                      p2p_swarm_node_get(&t->sw, hb.node_id)->src);
        respond_swarm_error(t, req, rc);
        goto out;
    }
    if (!known)
        p2p_debug("node %s at %s joined (zone '%s')", hb.node_id, hb.addr, hb.zone);
    /* Formatted directly: heartbeats are the most frequent request. */
    uint64_t ims = interval_ms(t);
    struct sbuf *b = &t->scratch;
    b->len = 0;
    sb_printf(b, "{\"code\":\"E000\",\"msg\":\"success\",\"interval\":%llu,"
                 "\"intervalMs\":%llu,\"known\":%s}",
              (unsigned long long)(ims >= 1000 ? ims / 1000 : 1), (unsigned long long)ims,
              known ? "true" : "false");
    p2p_httpd_respond(req, 200, "application/json", b->p, b->len);
out:
    json_decref(obj);
}

static void on_report(struct p2p_httpd_req *req, void *ud)
{
    struct tracker *t = ud;
    struct p2p_proto_report r;
    char err[200];
    json_t *obj = authorized_body(t, req);
    if (!obj)
        return;
    if (p2p_proto_report_decode(obj, t->cfg.max_pieces, &r, err, sizeof err) < 0) {
        p2p_httpd_respond_error(req, 400, "E001", "%s", err);
        goto out;
    }
    int rc;
    uint64_t now = now_ms(t);
    if (r.stopped)
        rc = p2p_swarm_report_stopped(&t->sw, r.node_id, r.hash, now);
    else if (r.bits)
        rc = p2p_swarm_report_full(&t->sw, r.node_id, r.hash, r.npieces, r.file_name, r.bits,
                                   r.bits_len, now);
    else
        rc = p2p_swarm_report_have(&t->sw, r.node_id, r.hash, r.npieces, r.file_name, r.have,
                                   r.nhave, now);
    if (rc < 0)
        respond_swarm_error(t, req, rc);
    else
        p2p_httpd_respond_ok(req);
    p2p_proto_report_cleanup(&r);
out:
    json_decref(obj);
}

/* Reads an optional, validated query parameter; responds 400 and returns -1 if invalid. */
static int query_param(struct p2p_httpd_req *req, const char *name, bool required,
                       bool (*valid)(const char *), const char **out)
{
    *out = p2p_httpd_query(req, name);
    if (!*out && required) {
        p2p_httpd_respond_error(req, 400, "E001", "query parameter '%s' is required", name);
        return -1;
    }
    if (*out && valid && !valid(*out)) {
        p2p_httpd_respond_error(req, 400, "E001", "query parameter '%s' is malformed", name);
        return -1;
    }
    return 0;
}

static int query_hash(struct p2p_httpd_req *req, bool required, uint8_t hash[32], bool *given)
{
    const char *s = p2p_httpd_query(req, "infoHash");
    *given = s != NULL;
    if (!s) {
        if (required)
            p2p_httpd_respond_error(req, 400, "E001", "query parameter 'infoHash' is required");
        return required ? -1 : 0;
    }
    if (p2p_proto_info_hash(s, hash) < 0) {
        p2p_httpd_respond_error(req, 400, "E001",
                                "query parameter 'infoHash': expected 64 hex digits");
        return -1;
    }
    return 0;
}

static void on_peers(struct p2p_httpd_req *req, void *ud)
{
    struct tracker *t = ud;
    uint8_t hash[32];
    bool given;
    const char *node_id, *zone, *maxs;
    uint32_t max = 50;
    if (query_hash(req, true, hash, &given) < 0 ||
        query_param(req, "nodeId", false, p2p_proto_valid_node_id, &node_id) < 0 ||
        query_param(req, "zone", false, p2p_proto_valid_zone, &zone) < 0 ||
        query_param(req, "max", false, NULL, &maxs) < 0)
        return;
    if (maxs && p2p_proto_parse_max(maxs, &max) < 0) {
        p2p_httpd_respond_error(req, 400, "E001",
                                "query parameter 'max': expected an integer from 1");
        return;
    }
    if (max > t->cfg.max_peers)
        max = (uint32_t)t->cfg.max_peers;
    struct p2p_swarm_file *f = p2p_swarm_file_get(&t->sw, hash);
    if (!f) {
        p2p_httpd_respond_error(req, 404, "E001", "unknown infoHash");
        return;
    }
    struct p2p_swarm_holder **out = t->peers;
    size_t n = p2p_swarm_peers(&t->sw, f, node_id, zone, max, now_ms(t), out);
    /* The hot path: written straight into a buffer rather than through jansson objects. Node
     * ids, addresses and zones were validated to need no escaping (proto.c). */
    struct sbuf *b = &t->scratch;
    size_t nbytes = P2P_BITFIELD_BYTES(f->npieces);
    b->len = 0;
    sb_printf(b, "{\"pieceCount\":%u,\"peers\":[", f->npieces);
    for (size_t i = 0; i < n; i++) {
        const struct p2p_swarm_node *pn = out[i]->node;
        if (i)
            SB_LIT(b, ",");
        SB_LIT(b, "{\"nodeId\":\"");
        sb_append(b, pn->id, pn->id_len);
        SB_LIT(b, "\",\"addr\":\"");
        sb_append(b, pn->addr, pn->addr_len);
        SB_LIT(b, "\",\"zone\":\"");
        sb_append(b, pn->zone, pn->zone_len);
        SB_LIT(b, "\",\"bitfield\":\"");
        char *dst = sb_reserve(b, 4 * ((nbytes + 2) / 3) + 1);
        b->len += (size_t)EVP_EncodeBlock((unsigned char *)dst, out[i]->bits, (int)nbytes);
        SB_LIT(b, "\"}");
    }
    SB_LIT(b, "]}");
    p2p_httpd_respond(req, 200, "application/json", b->p, b->len);
}

static json_t *node_json(const struct p2p_swarm_node *n, uint64_t now)
{
    json_int_t ago = (json_int_t)(now > n->last_ms ? now - n->last_ms : 0);
    return json_pack("{s:s,s:s,s:s,s:I,s:b,s:I,s:I}", "nodeId", n->id, "addr", n->addr, "zone",
                     n->zone, "lastSeenMsAgo", ago, "known", n->heartbeated, "files",
                     (json_int_t)n->nholders, "v1Pieces", (json_int_t)n->nv1);
}

/* A file with its figures (kept incrementally by the swarm: no scan of its pieces) and at most
 * *budget of its holders; *budget is reduced by the holders listed, *cut set if some were left
 * out. */
static json_t *file_json(const struct p2p_swarm_file *f, size_t *budget, bool *cut)
{
    json_t *holders = json_array();
    uint32_t n = f->nholders;
    if (n > *budget) {
        n = (uint32_t)*budget;
        *cut = true;
    }
    *budget -= n;
    for (uint32_t i = 0; i < n; i++) {
        const struct p2p_swarm_holder *h = f->holders[i];
        json_array_append_new(holders,
                              json_pack("{s:s,s:I,s:f}", "nodeId", h->node->id, "pieces",
                                        (json_int_t)h->count, "progress",
                                        f->npieces ? (double)h->count / f->npieces : 1.0));
    }
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:o}", "infoHash", f->hex, "fileName", f->name,
                     "pieceCount", (json_int_t)f->npieces, "seeders", (json_int_t)f->nseeders,
                     "rarestPieceHolders", (json_int_t)(f->npieces ? f->rarest : 0),
                     "holderCount", (json_int_t)f->nholders, "holders", holders);
}

/* Every list of the answer is capped by ?limit= (default PROBE_LIMIT_DEFAULT): nodes, files,
 * and holder entries over all files together, so one probe costs O(limit) on the loop however
 * large the swarm; "truncated" tells when something was left out. */
static void on_probe(struct p2p_httpd_req *req, void *ud)
{
    struct tracker *t = ud;
    uint8_t hash[32];
    bool filtered, cut = false;
    const char *lims;
    uint32_t limit = PROBE_LIMIT_DEFAULT;
    if (query_hash(req, false, hash, &filtered) < 0 ||
        query_param(req, "limit", false, NULL, &lims) < 0)
        return;
    if (lims && (p2p_proto_parse_max(lims, &limit) < 0 || limit > PROBE_LIMIT_MAX)) {
        p2p_httpd_respond_error(req, 400, "E001",
                                "query parameter 'limit': expected an integer from 1 to %d",
                                PROBE_LIMIT_MAX);
        return;
    }
    uint64_t now = now_ms(t);
    size_t holder_budget = limit;
    json_t *nodes = json_array(), *files = json_array();
    if (filtered) {
        struct p2p_swarm_file *f = p2p_swarm_file_get(&t->sw, hash);
        if (!f) {
            json_decref(nodes);
            json_decref(files);
            p2p_httpd_respond_error(req, 404, "E001", "unknown infoHash");
            return;
        }
        json_array_append_new(files, file_json(f, &holder_budget, &cut));
        uint32_t n = f->nholders < limit ? f->nholders : limit;
        for (uint32_t i = 0; i < n; i++)
            json_array_append_new(nodes, node_json(f->holders[i]->node, now));
    } else {
        size_t pos = 0, k = 0;
        const struct p2p_swarm_node *n;
        while (k++ < limit && (n = p2p_hmap_next(&t->sw.nodes, &pos)) != NULL)
            json_array_append_new(nodes, node_json(n, now));
        cut |= p2p_swarm_nnodes(&t->sw) > limit;
        pos = 0;
        k = 0;
        const struct p2p_swarm_file *f;
        while (k++ < limit && (f = p2p_hmap_next(&t->sw.files, &pos)) != NULL)
            json_array_append_new(files, file_json(f, &holder_budget, &cut));
        cut |= p2p_swarm_nfiles(&t->sw) > limit;
    }
    json_t *resp = json_pack("{s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:b}", "nodes", nodes, "files", files,
                             "v1Pieces", (json_int_t)p2p_swarm_nv1(&t->sw), "sessionExpireMs",
                             (json_int_t)t->cfg.session_expire_ms, "uptimeMs",
                             (json_int_t)(now - t->started_ms), "nodeCount",
                             (json_int_t)p2p_swarm_nnodes(&t->sw), "fileCount",
                             (json_int_t)p2p_swarm_nfiles(&t->sw), "truncated", cut);
    p2p_httpd_respond_json(req, 200, resp);
}

static void on_healthz(struct p2p_httpd_req *req, void *ud)
{
    struct tracker *t = ud;
    p2p_httpd_respond_json(req, 200,
                           json_pack("{s:s,s:I,s:I}", "status", "ok", "nodes",
                                     (json_int_t)p2p_swarm_nnodes(&t->sw), "files",
                                     (json_int_t)p2p_swarm_nfiles(&t->sw)));
}

/* ---- metrics (Prometheus text format 0.0.4) ---- */

static void gauge(struct sbuf *b, const char *name, const char *type, const char *help,
                  uint64_t v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
              (unsigned long long)v);
}

static void on_metrics(struct p2p_httpd_req *req, void *ud)
{
    struct tracker *t = ud;
    struct sbuf b = {p2p_xmalloc(4096), 0, 4096};
    gauge(&b, "p2p_tracker_nodes_alive", "gauge", "Nodes with a live session.",
          p2p_swarm_nnodes(&t->sw));
    gauge(&b, "p2p_tracker_files", "gauge", "Files (infoHashes) with at least one holder.",
          p2p_swarm_nfiles(&t->sw));
    gauge(&b, "p2p_tracker_holders", "gauge", "(node, file) pairs in the piece map.",
          t->sw.nholders);
    gauge(&b, "p2p_tracker_v1_pieces", "gauge", "Distinct v1 pieceIDs in the compat map.",
          p2p_swarm_nv1(&t->sw));
    gauge(&b, "p2p_tracker_total_pieces", "gauge",
          "Sum of pieceCount over all files (budget max_total_pieces).", t->sw.total_pieces);
    gauge(&b, "p2p_tracker_holder_bytes", "gauge",
          "Bytes charged for holder entries and v1 pairs (budget max_holder_bytes).",
          t->sw.holder_bytes);
    gauge(&b, "p2p_tracker_expired_nodes_total", "counter",
          "Nodes removed after session_expire without a heartbeat.", t->sw.expired_total);
    gauge(&b, "p2p_tracker_uptime_seconds", "gauge", "Seconds since the tracker started.",
          (now_ms(t) - t->started_ms) / 1000);
    struct mallinfo2 mi = mallinfo2(); /* glibc: heap bytes in use, for the memory budget */
    gauge(&b, "p2p_tracker_heap_inuse_bytes", "gauge", "Heap bytes in use (glibc mallinfo2).",
          (uint64_t)(mi.uordblks + mi.hblkhd));
    sb_printf(&b, "# HELP p2p_tracker_requests_total HTTP responses by route and status.\n"
                  "# TYPE p2p_tracker_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        for (int s = 0; s <= MAX_STATUS - MIN_STATUS; s++)
            if (t->requests[r][s])
                sb_printf(&b, "p2p_tracker_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                          route_paths[r], s + MIN_STATUS,
                          (unsigned long long)t->requests[r][s]);
    p2p_httpd_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
    free(b.p);
}

static void on_response(struct p2p_httpd_req *req, int status, void *ud)
{
    struct tracker *t = ud;
    const char *path = p2p_httpd_path(req);
    int r = 0;
    while (r < R_OTHER && strcmp(route_paths[r], path) != 0)
        r++;
    if (status >= MIN_STATUS && status <= MAX_STATUS)
        t->requests[r][status - MIN_STATUS]++;
}

/* ---- compatibility with the Go original's nodes ---- */

static void on_v1_report(struct p2p_httpd_req *req, void *ud)
{
    struct tracker *t = ud;
    struct p2p_proto_v1report r;
    char err[200];
    json_t *obj = authorized_body(t, req);
    if (!obj)
        return;
    if (p2p_proto_v1report_decode(obj, &r, err, sizeof err) < 0) {
        p2p_httpd_respond_error(req, 400, "E001", "%s", err);
        goto out;
    }
    int rc = p2p_swarm_v1_report(&t->sw, r.node_id, r.piece_id, now_ms(t));
    if (rc < 0) {
        respond_swarm_error(t, req, rc);
        goto out;
    }
    p2p_debug("v1 report %s from %s, progress %.3f", r.file, r.node_id, r.progress);
    p2p_httpd_respond_ok(req);
out:
    json_decref(obj);
}

static bool valid_piece_id(const char *s)
{
    uint8_t id[20];
    return strlen(s) == 40 && p2p_hex_decode(s, 20, id) == 0;
}

static void on_v1_node_list(struct p2p_httpd_req *req, void *ud)
{
    struct tracker *t = ud;
    const char *pid;
    uint8_t id[20];
    if (query_param(req, "pieceID", true, valid_piece_id, &pid) < 0)
        return;
    p2p_hex_decode(pid, 20, id);
    struct p2p_swarm_node *out[P2P_SWARM_V1_LIST];
    size_t n = p2p_swarm_v1_nodes(&t->sw, id, now_ms(t), out);
    json_t *nodes = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(nodes, json_string_nocheck(out[i]->addr));
    p2p_httpd_respond_json(req, 200, json_pack("{s:o}", "nodes", nodes));
}

/* ---- lifecycle ---- */

static void on_expiry_timer(uv_timer_t *timer)
{
    struct tracker *t = P2P_CONTAINER_OF(timer, struct tracker, expiry);
    size_t gone = p2p_swarm_expire(&t->sw, now_ms(t));
    if (gone)
        p2p_info("expired %zu node(s); %zu alive, %zu file(s)", gone, p2p_swarm_nnodes(&t->sw),
                 p2p_swarm_nfiles(&t->sw));
}

static void on_shutdown_done(void *ud)
{
    struct tracker *t = ud;
    t->srv = NULL;
    p2p_loop_signals_close();
}

static void on_stop(void *ud)
{
    struct tracker *t = ud;
    p2p_info("stopping");
    uv_timer_stop(&t->expiry);
    uv_close((uv_handle_t *)&t->expiry, NULL);
    if (t->srv)
        p2p_httpd_shutdown(t->srv, SHUTDOWN_GRACE_MS, on_shutdown_done, t);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: p2p-sharer tracker [-c FILE] [--listen ADDR]\n"
            "  -c, --config FILE  YAML config (default ./config/config.tracker.yaml, then\n"
            "                     /etc/p2p-sharer/config.tracker.yaml, else built-in defaults)\n"
            "  --listen ADDR      override web.listen_address (\"127.0.0.1:0\" = any free port)\n"
            "  -h, --help         this text\n"
            "Prints \"LISTENING host:port\" on stdout once it accepts connections.\n"
            "Exit status: 0 after SIGTERM/SIGINT or --help, 1 on a config or listen error,\n"
            "2 on a usage error.\n");
}

/* Host to print in the readiness line: a wildcard address is reachable on loopback. */
static void ready_host(const char *listen, char *out, size_t outlen)
{
    const char *colon = strrchr(listen, ':');
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    if (hlen == 0 || (hlen == 7 && strncmp(listen, "0.0.0.0", 7) == 0))
        snprintf(out, outlen, "127.0.0.1");
    else if ((hlen == 4 && strncmp(listen, "[::]", 4) == 0))
        snprintf(out, outlen, "[::1]");
    else
        snprintf(out, outlen, "%.*s", (int)hlen, listen);
}

static int parse_args(int argc, char **argv, const char **config, const char **listen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        const char **dst = NULL;
        const char *val = NULL;
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            dst = config;
        else if (strcmp(a, "--listen") == 0)
            dst = listen;
        else if (strncmp(a, "--config=", 9) == 0)
            dst = config, val = a + 9;
        else if (strncmp(a, "--listen=", 9) == 0)
            dst = listen, val = a + 9;
        if (!dst) {
            fprintf(stderr, "p2p-sharer tracker: unknown argument '%s'\n", a);
            usage(stderr);
            return -1;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "p2p-sharer tracker: %s needs a value\n", a);
                return -1;
            }
            val = argv[++i];
        }
        if (!val[0]) {
            fprintf(stderr, "p2p-sharer tracker: %s needs a non-empty value\n", a);
            return -1;
        }
        *dst = val;
    }
    return 0;
}

static const struct p2p_httpd_route *routes(struct tracker *t)
{
    static struct p2p_httpd_route r[] = {
        {"POST", "/v1/heartBeat", on_heartbeat, NULL, 0, NULL},
        {"POST", "/v2/report", on_report, NULL, 0, NULL},
        {"GET", "/v2/peers", on_peers, NULL, 0, NULL},
        {"GET", "/v1/probe", on_probe, NULL, 0, NULL},
        {"GET", "/metrics", on_metrics, NULL, 0, NULL},
        {"GET", "/healthz", on_healthz, NULL, 0, NULL},
        {"POST", "/v1/report", on_v1_report, NULL, 0, NULL},
        {"GET", "/v1/nodeList", on_v1_node_list, NULL, 0, NULL},
        {NULL, NULL, NULL, NULL, 0, NULL},
    };
    for (size_t i = 0; r[i].path; i++)
        r[i].ud = t;
    return r;
}

/* Serves until stopped; returns the exit status. */
static int run(struct tracker *t, const char *used)
{
    int status = 1;
    struct p2p_swarm_limits lim = {
        .expire_ms = t->cfg.session_expire_ms,
        .max_nodes = t->cfg.max_nodes,
        .max_files = t->cfg.max_files,
        .max_pieces = t->cfg.max_pieces,
        .v1_max_pieces = t->cfg.max_pieces,
        .max_total_pieces = t->cfg.max_total_pieces,
        .max_holder_bytes = t->cfg.max_holder_bytes,
    };
    p2p_swarm_init(&t->sw, &lim);
    uv_loop_init(&t->loop);
    t->started_ms = uv_now(&t->loop);

    struct p2p_httpd_opts opts = {.on_response = on_response, .on_response_ud = t};
    t->srv = p2p_httpd_new(&t->loop, routes(t), &opts);
    int rc = p2p_httpd_listen(t->srv, t->cfg.listen_address);
    if (rc < 0) {
        p2p_error("cannot listen on '%s': %s", t->cfg.listen_address, uv_strerror(rc));
        p2p_httpd_shutdown(t->srv, 0, on_shutdown_done, t);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        goto out;
    }
    char host[300];
    ready_host(t->cfg.listen_address, host, sizeof host);
    printf("LISTENING %s:%d\n", host, p2p_httpd_port(t->srv));
    fflush(stdout);
    p2p_info("listening on %s (port %d), config %s, session_expire %llums, check every %llums",
             t->cfg.listen_address, p2p_httpd_port(t->srv), used ? used : "(defaults)",
             (unsigned long long)t->cfg.session_expire_ms,
             (unsigned long long)t->cfg.session_check_interval_ms);

    uv_timer_init(&t->loop, &t->expiry);
    uv_timer_start(&t->expiry, on_expiry_timer, t->cfg.session_check_interval_ms,
                   t->cfg.session_check_interval_ms);
    p2p_loop_signals(&t->loop, on_stop, t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    status = 0;
    p2p_info("stopped");
out:
    p2p_loop_signals_close();
    if (p2p_loop_close_all(&t->loop) != 0) {
        p2p_error("event loop did not close cleanly");
        status = 1;
    }
    p2p_swarm_cleanup(&t->sw);
    return status;
}

int p2p_tracker_main(int argc, char **argv)
{
    const char *config_path = NULL, *listen = NULL;
    int rc = parse_args(argc, argv, &config_path, &listen);
    if (rc != 0)
        return rc > 0 ? 0 : 2;

    int status = 1;
    char err[512];
    char *used = NULL;
    struct tracker *t = p2p_xcalloc(1, sizeof *t);
    if (p2p_tracker_cfg_load(&t->cfg, config_path, &used, err, sizeof err) < 0) {
        fprintf(stderr, "p2p-sharer tracker: %s\n", err);
        goto out;
    }
    enum p2p_log_level level = P2P_LOG_INFO;
    enum p2p_log_format format = P2P_LOG_TEXT;
    p2p_log_parse_level(t->cfg.log.level, &level);
    p2p_log_parse_format(t->cfg.log.format, &format);
    if (strcmp(t->cfg.web_mode, "debug") == 0) /* DESIGN.md §6: debug mode = debug logging */
        level = P2P_LOG_DEBUG;
    p2p_log_setup(level, format, "tracker");
    if (strcmp(t->cfg.store_type, "memory") != 0) {
        p2p_error("store.type '%s' is not supported by this build (only 'memory')",
                  t->cfg.store_type);
        goto out;
    }
    if (listen) {
        free(t->cfg.listen_address);
        t->cfg.listen_address = p2p_xstrdup(listen);
    }
    t->scratch.cap = 16384;
    t->scratch.p = p2p_xmalloc(t->scratch.cap);
    t->peers = p2p_xmalloc(t->cfg.max_peers * sizeof *t->peers);
    status = run(t, used);
out:
    p2p_tracker_cfg_free(&t->cfg);
    free(t->scratch.p);
    free(t->peers);
    free(used);
    free(t);
    return status;
}
