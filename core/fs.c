/*
 * File system helpers: atomic writes, bounded reads, safe relative paths (style.md 2.6).
 *
 * Design: an atomic write is temp file in the same directory, write, fsync, rename over the
 * target, fsync the directory, so a crash at any point leaves either the old file or the new one
 * whole. Paths taken from archives or sources go through core_fs_check_relpath before use.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return core_strdup(".");
    if (slash == path)
        return core_strdup("/");
    return core_strndup(path, (size_t)(slash - path));
}

int core_fs_sync_dir(const char *path, berth_error **err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return core_error_errno(err, errno, "opening directory \"%s\"", path);
    int rc = 0;
    if (fsync(fd) < 0 && errno != EINVAL)
        rc = core_error_errno(err, errno, "syncing directory \"%s\"", path);
    close(fd);
    return rc;
}

int core_fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int core_fs_atomic_open(core_fs_atomic *a, const char *path, mode_t mode, berth_error **err)
{
    const char *base = strrchr(path, '/');
    char *dir = dir_of(path);

    memset(a, 0, sizeof(*a));
    a->fd = -1;
    a->mode = mode;
    /* A dot-file, so readers of the directory (the kubelet, k3s) skip a temp left by a crash;
     * core_fs_sweep_temps removes such leftovers. */
    a->tmp = dir ? core_sprintf("%s/.%s.tmp-XXXXXX", dir, base ? base + 1 : path) : NULL;
    a->path = core_strdup(path);
    core_free(dir);
    if (!a->tmp || !a->path) {
        core_fs_atomic_abort(a);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    if ((a->fd = mkstemp(a->tmp)) < 0) {
        int rc = core_error_errno(err, errno, "creating temporary file for \"%s\"", path);
        core_free(a->tmp); /* nothing was created */
        a->tmp = NULL;
        core_fs_atomic_abort(a);
        return rc;
    }
    return 0;
}

int core_fs_atomic_write(core_fs_atomic *a, const void *data, size_t len, berth_error **err)
{
    if (core_fs_write_all(a->fd, data, len) < 0)
        return core_error_errno(err, errno, "writing \"%s\"", a->tmp);
    return 0;
}

int core_fs_atomic_commit(core_fs_atomic *a, berth_error **err)
{
    char *dir = dir_of(a->path);
    int rc = 0, fd = a->fd;

    a->fd = -1;
    if (!dir) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    } else if (fchmod(fd, a->mode) < 0 || fsync(fd) < 0) {
        rc = core_error_errno(err, errno, "writing \"%s\"", a->tmp);
    } else if (close(fd) < 0) {
        rc = core_error_errno(err, errno, "closing \"%s\"", a->tmp);
    } else if (rename(a->tmp, a->path) < 0) {
        rc = core_error_errno(err, errno, "renaming \"%s\" to \"%s\"", a->tmp, a->path);
    } else {
        core_free(a->tmp); /* renamed: nothing to unlink */
        a->tmp = NULL;
        rc = core_fs_sync_dir(dir, err);
    }
    if (rc < 0 && fd >= 0)
        (void)close(fd); /* after a failed close the descriptor is gone: EBADF is harmless */
    core_free(dir);
    core_fs_atomic_abort(a);
    return rc;
}

void core_fs_atomic_abort(core_fs_atomic *a)
{
    if (!a)
        return;
    if (a->fd >= 0)
        close(a->fd);
    if (a->tmp)
        unlink(a->tmp);
    core_free(a->tmp);
    core_free(a->path);
    a->fd = -1;
    a->tmp = NULL;
    a->path = NULL;
}

int core_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         berth_error **err)
{
    core_fs_atomic a;
    int rc;

    if ((rc = core_fs_atomic_open(&a, path, mode, err)) < 0)
        return rc;
    if ((rc = core_fs_atomic_write(&a, data, len, err)) < 0) {
        core_fs_atomic_abort(&a);
        return rc;
    }
    return core_fs_atomic_commit(&a, err);
}

int core_fs_read_file(berth_buf *out, const char *path, size_t max_bytes, berth_error **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return core_error_errno(err, errno, "opening \"%s\"", path);
    int rc = 0;
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = core_error_errno(err, errno, "reading \"%s\"", path);
            break;
        }
        if (n == 0)
            break;
        if (max_bytes && out->len + (size_t)n > max_bytes) {
            rc =
                core_error_set(err, BERTH_EINVAL, "file \"%s\" exceeds %zu bytes", path, max_bytes);
            break;
        }
        if (berth_buf_put(out, chunk, (size_t)n) < 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory reading \"%s\"", path);
            break;
        }
    }
    close(fd);
    if (rc == 0 && !out->ptr)
        rc = berth_buf_put(out, "", 0);
    return rc;
}

