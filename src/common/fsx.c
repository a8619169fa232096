/* Filesystem helpers: safe names, paths inside a root, atomic writes (blocking; thread pool). */
#include "common/fsx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* Length of the valid UTF-8 sequence at s (<= n bytes), or 0 if invalid (overlongs,
 * surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool p2p_name_is_safe(const char *name, size_t len, const char **why)
{
    const char *reason = NULL;
    const unsigned char *s = (const unsigned char *)name;
    if (len == 0)
        reason = "empty name";
    else if (len > P2P_NAME_MAX)
        reason = "name longer than 255 bytes";
    else if (name[0] == '.')
        reason = "name starts with '.'";
    for (size_t i = 0; !reason && i < len;) {
        if (s[i] == '/' || s[i] == '\\')
            reason = "name contains a path separator";
        else if (s[i] < 0x20 || s[i] == 0x7f)
            reason = "name contains a control character or NUL";
        size_t k = reason ? 1 : utf8_seq(s + i, len - i);
        if (!reason && k == 0)
            reason = "name is not valid UTF-8";
        i += k ? k : 1;
    }
    if (why)
        *why = reason;
    return reason == NULL;
}

char *p2p_name_sanitize(const char *in, size_t len)
{
    /* Keep only the last path component. */
    for (size_t i = len; i > 0; i--) {
        if (in[i - 1] == '/' || in[i - 1] == '\\') {
            in += i;
            len -= i;
            break;
        }
    }
    char *out = p2p_xmalloc(len + 1);
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)in;
    for (size_t i = 0; i < len && o < P2P_NAME_MAX;) {
        size_t k = utf8_seq(s + i, len - i);
        if (k == 0 || s[i] < 0x20 || s[i] == 0x7f) {
            out[o++] = '_';
            i += k ? k : 1;
            continue;
        }
        if (o + k > P2P_NAME_MAX)
            break;
        if (!(o == 0 && s[i] == '.')) {  /* strip leading dots */
            memcpy(out + o, s + i, k);
            o += k;
        }
        i += k;
    }
    out[o] = '\0';
    if (o == 0) {
        free(out);
        return p2p_xstrdup("file");
    }
    return out;
}

char *p2p_path_join(const char *dir, const char *name)
{
    if (!p2p_name_is_safe(name, strlen(name), NULL))
        return NULL;
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    return p2p_xasprintf("%.*s/%s", (int)dl, dir, name);
}

static int fsync_dir_of(const char *path)
{
    char *dir = p2p_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int p2p_atomic_write(const char *path, const void *data, size_t len)
{
    char rnd[8];
    uint8_t b[4];
    p2p_random_bytes(b, sizeof b);
    p2p_hex_encode(b, 3, rnd);
    char *tmp = p2p_xasprintf("%s.tmp-%s", path, rnd);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
    else
        rc = fsync_dir_of(path);
out:
    free(tmp);
    return rc;
}

int p2p_overwrite_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const char *)data + done, len - done, (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)w;
    }
    struct stat st;
    if (rc == 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size != len &&
        ftruncate(fd, (off_t)len) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

int p2p_read_file(const char *path, size_t max, char **out, size_t *outlen)
{
    int rc = 0;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = -EFBIG;
        goto out;
    }
    size_t cap = (size_t)st.st_size, n = 0;
    buf = p2p_xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            /* The file grew since fstat: allow up to max. */
            if (cap >= max) {
                char c;
                ssize_t r = read(fd, &c, 1);
                if (r > 0)
                    rc = -EFBIG;
                else if (r < 0)
                    rc = -errno;
                break;
            }
            cap = cap * 2 + 4096 > max ? max : cap * 2 + 4096;
            buf = p2p_xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (rc == 0) {
        buf[n] = '\0';
        *out = buf;
        *outlen = n;
        buf = NULL;
    }
out:
    free(buf);
    close(fd);
    return rc;
}

int p2p_mkdirs(const char *path)
{
    char *p = p2p_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    if (rc == 0) {
        struct stat st;
        if (stat(p, &st) < 0)
            rc = -errno;
        else if (!S_ISDIR(st.st_mode))
            rc = -ENOTDIR;
    }
    free(p);
    return rc;
}
