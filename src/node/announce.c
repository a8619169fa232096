/* Node ↔ tracker: heartbeats to every tracker of every held file (never stopping while files are
 * held), full re-reports when a tracker answers known:false, batched `have` reports, stopped. */
#include <stdlib.h>
#include <string.h>

#include "common/bitfield.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "node/node_int.h"

struct p2p_node_tracker *p2p_node_tracker_get(struct p2p_node *n, const char *addr)
{
    for (struct p2p_node_tracker *t = n->trackers; t; t = t->next)
        if (strcmp(t->addr, addr) == 0)
            return t;
    struct p2p_node_tracker *t = p2p_xcalloc(1, sizeof *t);
    t->addr = p2p_xstrdup(addr);
    if (strstr(addr, "://")) {
        size_t len = strlen(addr);
        while (len > 0 && addr[len - 1] == '/')
            len--;
        t->base = p2p_xstrndup(addr, len);
    } else {
        t->base = p2p_xasprintf("http://%s", addr);
    }
    t->next = n->trackers;
    n->trackers = t;
    return t;
}

char *p2p_node_tracker_url(const struct p2p_node_tracker *t, const char *path)
{
    return p2p_xasprintf("%s%s", t->base, path);
}

const char *const *p2p_node_tracker_headers(struct p2p_node *n)
{
    static char *hdr;
    static const char *list[3];
    if (!n->cfg.auth_token || !*n->cfg.auth_token)
        return NULL;
    if (!hdr)
        hdr = p2p_xasprintf("Authorization: Bearer %s", n->cfg.auth_token);
    list[0] = hdr;
    list[1] = "Content-Type: application/json";
    list[2] = NULL;
    return list;
}

static const char *const json_headers[] = {"Content-Type: application/json", NULL};

static bool file_active(const struct p2p_node_file *f)
{
    return f->in_store && (f->state == P2P_NODE_DOWNLOADING || f->state == P2P_NODE_SEEDING);
}

/* ---- reports ---- */

struct report_ctx {
    struct p2p_node *n;
    struct p2p_node_tracker *t;
    char info_hash[65];
    bool stopped;
};

static struct p2p_node_ann *find_ann(struct p2p_node_file *f, struct p2p_node_tracker *t)
{
    for (size_t i = 0; i < f->nann; i++)
        if (f->ann[i].t == t)
            return &f->ann[i];
    return NULL;
}

static void report_done(const struct p2p_httpc_resp *resp, void *ud)
{
    struct report_ctx *c = ud;
    struct p2p_node *n = c->n;
    struct p2p_node_file *f = p2p_node_find(n, c->info_hash);
    struct p2p_node_ann *a = f ? find_ann(f, c->t) : NULL;
    bool ok = resp->err == 0 && resp->status == 200;
    if (!ok)
        p2p_debug("report %s to %s failed: %s (status %ld)", c->info_hash, c->t->addr,
                  resp->err ? resp->errmsg : "http", resp->status);
    if (a && !c->stopped) {
        a->inflight = false;
        if (!ok)
            a->need_full = true; /* a full report covers whatever got lost */
    }
    if (c->stopped && n->calls > 0) {
        n->calls--;
        free(c);
        p2p_node_stop_check(n);
        return;
    }
    free(c);
}

static void send_report(struct p2p_node_file *f, struct p2p_node_ann *a, bool stopped)
{
    struct p2p_node *n = f->node;
    json_t *o = json_object();
    json_object_set_new(o, "nodeId", json_string(n->node_id));
    json_object_set_new(o, "infoHash", json_string(f->seed.info_hash));
    json_object_set_new(o, "pieceCount", json_integer(f->seed.npieces));
    if (stopped) {
        json_object_set_new(o, "stopped", json_true());
    } else if (a->need_full) {
        char *b64 = p2p_base64_encode(f->have.bits, P2P_BITFIELD_BYTES(f->have.nbits));
        json_object_set_new(o, "fileName", json_string(f->seed.file_name));
        json_object_set_new(o, "bitfield", json_string(b64));
        free(b64);
        a->need_full = false;
        a->nhave = 0;
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < a->nhave; i++)
            json_array_append_new(arr, json_integer(a->have[i]));
        json_object_set_new(o, "have", arr);
        a->nhave = 0;
    }
    size_t len = 0;
    char *body = p2p_json_dump(o, &len);
    json_decref(o);
    char *url = p2p_node_tracker_url(a->t, "/v2/report");
    struct report_ctx *c = p2p_xcalloc(1, sizeof *c);
    c->n = n;
    c->t = a->t;
    c->stopped = stopped;
    memcpy(c->info_hash, f->seed.info_hash, sizeof c->info_hash);
    const char *const *h = p2p_node_tracker_headers(n);
    struct p2p_httpc_opts o2 = {
        .method = "POST",
        .url = url,
        .headers = h ? h : json_headers,
        .body = body,
        .body_len = len,
        .max_body = 64 * 1024,
        .connect_timeout_ms = 2000,
        .timeout_ms = stopped ? P2P_NODE_STOP_GRACE_MS : 10000,
    };
    if (!stopped) {
        a->inflight = true;
        a->last_ms = p2p_now_ms();
    } else {
        n->calls++;
    }
    p2p_httpc_request(n->httpc, &o2, report_done, c);
    free(url);
    free(body);
}

