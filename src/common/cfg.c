/* Table-driven YAML config loader: libyaml document API → typed struct fields, with strict
 * size/duration parsing and "file:line: key: reason" errors (docs/CONFIG.md). */
#include "common/cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "common/util.h"

#define CFG_MAX_FILE (1024 * 1024)   /* a config file larger than this is refused */
#define CFG_MAX_KEY 128              /* longest dotted key we try to match */
#define CFG_DEF_MAX_STR 4096         /* STR/ENUM length cap when field.max is 0 */
#define CFG_DEF_MAX_LIST 1024        /* STRLIST entry cap when field.max is 0 */
#define CFG_MAX_FRAC_DIGITS 9        /* "1.123456789MiB" at most */

struct cfg_ctx {
    const struct p2p_cfg_field *fields;
    size_t n;
    void *target;
    yaml_document_t *doc;
    const char *name;
    char *err;
    size_t errlen;
};

static void set_err(struct cfg_ctx *c, size_t line0, const char *key, const char *fmt, ...)
    P2P_PRINTF(4, 5);

static void set_err(struct cfg_ctx *c, size_t line0, const char *key, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (!c->err || c->errlen == 0)
        return;
    if (key)
        snprintf(c->err, c->errlen, "%s:%zu: %s: %s", c->name, line0 + 1, key, reason);
    else
        snprintf(c->err, c->errlen, "%s:%zu: %s", c->name, line0 + 1, reason);
}

/* ---- scalar parsers ---------------------------------------------------------------------- */

/* Reads digits [ '.' digits ] from s[*pos..len); integer part into *ip (overflow → -1), fraction
 * digits into *frac with their count in *fdigits. Returns 0, or -1 if no digit/overflow/too many
 * fraction digits. */
static int parse_decimal(const char *s, size_t len, size_t *pos, uint64_t *ip, uint64_t *frac,
                         unsigned *fdigits)
{
    size_t i = *pos;
    uint64_t v = 0;
    size_t start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        i++;
    }
    if (i == start)
        return -1;
    *frac = 0;
    *fdigits = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t fstart = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (*fdigits >= CFG_MAX_FRAC_DIGITS)
                return -1;
            *frac = *frac * 10 + (uint64_t)(s[i] - '0');
            (*fdigits)++;
            i++;
        }
        if (i == fstart)
            return -1;
    }
    *ip = v;
    *pos = i;
    return 0;
}

static uint64_t pow10u(unsigned k)
{
    uint64_t p = 1;
    while (k--)
        p *= 10;
    return p;
}

/* ip.frac * mult as an exact whole number, or -1 if it is not whole or overflows *acc. */
static int scale_add(uint64_t ip, uint64_t frac, unsigned fdigits, uint64_t mult,
                     unsigned __int128 *acc)
{
    unsigned __int128 whole = (unsigned __int128)ip * mult;
    unsigned __int128 f = (unsigned __int128)frac * mult;
    uint64_t p = pow10u(fdigits);
    if (f % p != 0)
        return -1;
    *acc += whole + f / p;
    if (*acc > UINT64_MAX)
        return -1;
    return 0;
}

struct unit {
    const char *name;
    uint64_t mult;
};

/* Sizes: bare = bytes; K/M/G/T/P/E and xiB are binary (1024^n), xB decimal (1000^n). */
static const struct unit size_units[] = {
    {"", 1ULL},
    {"b", 1ULL},
    {"k", 1ULL << 10},
    {"kib", 1ULL << 10},
    {"kb", 1000ULL},
    {"m", 1ULL << 20},
    {"mib", 1ULL << 20},
    {"mb", 1000000ULL},
    {"g", 1ULL << 30},
    {"gib", 1ULL << 30},
    {"gb", 1000000000ULL},
    {"t", 1ULL << 40},
    {"tib", 1ULL << 40},
    {"tb", 1000000000000ULL},
    {"p", 1ULL << 50},
    {"pib", 1ULL << 50},
    {"pb", 1000000000000000ULL},
    {"e", 1ULL << 60},
    {"eib", 1ULL << 60},
    {"eb", 1000000000000000000ULL},
};

