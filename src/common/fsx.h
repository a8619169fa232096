/* Filesystem helpers: safe names, paths inside a root, atomic writes. These are blocking calls:
 * run them on the libuv thread pool, or before the loop starts. */
#ifndef P2P_COMMON_FSX_H
#define P2P_COMMON_FSX_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define P2P_NAME_MAX 255

/**
 * True if name is a plain file name: 1..255 bytes, no '/', '\\', NUL or control characters,
 * not "." or "..", no leading '.', valid UTF-8. If why is non-NULL it gets a static reason.
 */
bool p2p_name_is_safe(const char *name, size_t len, const char **why);

/**
 * Turns an arbitrary string (e.g. TUS filename metadata) into a safe name: keeps only the last
 * path component, replaces control characters and separators with '_', strips leading dots,
 * truncates to 255 bytes at a UTF-8 boundary, "file" if nothing is left. Returns a new string.
 */
char *p2p_name_sanitize(const char *in, size_t len);

/** Joins dir and a safe name into a new string; returns NULL if name is not safe. */
char *p2p_path_join(const char *dir, const char *name);

/**
 * Writes data to path atomically: a temp file in the same directory, write, fsync, rename,
 * fsync of the directory. Returns 0 or a negative errno.
 */
int p2p_atomic_write(const char *path, const void *data, size_t len);

/**
 * Overwrites path in place with data (created if missing, never through a symlink, cut to len):
 * one pwrite at offset 0, no fsync, no rename. A process that dies sees the old or the new
 * content; after a power loss it may be torn, old or empty. For small state that is rewritten
 * often and checked when read back (a rename per write waited on ext4's journal).
 * Returns 0 or a negative errno.
 */
int p2p_overwrite_file(const char *path, const void *data, size_t len);

/** Reads a whole file of at most max bytes into a new buffer (NUL-terminated, caller frees).
 *  Returns 0, -EFBIG if larger than max, or a negative errno. */
int p2p_read_file(const char *path, size_t max, char **out, size_t *outlen);

/** mkdir -p with mode 0755; returns 0 or a negative errno. */
int p2p_mkdirs(const char *path);

#endif