int core_fs_mkdirs(const char *path, mode_t mode, berth_error **err)
{
    char *p = core_strdup(path);
    if (!p)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            rc = core_error_errno(err, errno, "creating directory \"%s\"", p);
            break;
        }
        *s = saved;
        if (saved == '\0')
            break;
    }
    if (rc == 0 && !core_fs_is_dir(path))
        rc = core_error_set(err, BERTH_EIO, "\"%s\" exists and is not a directory", path);
    core_free(p);
    return rc;
}

/* Remove the entries of the directory open at dfd, recursively, without following links. */
static int remove_tree_at(int dfd, const char *shown, berth_error **err)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return core_error_errno(err, errno, "opening directory \"%s\"", shown);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT)
                rc = core_error_errno(err, errno, "inspecting \"%s/%s\"", shown, n);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = core_error_errno(err, errno, "opening \"%s/%s\"", shown, n);
                continue;
            }
            rc = remove_tree_at(sub, shown, err);
            if (rc == 0 && unlinkat(dirfd(d), n, AT_REMOVEDIR) < 0 && errno != ENOENT)
                rc = core_error_errno(err, errno, "removing \"%s/%s\"", shown, n);
        } else if (unlinkat(dirfd(d), n, 0) < 0 && errno != ENOENT) {
            rc = core_error_errno(err, errno, "removing \"%s/%s\"", shown, n);
        }
    }
    closedir(d);
    return rc;
}

int core_fs_remove_all(const char *path, berth_error **err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : core_error_errno(err, errno, "inspecting \"%s\"", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return core_error_errno(err, errno, "removing \"%s\"", path);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return core_error_errno(err, errno, "opening \"%s\"", path);
    int rc = remove_tree_at(fd, path, err);
    if (rc == 0 && rmdir(path) < 0 && errno != ENOENT)
        rc = core_error_errno(err, errno, "removing \"%s\"", path);
    return rc;
}

int core_fs_mkdtemp(char **out, const char *parent, const char *prefix, berth_error **err)
{
    char *p = core_sprintf("%s/%sXXXXXX", parent, prefix);
    if (!p)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (!mkdtemp(p)) {
        int rc = core_error_errno(err, errno, "creating a temporary directory in \"%s\"", parent);
        core_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int core_fs_check_relpath(const char *rel, berth_error **err)
{
    if (!rel || !*rel)
        return core_error_set(err, BERTH_EINVAL, "empty path");
    if (rel[0] == '/')
        return core_error_set(err, BERTH_EINVAL, "absolute path \"%s\" refused", rel);
    if (strchr(rel, '\\'))
        return core_error_set(err, BERTH_EINVAL, "path \"%s\" contains a backslash", rel);
    for (const char *s = rel; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return core_error_set(err, BERTH_EINVAL, "path \"%s\" escapes its root (\"..\")", rel);
        s += n;
        if (*s == '/')
            s++;
    }
    return 0;
}

int core_fs_join(char **out, const char *base, const char *rel, berth_error **err)
{
    int rc = core_fs_check_relpath(rel, err);
    if (rc < 0)
        return rc;
    size_t bl = strlen(base);
    *out = core_sprintf("%s%s%s", base, (bl && base[bl - 1] == '/') ? "" : "/", rel);
    return *out ? 0 : core_error_set(err, BERTH_ENOMEM, "out of memory");
}

bool core_fs_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool core_fs_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

bool core_fs_is_temp_name(const char *name)
{
    size_t n = strlen(name);
    return n > 12 && name[0] == '.' && memcmp(name + n - 11, ".tmp-", 5) == 0;
}

/* Remove the temp files of core_fs_write_atomic in the directory open at dfd, and below it down
 * to depth more levels. */
static int sweep_at(int dfd, const char *shown, int depth, berth_error **err)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return core_error_errno(err, errno, "opening directory \"%s\"", shown);
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISREG(st.st_mode) && core_fs_is_temp_name(de->d_name)) {
            if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
                rc = core_error_errno(err, errno, "removing \"%s/%s\"", shown, de->d_name);
        } else if (S_ISDIR(st.st_mode) && depth > 0) {
            int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                rc = sweep_at(sub, shown, depth - 1, err);
        }
    }
    closedir(d);
    return rc;
}

int core_fs_sweep_temps(const char *dir, int depth, berth_error **err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : core_error_errno(err, errno, "opening \"%s\"", dir);
    return sweep_at(fd, dir, depth, err);
}