int p2p_cfg_parse_size(const char *s, uint64_t *out)
{
    if (!s)
        return -1;
    size_t len = strlen(s);
    size_t pos = 0;
    uint64_t ip, frac;
    unsigned fd;
    if (parse_decimal(s, len, &pos, &ip, &frac, &fd) < 0)
        return -1;
    const char *u = s + pos;
    size_t ulen = len - pos;
    for (size_t i = 0; i < P2P_ARRAY_LEN(size_units); i++) {
        if (strlen(size_units[i].name) == ulen && strncasecmp(u, size_units[i].name, ulen) == 0) {
            unsigned __int128 acc = 0;
            if (scale_add(ip, frac, fd, size_units[i].mult, &acc) < 0)
                return -1;
            *out = (uint64_t)acc;
            return 0;
        }
    }
    return -1;
}

/* Durations: bare integer = seconds; otherwise one or more <number><unit> with units h, m, s, ms
 * each at most once and in that order ("1h30m", "1m30s", "1.5s", "250ms"). Result in ms. */
int p2p_cfg_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct unit units[] = {
        {"h", 3600000ULL}, {"ms", 1ULL}, {"m", 60000ULL}, {"s", 1000ULL},
    };
    static const int rank[] = {4, 1, 3, 2}; /* order h > m > s > ms */
    if (!s)
        return -1;
    size_t len = strlen(s);
    if (len == 0)
        return -1;
    uint64_t v;
    if (p2p_parse_u64(s, len, &v) == 0) {
        if (v > UINT64_MAX / 1000)
            return -1;
        *out = v * 1000;
        return 0;
    }
    unsigned __int128 acc = 0;
    size_t pos = 0;
    int last_rank = 5;
    while (pos < len) {
        uint64_t ip, frac;
        unsigned fd;
        if (parse_decimal(s, len, &pos, &ip, &frac, &fd) < 0)
            return -1;
        size_t i;
        for (i = 0; i < P2P_ARRAY_LEN(units); i++) {
            size_t ul = strlen(units[i].name);
            if (len - pos >= ul && memcmp(s + pos, units[i].name, ul) == 0 &&
                (pos + ul == len || s[pos + ul] < 'a' || s[pos + ul] > 'z'))
                break;
        }
        if (i == P2P_ARRAY_LEN(units) || rank[i] >= last_rank)
            return -1;
        last_rank = rank[i];
        pos += strlen(units[i].name);
        if (scale_add(ip, frac, fd, units[i].mult, &acc) < 0)
            return -1;
    }
    *out = (uint64_t)acc;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < P2P_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static void *field_ptr(const struct p2p_cfg_field *f, void *target)
{
    return (char *)target + f->offset;
}

