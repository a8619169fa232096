/* jansson helpers: typed field getters with error text naming the field, and dumping. */
#ifndef P2P_COMMON_JSON_H
#define P2P_COMMON_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/**
 * Parses a JSON object from buf[0..len) (no NUL needed). Duplicate keys are rejected. Returns a
 * new reference or NULL with a message in err.
 */
json_t *p2p_json_parse_object(const char *buf, size_t len, char *err, size_t errlen);

/**
 * Typed getters. Each returns 0 on success; 1 if the key is absent and !required (out untouched);
 * -1 with "field 'key': ..." in err if absent and required, or of the wrong type/range.
 * Strings are borrowed from obj.
 */
int p2p_json_get_str(json_t *obj, const char *key, bool required, const char **out, char *err,
                     size_t errlen);
int p2p_json_get_u64(json_t *obj, const char *key, bool required, uint64_t max, uint64_t *out,
                     char *err, size_t errlen);
int p2p_json_get_bool(json_t *obj, const char *key, bool required, bool *out, char *err,
                      size_t errlen);
int p2p_json_get_number(json_t *obj, const char *key, bool required, double *out, char *err,
                        size_t errlen);

/** Dumps compactly into a new string (caller frees). Never returns NULL. */
char *p2p_json_dump(const json_t *v, size_t *len);

/** Builds {"code":code,"msg":msg} (new reference). */
json_t *p2p_json_error(const char *code, const char *msg);

#endif
