/* jansson helpers: strict object parsing (no duplicate keys, no trailing data), typed field
 * getters whose errors name the field, compact dumping and the {"code","msg"} error body. */
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

json_t *p2p_json_parse_object(const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    /* Without JSON_DISABLE_EOF_CHECK jansson rejects anything but whitespace after the value;
     * without JSON_DECODE_ANY the top level must be an object or array; without
     * JSON_ALLOW_NUL a "\u0000" in a string is an error. */
    json_t *v = json_loadb(buf ? buf : "", buf ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        snprintf(err, errlen, "invalid JSON: expected an object at the top level");
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Looks key up in obj. Returns 0 with *out set, 1 if absent (or null) and optional, -1 if absent
 * and required or obj is not an object. JSON null counts as absent. */
static int lookup(json_t *obj, const char *key, bool required, json_t **out, char *err,
                  size_t errlen)
{
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "field '%s': expected an object around it", key);
        return -1;
    }
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (!required)
            return 1;
        snprintf(err, errlen, "field '%s': missing", key);
        return -1;
    }
    *out = v;
    return 0;
}

static const char *kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

int p2p_json_get_str(json_t *obj, const char *key, bool required, const char **out, char *err,
                     size_t errlen)
{
    json_t *v = NULL;
    int rc = lookup(obj, key, required, &v, err, errlen);
    if (rc != 0)
        return rc;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "field '%s': expected a string, got %s", key, kind(v));
        return -1;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        snprintf(err, errlen, "field '%s': string contains a NUL character", key);
        return -1;
    }
    *out = s;
    return 0;
}

int p2p_json_get_u64(json_t *obj, const char *key, bool required, uint64_t max, uint64_t *out,
                     char *err, size_t errlen)
{
    json_t *v = NULL;
    int rc = lookup(obj, key, required, &v, err, errlen);
    if (rc != 0)
        return rc;
    if (!json_is_integer(v)) {
        snprintf(err, errlen, "field '%s': expected an integer, got %s", key, kind(v));
        return -1;
    }
    json_int_t i = json_integer_value(v);
    if (i < 0) {
        snprintf(err, errlen, "field '%s': expected a non-negative integer", key);
        return -1;
    }
    if ((uint64_t)i > max) {
        snprintf(err, errlen, "field '%s': %llu is larger than the maximum %llu", key,
                 (unsigned long long)i, (unsigned long long)max);
        return -1;
    }
    *out = (uint64_t)i;
    return 0;
}

int p2p_json_get_bool(json_t *obj, const char *key, bool required, bool *out, char *err,
                      size_t errlen)
{
    json_t *v = NULL;
    int rc = lookup(obj, key, required, &v, err, errlen);
    if (rc != 0)
        return rc;
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "field '%s': expected a boolean, got %s", key, kind(v));
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int p2p_json_get_number(json_t *obj, const char *key, bool required, double *out, char *err,
                        size_t errlen)
{
    json_t *v = NULL;
    int rc = lookup(obj, key, required, &v, err, errlen);
    if (rc != 0)
        return rc;
    if (!json_is_number(v)) {
        snprintf(err, errlen, "field '%s': expected a number, got %s", key, kind(v));
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

char *p2p_json_dump(const json_t *v, size_t *len)
{
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t need = v ? json_dumpb(v, NULL, 0, flags) : 0;
    if (need == 0) {
        /* Only an invalid value (NULL, or a string with invalid UTF-8 built unchecked). */
        fprintf(stderr, "p2p_json_dump: value cannot be encoded\n");
        abort();
    }
    char *out = p2p_xmalloc(need + 1);
    size_t got = json_dumpb(v, out, need, flags);
    if (got != need) {
        fprintf(stderr, "p2p_json_dump: size changed while encoding\n");
        abort();
    }
    out[need] = '\0';
    if (len)
        *len = need;
    return out;
}

/* json_string() refuses invalid UTF-8; messages may quote hostile input, so fall back to a copy
 * with every non-ASCII or control byte replaced by '?'. */
static json_t *safe_string(const char *s)
{
    json_t *j = json_string(s ? s : "");
    if (j)
        return j;
    char *copy = p2p_xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    j = json_string(copy);
    free(copy);
    if (!j) {
        fprintf(stderr, "p2p_json: out of memory\n");
        abort();
    }
    return j;
}

json_t *p2p_json_error(const char *code, const char *msg)
{
    json_t *o = json_object();
    if (!o) {
        fprintf(stderr, "p2p_json: out of memory\n");
        abort();
    }
    json_object_set_new(o, "code", safe_string(code));
    json_object_set_new(o, "msg", safe_string(msg));
    return o;
}