static void strlist_clear(struct p2p_cfg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static const char *type_unit(enum p2p_cfg_type t)
{
    switch (t) {
    case P2P_CFG_SIZE:
        return " bytes";
    case P2P_CFG_DURATION:
        return " ms";
    default:
        return "";
    }
}

/*
 * Parses scalar s (NUL-terminated, len bytes) for field f and stores it in target. Returns 0, or
 * -1 with a reason (no key, no position) in reason.
 */
static int apply_scalar(const struct p2p_cfg_field *f, void *target, const char *s, size_t len,
                        char *reason, size_t rlen)
{
    void *p = field_ptr(f, target);
    uint64_t v = 0;
    if (strlen(s) != len) {
        snprintf(reason, rlen, "value contains a NUL byte");
        return -1;
    }
    /* Numbers of every kind: a sign is never valid, and saying so beats "bad syntax". */
    const char *numkind = f->type == P2P_CFG_U64        ? "value"
                          : f->type == P2P_CFG_SIZE     ? "size"
                          : f->type == P2P_CFG_DURATION ? "duration"
                                                        : NULL;
    if (numkind && s[0] == '-') {
        snprintf(reason, rlen, "invalid %s '%.64s': must not be negative", numkind, s);
        return -1;
    }
    switch (f->type) {
    case P2P_CFG_STR:
    case P2P_CFG_ENUM: {
        size_t cap = f->max ? f->max : CFG_DEF_MAX_STR;
        if (len > cap) {
            snprintf(reason, rlen, "value too long (%zu bytes, at most %zu)", len, cap);
            return -1;
        }
        if (f->type == P2P_CFG_ENUM) {
            size_t i;
            for (i = 0; f->choices && f->choices[i]; i++)
                if (strcmp(f->choices[i], s) == 0)
                    break;
            if (!f->choices || !f->choices[i]) {
                char list[256] = "";
                size_t used = 0;
                for (size_t j = 0; f->choices && f->choices[j]; j++) {
                    int w = snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "",
                                     f->choices[j]);
                    if (w < 0 || (size_t)w >= sizeof list - used)
                        break;
                    used += (size_t)w;
                }
                snprintf(reason, rlen, "invalid value '%.64s': must be one of %s", s, list);
                return -1;
            }
        }
        char **sp = p;
        free(*sp);
        *sp = p2p_xstrndup(s, len);
        return 0;
    }
    case P2P_CFG_BOOL:
        if (parse_bool(s, (bool *)p) < 0) {
            snprintf(reason, rlen, "invalid boolean '%.64s': expected true or false", s);
            return -1;
        }
        return 0;
    case P2P_CFG_U64:
        if (p2p_parse_u64(s, len, &v) < 0) {
            snprintf(reason, rlen, "invalid value '%.64s': expected a non-negative integer", s);
            return -1;
        }
        break;
    case P2P_CFG_SIZE:
        if (p2p_cfg_parse_size(s, &v) < 0) {
            snprintf(reason, rlen,
                     "invalid size '%.64s': expected bytes or a number with a unit "
                     "(B, KiB, MiB, GiB, TiB, KB, MB, GB, TB), e.g. 4MiB", s);
            return -1;
        }
        break;
    case P2P_CFG_DURATION:
        if (p2p_cfg_parse_duration_ms(s, &v) < 0) {
            snprintf(reason, rlen,
                     "invalid duration '%.64s': expected seconds or h/m/s/ms units, "
                     "e.g. 10s, 500ms, 1m30s, 24h", s);
            return -1;
        }
        break;
    case P2P_CFG_STRLIST:
        snprintf(reason, rlen, "expected a sequence");
        return -1;
    }
    /* numeric types */
    if (v < f->min || (f->max && v > f->max)) {
        if (f->min == 1 && !f->max)
            snprintf(reason, rlen, "must be greater than 0");
        else if (f->max)
            snprintf(reason, rlen, "value %llu out of range (%llu..%llu%s)", (unsigned long long)v,
                     (unsigned long long)f->min, (unsigned long long)f->max, type_unit(f->type));
        else
            snprintf(reason, rlen, "value %llu out of range (at least %llu%s)",
                     (unsigned long long)v, (unsigned long long)f->min, type_unit(f->type));
        return -1;
    }
    *(uint64_t *)p = v;
    return 0;
}

int p2p_cfg_defaults(const struct p2p_cfg_field *fields, size_t n, void *target)
{
    for (size_t i = 0; i < n; i++) {
        const struct p2p_cfg_field *f = &fields[i];
        void *p = field_ptr(f, target);
        /* The target may be uninitialised: overwrite, never free. */
        switch (f->type) {
        case P2P_CFG_STR:
        case P2P_CFG_ENUM:
            *(char **)p = NULL;
            break;
        case P2P_CFG_BOOL:
            *(bool *)p = false;
            break;
        case P2P_CFG_U64:
        case P2P_CFG_SIZE:
        case P2P_CFG_DURATION:
            *(uint64_t *)p = 0;
            break;
        case P2P_CFG_STRLIST:
            ((struct p2p_cfg_strlist *)p)->v = NULL;
            ((struct p2p_cfg_strlist *)p)->n = 0;
            break;
        }
        const char *def = f->def;
        if (!def && (f->type == P2P_CFG_STR || f->type == P2P_CFG_ENUM))
            def = "";
        if (!def || f->type == P2P_CFG_STRLIST)
            continue;
        char reason[256];
        if (apply_scalar(f, target, def, strlen(def), reason, sizeof reason) < 0) {
            /* Defaults are compiled in: a bad one is a programmer error. */
            fprintf(stderr, "p2p_cfg_defaults: bad default for %s: %s\n", f->key, reason);
            abort();
        }
    }
    return 0;
}

void p2p_cfg_free(const struct p2p_cfg_field *fields, size_t n, void *target)
{
    for (size_t i = 0; i < n; i++) {
        void *p = field_ptr(&fields[i], target);
        if (fields[i].type == P2P_CFG_STR || fields[i].type == P2P_CFG_ENUM) {
            free(*(char **)p);
            *(char **)p = NULL;
        } else if (fields[i].type == P2P_CFG_STRLIST) {
            strlist_clear(p);
        }
    }
}

/* ---- YAML tree walk ---------------------------------------------------------------------- */

