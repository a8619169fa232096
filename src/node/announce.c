/* Node ↔ tracker: heartbeats to every tracker of every held file (never stopping while files are
 * held, at the tracker's interval if shorter), full re-reports when a tracker answers known:false,
 * batched `have` reports with backoff after failures, stopped; /v1/report for SHA-1 files. */
#include <stdio.h>
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

#define V1_MAX_INFLIGHT 4         /* /v1/report calls in flight, all files together */
#define V1_PER_TICK 64            /* /v1/report calls started per tick at most */

struct report_ctx {
    struct p2p_node_pending pend; /* first: drop() gets it back */
    struct p2p_node *n;
    struct p2p_node_tracker *t;
    char info_hash[65];
    bool stopped;
    bool v1;                      /* a /v1/report of one piece */
    uint32_t index;
};

static struct p2p_node_ann *find_ann(struct p2p_node_file *f, struct p2p_node_tracker *t)
{
    for (size_t i = 0; i < f->nann; i++)
        if (f->ann[i].t == t)
            return &f->ann[i];
    return NULL;
}

static uint64_t hb_period(const struct p2p_node *n)
{
    uint64_t p = n->cfg.session_expire_ms / 2;
    return p < 200 ? 200 : p;
}

/* Our period, or the tracker's interval when it asks for more frequent heartbeats. */
static uint64_t hb_period_for(const struct p2p_node *n, const struct p2p_node_tracker *t)
{
    uint64_t p = hb_period(n);
    if (t->interval_ms && t->interval_ms < p)
        p = t->interval_ms < 200 ? 200 : t->interval_ms;
    return p;
}

uint64_t p2p_node_report_backoff(uint32_t fails, uint64_t cap_ms)
{
    uint32_t sh = fails > 0 ? fails - 1 : 0;
    uint64_t b = sh < 20 ? 500ull << sh : UINT64_MAX;
    return b < cap_ms ? b : cap_ms;
}

/* A 4xx that retrying cannot fix (not 408 Request Timeout or 429 Too Many Requests). */
static bool refused(const struct p2p_httpc_resp *resp)
{
    return resp->err == 0 && resp->status >= 400 && resp->status < 500 &&
           resp->status != 408 && resp->status != 429;
}

static bool report_ready(const struct p2p_node_ann *a, uint64_t now)
{
    return a->t->alive && !a->inflight && !a->report_off && now >= a->next_report_ms;
}

/* A report failed: the next one is a full report, after a backoff (a refusal stops them). */
static void report_failed(struct p2p_node *n, struct p2p_node_ann *a,
                          const struct p2p_httpc_resp *resp, const char *info_hash)
{
    a->need_full = true; /* a full report covers whatever got lost */
    a->nhave = 0;
    if (refused(resp)) {
        if (!a->report_off)
            p2p_warn("tracker %s refused the report of %s (status %ld): not reporting it there "
                     "until the tracker asks for it (known:false)",
                     a->t->addr, info_hash, resp->status);
        a->report_off = true;
        return;
    }
    a->report_fails++;
    a->next_report_ms = p2p_now_ms() + p2p_node_report_backoff(a->report_fails,
                                                               hb_period_for(n, a->t));
}

static void report_drop(struct p2p_node_pending *p)
{
    struct report_ctx *c = (struct report_ctx *)p;
    struct p2p_node *n = c->n;
    if (c->stopped && n->calls > 0)
        n->calls--;
    if (c->v1 && n->v1_inflight > 0)
        n->v1_inflight--;
    free(c);
}

static void report_done(const struct p2p_httpc_resp *resp, void *ud)
{
    struct report_ctx *c = ud;
    struct p2p_node *n = c->n;
    p2p_node_call_done(n, &c->pend);
    struct p2p_node_file *f = p2p_node_find(n, c->info_hash);
    struct p2p_node_ann *a = f ? find_ann(f, c->t) : NULL;
    bool ok = resp->err == 0 && resp->status == 200;
    if (!ok)
        p2p_debug("%s report %s to %s failed: %s (status %ld)", c->v1 ? "v1" : "v2",
                  c->info_hash, c->t->addr, resp->err ? resp->errmsg : "http", resp->status);
    if (c->stopped) {
        bool stopping = n->stopping;
        report_drop(&c->pend);
        if (stopping)
            p2p_node_stop_check(n);
        return;
    }
    if (c->v1) {
        if (n->v1_inflight > 0)
            n->v1_inflight--;
        if (a && a->v1_inflight > 0)
            a->v1_inflight--;
        if (a && ok) {
            a->report_fails = 0;
        } else if (a && refused(resp)) {
            if (!a->v1_off)
                p2p_warn("tracker %s refused /v1/report (status %ld): no v1 reports to it",
                         c->t->addr, resp->status);
            a->v1_off = true;
        } else if (a) {
            if (c->index < a->v1_sent.nbits)
                p2p_bitfield_clear(&a->v1_sent, c->index); /* sent again after the backoff */
            a->report_fails++;
            a->next_report_ms = p2p_now_ms() + p2p_node_report_backoff(a->report_fails,
                                                                       hb_period_for(n, c->t));
        }
        free(c);
        return;
    }
    if (a) {
        a->inflight = false;
        if (ok)
            a->report_fails = 0;
        else
            report_failed(n, a, resp, c->info_hash);
    }
    free(c);
}

