/* jansson helpers: typed field getters with error text naming the field, and dumping. */
#ifndef P2P_COMMON_JSON_H
#define P2P_COMMON_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/**
 * Parses a JSON object from buf[0..len) (no NUL needed). Duplicate keys, a top level other than
 * an object, trailing non-whitespace and "\u0000" in strings are rejected. The caller caps len.
 * Returns a new reference or NULL with a message in err.
 */
json_t *p2p_json_parse_object(const char *buf, size_t len, char *err, size_t errlen);

/**
 * Typed getters. Each returns 0 on success; 1 if the key is absent and !required (out untouched);
 * -1 with "field 'key': ..." in err if absent and required, or of the wrong type/range.
 * A JSON null counts as absent. Strings are borrowed from obj. get_u64 takes integers only (no
 * fractions, exponents, negatives, strings or booleans) up to max inclusive (pass UINT64_MAX for
 * no bound; jansson itself caps integers at INT64_MAX). get_number takes integers and reals.
 */
int p2p_json_get_str(json_t *obj, const char *key, bool required, const char **out, char *err,
                     size_t errlen);
int p2p_json_get_u64(json_t *obj, const char *key, bool required, uint64_t max, uint64_t *out,
                     char *err, size_t errlen);
int p2p_json_get_bool(json_t *obj, const char *key, bool required, bool *out, char *err,
                      size_t errlen);
int p2p_json_get_number(json_t *obj, const char *key, bool required, double *out, char *err,
                        size_t errlen);

/** Dumps compactly (any JSON type) into a new NUL-terminated string (caller frees with free());
 *  *len (if non-NULL) gets its length. Never returns NULL: an unencodable value aborts. */
char *p2p_json_dump(const json_t *v, size_t *len);

/** Builds {"code":code,"msg":msg} (new reference); invalid UTF-8 in msg becomes '?'. */
json_t *p2p_json_error(const char *code, const char *msg);

#endif