static bool is_null_scalar(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)node->data.scalar.value;
    return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    default:
        return "a scalar";
    }
}

static const struct p2p_cfg_field *find_field(const struct cfg_ctx *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->fields[i].key, key) == 0)
            return &c->fields[i];
    return NULL;
}

/* True if some field key starts with "<key>." (key names a nested mapping). */
static bool is_section(const struct cfg_ctx *c, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < c->n; i++)
        if (strncmp(c->fields[i].key, key, kl) == 0 && c->fields[i].key[kl] == '.')
            return true;
    return false;
}

static int apply_list(struct cfg_ctx *c, const struct p2p_cfg_field *f, yaml_node_t *node)
{
    size_t cap = f->max ? f->max : CFG_DEF_MAX_LIST;
    size_t cnt = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (cnt > cap) {
        set_err(c, node->start_mark.line, f->key, "too many entries (%zu, at most %zu)", cnt, cap);
        return -1;
    }
    struct p2p_cfg_strlist l = {p2p_xcalloc(cnt ? cnt : 1, sizeof(char *)), 0};
    int rc = -1;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *item = yaml_document_get_node(c->doc, node->data.sequence.items.start[i]);
        if (!item || item->type != YAML_SCALAR_NODE) {
            set_err(c, item ? item->start_mark.line : node->start_mark.line, f->key,
                    "entry %zu: expected a string, got %s", i + 1,
                    item ? node_kind(item) : "nothing");
            goto out;
        }
        const char *s = (const char *)item->data.scalar.value;
        size_t len = item->data.scalar.length;
        if (strlen(s) != len || len > CFG_DEF_MAX_STR) {
            set_err(c, item->start_mark.line, f->key, "entry %zu: invalid string", i + 1);
            goto out;
        }
        l.v[l.n++] = p2p_xstrndup(s, len);
    }
    struct p2p_cfg_strlist *dst = field_ptr(f, c->target);
    strlist_clear(dst);
    *dst = l;
    l.v = NULL;
    l.n = 0;
    rc = 0;
out:
    strlist_clear(&l);
    return rc;
}

static int apply_value(struct cfg_ctx *c, const struct p2p_cfg_field *f, yaml_node_t *val)
{
    if (is_null_scalar(val))
        return 0; /* "key:" / "key: ~" keeps the default */
    if (f->type == P2P_CFG_STRLIST) {
        if (val->type != YAML_SEQUENCE_NODE) {
            set_err(c, val->start_mark.line, f->key, "expected a sequence, got %s",
                    node_kind(val));
            return -1;
        }
        return apply_list(c, f, val);
    }
    if (val->type != YAML_SCALAR_NODE) {
        set_err(c, val->start_mark.line, f->key, "expected a scalar value, got %s",
                node_kind(val));
        return -1;
    }
    char reason[384];
    if (apply_scalar(f, c->target, (const char *)val->data.scalar.value, val->data.scalar.length,
                     reason, sizeof reason) < 0) {
        set_err(c, val->start_mark.line, f->key, "%s", reason);
        return -1;
    }
    return 0;
}

static int walk_mapping(struct cfg_ctx *c, yaml_node_t *map, const char *prefix)
{
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    yaml_node_pair_t *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *pair = start; pair < top; pair++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, pair->value);
        if (!k || !v)
            continue;
        if (k->type != YAML_SCALAR_NODE) {
            set_err(c, k->start_mark.line, prefix, "mapping keys must be plain strings, got %s",
                    node_kind(k));
            return -1;
        }
        const char *ks = (const char *)k->data.scalar.value;
        char full[CFG_MAX_KEY + 1];
        int w = snprintf(full, sizeof full, "%s%s%.*s", prefix ? prefix : "", prefix ? "." : "",
                         CFG_MAX_KEY, ks);
        bool bad = w < 0 || (size_t)w >= sizeof full || strchr(ks, '.') != NULL ||
                   strlen(ks) != k->data.scalar.length || ks[0] == '\0';
        const struct p2p_cfg_field *f = bad ? NULL : find_field(c, full);
        bool section = !bad && !f && is_section(c, full);
        if (!f && !section) {
            set_err(c, k->start_mark.line, full, "unknown key%s",
                    strchr(ks, '.') ? " (write nested keys as mappings, not dotted)" : "");
            return -1;
        }
        /* Every earlier key of this mapping was known (else we stopped), so this is cheap. */
        for (yaml_node_pair_t *prev = start; prev < pair; prev++) {
            yaml_node_t *pk = yaml_document_get_node(c->doc, prev->key);
            if (pk && pk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)pk->data.scalar.value, ks) == 0) {
                set_err(c, k->start_mark.line, full, "duplicate key (first given on line %zu)",
                        pk->start_mark.line + 1);
                return -1;
            }
        }
        if (f) {
            if (apply_value(c, f, v) < 0)
                return -1;
            continue;
        }
        if (is_null_scalar(v))
            continue; /* "web:" with nothing under it */
        if (v->type != YAML_MAPPING_NODE) {
            set_err(c, v->start_mark.line, full, "expected a mapping, got %s", node_kind(v));
            return -1;
        }
        if (walk_mapping(c, v, full) < 0)
            return -1;
    }
    return 0;
}