static void start_report(struct p2p_node *n, struct p2p_node_tracker *t, const char *info_hash,
                         const char *path, json_t *o, bool stopped, uint32_t v1_index,
                         bool v1)
{
    size_t len = 0;
    char *body = p2p_json_dump(o, &len);
    char *url = p2p_node_tracker_url(t, path);
    struct report_ctx *c = p2p_xcalloc(1, sizeof *c);
    c->pend.drop = report_drop;
    c->n = n;
    c->t = t;
    c->stopped = stopped;
    c->v1 = v1;
    c->index = v1_index;
    snprintf(c->info_hash, sizeof c->info_hash, "%s", info_hash);
    const char *const *h = p2p_node_tracker_headers(n);
    struct p2p_httpc_opts opts = {
        .method = "POST",
        .url = url,
        .headers = h ? h : json_headers,
        .body = body,
        .body_len = len,
        .max_body = 64 * 1024,
        .connect_timeout_ms = 2000,
        .timeout_ms = stopped ? P2P_NODE_STOP_GRACE_MS : 10000,
    };
    if (stopped)
        n->calls++;
    if (v1)
        n->v1_inflight++;
    p2p_node_call(n, &c->pend, &opts, report_done, c); /* dropped (counts undone) if stopped */
    free(url);
    free(body);
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
    if (!stopped) {
        a->inflight = true;
        a->last_ms = p2p_now_ms();
    }
    start_report(n, a->t, f->seed.info_hash, "/v2/report", o, stopped, 0, false);
    json_decref(o);
}

/* The original's per-piece report, so its nodes find ours through GET /v1/nodeList. */
static void send_v1_report(struct p2p_node_file *f, struct p2p_node_ann *a, uint32_t i)
{
    struct p2p_node *n = f->node;
    char hex[2 * P2P_SEED_MAX_DIGEST + 1];
    p2p_hex_encode(f->seed.pieces[i].digest, 20, hex);
    json_t *o = json_object();
    json_object_set_new(o, "pieceID", json_string(hex));
    json_object_set_new(o, "nodeID", json_string(n->node_id));
    /* the original rejects progress 0; a held piece means progress > 0 */
    double progress = f->seed.npieces ? (double)f->have.count / f->seed.npieces : 1.0;
    json_object_set_new(o, "progress", json_real(progress > 0 ? progress : 1e-9));
    json_object_set_new(o, "file", json_string(f->seed.file_name));
    p2p_bitfield_set(&a->v1_sent, i);
    a->v1_inflight++;
    start_report(n, a->t, f->seed.info_hash, "/v1/report", o, false, i, true);
    json_decref(o);
}

/* Reports held pieces of a SHA-1 file not yet reported to a's tracker (bounded per tick and in
 * flight); budget is decremented by the calls started. */
static void v1_reports(struct p2p_node_file *f, struct p2p_node_ann *a, uint64_t now,
                       uint32_t *budget)
{
    struct p2p_node *n = f->node;
    if (f->seed.algo != P2P_HASH_SHA1 || a->v1_off || !a->t->alive || now < a->next_report_ms ||
        f->seed.npieces == 0)
        return;
    if (!a->v1_sent.bits)
        p2p_bitfield_init(&a->v1_sent, f->seed.npieces);
    if (a->v1_sent.count >= f->have.count)
        return;
    size_t nb = P2P_BITFIELD_BYTES(f->seed.npieces);
    for (size_t b = 0; b < nb; b++) {
        uint8_t todo = f->have.bits[b] & (uint8_t)~a->v1_sent.bits[b];
        for (uint32_t i = (uint32_t)b * 8; todo && i < (uint32_t)b * 8 + 8; i++) {
            if (!(todo & (0x80u >> (i & 7))))
                continue;
            if (*budget == 0 || n->v1_inflight >= V1_MAX_INFLIGHT || a->v1_off ||
                !f->in_store)
                return;
            (*budget)--;
            send_v1_report(f, a, i);
        }
    }
}

/* Forgets what was reported to t: everything is reported again (the tracker lost its state). */
static void v1_forget(struct p2p_node_ann *a)
{
    p2p_bitfield_cleanup(&a->v1_sent); /* reports in flight check their index against nbits */
    a->v1_off = false;
}

void p2p_node_announce_full(struct p2p_node_file *f)
{
    uint64_t now = p2p_now_ms();
    for (size_t i = 0; i < f->nann; i++) {
        struct p2p_node_ann *a = &f->ann[i];
        a->need_full = true;
        a->nhave = 0;
        if (report_ready(a, now) && file_active(f))
            send_report(f, a, false);
    }
}