void p2p_node_announce_full(struct p2p_node_file *f)
{
    for (size_t i = 0; i < f->nann; i++) {
        struct p2p_node_ann *a = &f->ann[i];
        a->need_full = true;
        a->nhave = 0;
        if (a->t->alive && !a->inflight && file_active(f))
            send_report(f, a, false);
    }
}

void p2p_node_announce_have(struct p2p_node_file *f, uint32_t index)
{
    uint64_t now = p2p_now_ms();
    for (size_t i = 0; i < f->nann; i++) {
        struct p2p_node_ann *a = &f->ann[i];
        if (!a->need_full) {
            if (a->nhave == a->caphave) {
                a->caphave = a->caphave ? a->caphave * 2 : 64;
                a->have = p2p_xrealloc(a->have, a->caphave * sizeof *a->have);
            }
            a->have[a->nhave++] = index;
        }
        /* the first piece after a quiet period goes at once; the rest are batched by the tick */
        if (a->t->alive && !a->inflight && now >= a->last_ms + P2P_NODE_REPORT_BATCH_MS)
            send_report(f, a, false);
    }
}

void p2p_node_announce_stopped(struct p2p_node_file *f)
{
    for (size_t i = 0; i < f->nann; i++) {
        struct p2p_node_ann *a = &f->ann[i];
        a->nhave = 0;
        a->need_full = false;
        if (a->t->alive)
            send_report(f, a, true);
    }
}

/* ---- heartbeats ---- */

struct hb_ctx {
    struct p2p_node *n;
    struct p2p_node_tracker *t;
};

static uint64_t hb_period(const struct p2p_node *n)
{
    uint64_t p = n->cfg.session_expire_ms / 2;
    return p < 200 ? 200 : p;
}

static void hb_done(const struct p2p_httpc_resp *resp, void *ud)
{
    struct hb_ctx *c = ud;
    struct p2p_node *n = c->n;
    struct p2p_node_tracker *t = c->t;
    free(c);
    t->hb_inflight = false;
    uint64_t now = p2p_now_ms();
    bool known = false;
    json_t *o = NULL;
    if (resp->err == 0 && resp->status == 200 && resp->body)
        o = p2p_json_parse_object(resp->body, resp->body_len, NULL, 0);
    if (!o) {
        if (t->alive || t->fails == 0)
            p2p_warn("tracker %s: heartbeat failed: %s (status %ld)", t->addr,
                     resp->err ? resp->errmsg : "bad answer", resp->status);
        t->alive = false;
        t->fails++;
        uint64_t retry = 500ull * t->fails;
        t->next_hb_ms = now + (retry < hb_period(n) ? retry : hb_period(n));
        return;
    }
    p2p_json_get_bool(o, "known", false, &known, NULL, 0);
    json_decref(o);
    bool was_alive = t->alive;
    t->alive = true;
    t->fails = 0;
    t->next_hb_ms = now + hb_period(n);
    if (!known || !was_alive) {
        if (was_alive)
            p2p_info("tracker %s lost our state (known:false): re-reporting", t->addr);
        for (struct p2p_node_file *f = n->files; f; f = f->next) {
            if (!file_active(f))
                continue;
            struct p2p_node_ann *a = find_ann(f, t);
            if (!a)
                continue;
            a->need_full = true;
            a->nhave = 0;
            if (!a->inflight)
                send_report(f, a, false);
        }
    }
}

static void send_heartbeat(struct p2p_node *n, struct p2p_node_tracker *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "nodeId", json_string(n->node_id));
    json_object_set_new(o, "addr", json_string(n->advertise));
    if (n->cfg.zone && *n->cfg.zone)
        json_object_set_new(o, "zone", json_string(n->cfg.zone));
    size_t len = 0;
    char *body = p2p_json_dump(o, &len);
    json_decref(o);
    char *url = p2p_node_tracker_url(t, "/v1/heartBeat");
    struct hb_ctx *c = p2p_xcalloc(1, sizeof *c);
    c->n = n;
    c->t = t;
    const char *const *h = p2p_node_tracker_headers(n);
    struct p2p_httpc_opts opts = {
        .method = "POST",
        .url = url,
        .headers = h ? h : json_headers,
        .body = body,
        .body_len = len,
        .max_body = 64 * 1024,
        .connect_timeout_ms = 2000,
        .timeout_ms = 5000,
    };
    t->hb_inflight = true;
    p2p_httpc_request(n->httpc, &opts, hb_done, c);
    free(url);
    free(body);
}

void p2p_node_announce_tick(struct p2p_node *n, uint64_t now)
{
    for (struct p2p_node_tracker *t = n->trackers; t; t = t->next) {
        if (t->hb_inflight || now < t->next_hb_ms)
            continue;
        bool used = false;
        for (struct p2p_node_file *f = n->files; f && !used; f = f->next)
            used = (file_active(f) || f->state == P2P_NODE_PENDING) && find_ann(f, t);
        if (used)
            send_heartbeat(n, t);
    }
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        if (!file_active(f))
            continue;
        for (size_t i = 0; i < f->nann; i++) {
            struct p2p_node_ann *a = &f->ann[i];
            if (!a->t->alive || a->inflight)
                continue;
            if (a->need_full || (a->nhave && now >= a->last_ms + P2P_NODE_REPORT_BATCH_MS))
                send_report(f, a, false);
        }
    }
}