/* 0-based line of byte offset off in buf. */
static size_t line_of_offset(const char *buf, size_t len, size_t off)
{
    size_t line = 0;
    for (size_t i = 0; i < off && i < len; i++)
        if (buf[i] == '\n')
            line++;
    return line;
}

static void syntax_err(struct cfg_ctx *c, yaml_parser_t *parser, const char *yaml, size_t len)
{
    size_t line;
    if (parser->error == YAML_READER_ERROR)
        line = line_of_offset(yaml, len, parser->problem_offset);
    else
        line = parser->problem_mark.line;
    if (parser->context)
        set_err(c, line, NULL, "YAML syntax error: %s %s", parser->problem ? parser->problem : "",
                parser->context);
    else
        set_err(c, line, NULL, "YAML syntax error: %s",
                parser->problem ? parser->problem : "unknown");
}

int p2p_cfg_load_string(const struct p2p_cfg_field *fields, size_t n, void *target,
                        const char *yaml, size_t len, const char *name, char *err, size_t errlen)
{
    struct cfg_ctx c = {fields, n, target, NULL, name ? name : "<config>", err, errlen};
    yaml_parser_t parser;
    yaml_document_t doc, doc2;
    bool have_doc = false;
    int rc = -1;

    if (err && errlen)
        err[0] = '\0';
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "p2p_cfg: yaml_parser_initialize failed (out of memory)\n");
        abort();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_err(&c, &parser, yaml, len);
        goto out;
    }
    have_doc = true;
    c.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {
        /* A second document ("---" twice) is refused rather than silently ignored. */
        if (!yaml_parser_load(&parser, &doc2)) {
            syntax_err(&c, &parser, yaml, len);
            goto out;
        }
        yaml_node_t *root2 = yaml_document_get_root_node(&doc2);
        size_t line2 = root2 ? root2->start_mark.line : 0;
        yaml_document_delete(&doc2);
        if (root2) {
            set_err(&c, line2, NULL, "only one YAML document is allowed");
            goto out;
        }
    }
    if (!root || is_null_scalar(root)) {
        rc = 0; /* empty file or only comments: defaults */
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        set_err(&c, root->start_mark.line, NULL, "top level must be a mapping, got %s",
                node_kind(root));
        goto out;
    }
    rc = walk_mapping(&c, root, NULL);
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int p2p_cfg_load_file(const struct p2p_cfg_field *fields, size_t n, void *target,
                      const char *path, char *err, size_t errlen)
{
    int rc = -1;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open config file: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > CFG_MAX_FILE) {
        snprintf(err, errlen, "%s: config file too large (at most %d bytes)", path, CFG_MAX_FILE);
        goto out;
    }
    buf = p2p_xmalloc(CFG_MAX_FILE + 1);
    for (;;) {
        ssize_t r = read(fd, buf + len, CFG_MAX_FILE + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CFG_MAX_FILE) {
            snprintf(err, errlen, "%s: config file too large (at most %d bytes)", path,
                     CFG_MAX_FILE);
            goto out;
        }
    }
    buf[len] = '\0';
    rc = p2p_cfg_load_string(fields, n, target, buf, len, path, err, errlen);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *p2p_cfg_find(const char *role, const char *explicit_path)
{
    if (explicit_path && explicit_path[0])
        return p2p_xstrdup(explicit_path);
    char *p = p2p_xasprintf("./config/config.%s.yaml", role);
    if (is_file(p))
        return p;
    free(p);
    p = p2p_xasprintf("/etc/p2p-sharer/config.%s.yaml", role);
    if (is_file(p))
        return p;
    free(p);
    return NULL;
}