void p2p_node_announce_have(struct p2p_node_file *f, uint32_t index)
{
    uint64_t now = p2p_now_ms();
    for (size_t i = 0; i < f->nann; i++) {
        struct p2p_node_ann *a = &f->ann[i];
        if (a->report_off)
            continue;
        if (!a->need_full) {
            if (a->nhave == a->caphave) {
                a->caphave = a->caphave ? a->caphave * 2 : 64;
                a->have = p2p_xrealloc(a->have, a->caphave * sizeof *a->have);
            }
            a->have[a->nhave++] = index;
        }
        /* the first piece after a quiet period goes at once; the rest are batched by the tick */
        if (report_ready(a, now) && now >= a->last_ms + P2P_NODE_REPORT_BATCH_MS)
            send_report(f, a, false);
    }
}

void p2p_node_announce_stopped(struct p2p_node_file *f)
{
    for (size_t i = 0; i < f->nann; i++) {
        struct p2p_node_ann *a = &f->ann[i];
        a->nhave = 0;
        a->need_full = false;
        if (a->t->alive && !a->report_off)
            send_report(f, a, true);
    }
}

/* ---- heartbeats ---- */

struct hb_ctx {
    struct p2p_node_pending pend; /* first: drop() gets it back */
    struct p2p_node *n;
    struct p2p_node_tracker *t;
};

static void hb_drop(struct p2p_node_pending *p)
{
    struct hb_ctx *c = (struct hb_ctx *)p;
    c->t->hb_inflight = false;
    free(c);
}

/* The tracker's heartbeat interval: intervalMs if given, else interval (seconds); 0 if none. */
static uint64_t tracker_interval(json_t *o)
{
    uint64_t v = 0;
    if (p2p_json_get_u64(o, "intervalMs", false, 24ull * 3600 * 1000, &v, NULL, 0) == 0 && v)
        return v;
    if (p2p_json_get_u64(o, "interval", false, 24ull * 3600, &v, NULL, 0) == 0 && v)
        return v * 1000;
    return 0;
}

static void hb_done(const struct p2p_httpc_resp *resp, void *ud)
{
    struct hb_ctx *c = ud;
    struct p2p_node *n = c->n;
    struct p2p_node_tracker *t = c->t;
    p2p_node_call_done(n, &c->pend);
    free(c);
    t->hb_inflight = false;
    uint64_t now = p2p_now_ms();
    json_t *o = NULL;
    if (resp->err == 0 && resp->status == 200 && resp->body)
        o = p2p_json_parse_object(resp->body, resp->body_len, NULL, 0);
    if (!o) {
        if (t->alive || t->fails == 0)
            p2p_warn("tracker %s: heartbeat failed: %s (status %ld)", t->addr,
                     resp->err ? resp->errmsg : "bad answer", resp->status);
        t->alive = false;
        t->fails++;
        /* 0.5 s, then every 1 s: a restarted tracker learns our pieces within a second, so
         * peers find each other again quickly (tracker restart while downloading) */
        uint64_t retry = t->fails > 1 ? 1000 : 500;
        t->next_hb_ms = now + (retry < hb_period_for(n, t) ? retry : hb_period_for(n, t));
        return;
    }
    /* an absent `known` (the original's tracker never sends it) means nothing was lost */
    bool known = true;
    p2p_json_get_bool(o, "known", false, &known, NULL, 0);
    t->interval_ms = tracker_interval(o);
    json_decref(o);
    bool was_alive = t->alive;
    t->alive = true;
    t->fails = 0;
    t->next_hb_ms = now + hb_period_for(n, t);
    if (known && was_alive)
        return;
    if (was_alive)
        p2p_info("tracker %s lost our state (known:false): re-reporting", t->addr);
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        if (!file_active(f))
            continue;
        struct p2p_node_ann *a = find_ann(f, t);
        if (!a)
            continue;
        if (!known)
            a->report_off = false; /* the tracker asks for our state: try again */
        a->report_fails = 0;
        a->next_report_ms = 0;
        a->need_full = true;
        a->nhave = 0;
        v1_forget(a);
        if (report_ready(a, now))
            send_report(f, a, false);
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
    c->pend.drop = hb_drop;
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
    p2p_node_call(n, &c->pend, &opts, hb_done, c);
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
    uint32_t budget = V1_PER_TICK;
    for (struct p2p_node_file *f = n->files; f; f = f->next) {
        if (!file_active(f))
            continue;
        for (size_t i = 0; i < f->nann; i++) {
            struct p2p_node_ann *a = &f->ann[i];
            if (report_ready(a, now) &&
                (a->need_full || (a->nhave && now >= a->last_ms + P2P_NODE_REPORT_BATCH_MS)))
                send_report(f, a, false);
            v1_reports(f, a, now, &budget);
        }
    }
}
