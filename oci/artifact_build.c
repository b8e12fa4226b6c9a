/*
 * Build a Flux config artifact layer: a reproducible tar+gzip of a directory (spec §1.3), with
 * the layer digest and the diff_id computed while it streams.
 *
 * Design: the calling thread walks the tree depth-first in pre-order, each directory's entries
 * in byte-wise order (Go's filepath.Walk), the root first as ".". Only regular files and
 * directories are archived; symlinks and special files are skipped as Flux does. Headers carry
 * the on-disk permission bits, uid/gid 0, no owner names and mtime 0. libarchive writes the tar
 * (pax-restricted: plain ustar unless a name needs a PAX record, as Go does) straight into our
 * callback (no blocking, no padding of the last record), which hashes the tar bytes (diff_id)
 * and copies them into a bounded block queue. A second thread compresses the blocks with ISA-L,
 * hashes the gzip bytes (digest) and writes them to a temp file beside out_file, renamed into
 * place at the end. Nothing holds the whole archive in memory, and reading/hashing overlaps
 * compression on two cores.
 *
 * libarchive converts names from the locale's charset to UTF-8 for PAX records; under the "C"
 * locale any non-ASCII name would fail that and get an extra "hdrcharset=BINARY" record (which
 * GNU tar warns about). The walk therefore runs with a thread-local C.UTF-8 LC_CTYPE
 * (uselocale), so UTF-8 names are written as plain PAX "path" records, as Go writes them.
 *
 * libarchive always gives directory names a trailing '/'; Go does not. The one header of a
 * directory entry is therefore captured and its name field shortened, with the checksum
 * recomputed, so "." and "dir" appear as Go writes them. (When a PAX record carries a long or
 * non-ASCII directory name, that record keeps libarchive's slash; readers treat both alike.)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "oci/artifact_internal.h"
#include "oci/gzip.h"
#include "oci/ignore.h"

#define READ_BUF (1u << 20) /* file read size */
#define QUEUE_BLOCKS 4      /* tar bytes in flight between the threads: 4 MiB */
#define QUEUE_BLOCK (1u << 20)

typedef struct build {
    /* walker side (calling thread) */
    struct archive *a;
    struct archive_entry *e;
    oci_ignore *ig;
    bool prune; /* no '!' pattern: an excluded directory's children are excluded too */
    core_sha256 *tar_hash;
    uint8_t *rbuf;
    berth_buf abs; /* current path on disk */
    berth_buf rel; /* current path in the archive */
    bool capture;  /* collecting a directory header instead of emitting it */
    berth_buf cap;
    int64_t files;
    berth_error *werr; /* walker-side failure detected inside a libarchive callback */
    int wcode;
    /* compressor side */
    oci_blockq *q;
    oci_gz_writer *gz;
    core_sha256 *gz_hash;
    int fd;
    const char *tmp_path;
    int64_t gz_size;
    berth_error *cerr;
    int ccode;
} build;

/* ---------------------------------------------------------------- compressor thread */
static int gz_out(void *payload, const void *data, size_t len)
{
    build *b = payload;
    core_sha256_update(b->gz_hash, data, len);
    if (core_fs_write_all(b->fd, data, len) < 0)
        return core_error_errno(&b->cerr, errno, "writing \"%s\"", b->tmp_path);
    b->gz_size += (int64_t)len;
    return 0;
}

static void *compress_main(void *payload)
{
    build *b = payload;
    int rc = 0;
    for (;;) {
        const uint8_t *data;
        size_t len;
        int r = oci_blockq_get(b->q, &data, &len);
        if (r < 0) {
            rc = r; /* the walker aborted and owns the error */
            break;
        }
        if (r == 0) {
            rc = oci_gz_writer_finish(b->gz, &b->cerr);
            break;
        }
        rc = oci_gz_writer_write(b->gz, data, len, &b->cerr);
        oci_blockq_release(b->q);
        if (rc < 0)
            break;
    }
    if (rc < 0 && !b->cerr)
        rc = 0; /* aborted by the walker: not our failure */
    if (rc < 0)
        oci_blockq_abort(b->q, rc);
    b->ccode = rc;
    return NULL;
}

/* ---------------------------------------------------------------- tar output */
static int emit(build *b, const void *data, size_t len)
{
    core_sha256_update(b->tar_hash, data, len);
    return oci_blockq_put(b->q, data, len);
}

static la_ssize_t tar_write_cb(struct archive *a, void *payload, const void *data, size_t len)
{
    build *b = payload;
    (void)a;
    if (b->capture) {
        if (berth_buf_put(&b->cap, data, len) < 0) {
            b->wcode = core_error_set(&b->werr, BERTH_ENOMEM, "out of memory");
            return -1;
        }
        return (la_ssize_t)len;
    }
    int rc = emit(b, data, len);
    if (rc < 0) {
        b->wcode = rc;
        return -1;
    }
    return (la_ssize_t)len;
}

/* Drop libarchive's trailing '/' from the name field of a ustar header and fix its checksum. */
static void strip_dir_slash(uint8_t *h)
{
    size_t n = 0;
    while (n < 100 && h[n] != '\0')
        n++;
    if (n < 2 || h[n - 1] != '/')
        return;
    h[n - 1] = '\0';
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < 512; i++)
        sum += h[i];
    for (int i = 5; i >= 0; i--) {
        h[148 + i] = (uint8_t)('0' + (sum & 7));
        sum >>= 3;
    }
    h[154] = '\0';
    h[155] = ' ';
}

/* A libarchive call failed: report the error a callback recorded, else libarchive's own. */
static int archive_fail(build *b, berth_error **err, const char *what)
{
    if (b->werr) {
        int code = b->wcode < 0 ? b->wcode : BERTH_ERROR;
        if (err && !*err) {
            *err = b->werr;
            b->werr = NULL;
            core_error_wrap(err, "%s", what);
        }
        return code;
    }
    if (b->wcode < 0)
        return b->wcode; /* the compressor stopped the queue; its error is adopted later */
    return core_error_set(err, BERTH_ERROR, "%s: %s", what, archive_error_string(b->a));
}

static const char *entry_name(build *b)
{
    return b->rel.len ? b->rel.ptr : ".";
}

static int write_header(build *b, const struct stat *st, bool is_dir, int64_t size,
                        berth_error **err)
{
    struct archive_entry *e = b->e;
    archive_entry_clear(e);
    archive_entry_set_pathname(e, entry_name(b));
    archive_entry_set_filetype(e, is_dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, st->st_mode & 07777);
    archive_entry_set_size(e, is_dir ? 0 : size);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    if (is_dir) {
        berth_buf_clear(&b->cap);
        b->capture = true;
    }
    int r = archive_write_header(b->a, e);
    b->capture = false;
    if (r < ARCHIVE_WARN) {
        char *what = core_sprintf("archiving \"%s\"", b->abs.ptr);
        int rc = archive_fail(b, err, what ? what : "archiving");
        core_free(what);
        return rc;
    }
    if (is_dir) {
        if (BERTH_NEVER(b->cap.len < 512 || b->cap.len % 512 != 0))
            return core_error_set(err, BERTH_ERROR, "archiving \"%s\": unexpected header size",
                                  b->abs.ptr);
        strip_dir_slash((uint8_t *)b->cap.ptr + b->cap.len - 512);
        int rc = emit(b, b->cap.ptr, b->cap.len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_file(build *b, berth_error **err)
{
    int rc = 0;
    /* O_NONBLOCK: a FIFO swapped in since the walk must not block the open. */
    int fd = open(b->abs.ptr, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        rc = core_error_errno(err, errno, "opening \"%s\"", b->abs.ptr);
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = core_error_errno(err, errno, "inspecting \"%s\"", b->abs.ptr);
        goto out;
    }
    if (!S_ISREG(st.st_mode))
        goto out; /* replaced by something else since the walk saw it: skip like Flux */
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    if ((rc = write_header(b, &st, false, st.st_size, err)) < 0)
        goto out;
    int64_t left = st.st_size;
    for (;;) {
        ssize_t n = read(fd, b->rbuf, READ_BUF);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = core_error_errno(err, errno, "reading \"%s\"", b->abs.ptr);
            goto out;
        }
        if (n == 0)
            break;
        if (n > left) {
            rc = core_error_set(err, BERTH_ECONFLICT, "file \"%s\" grew while being archived",
                                b->abs.ptr);
            goto out;
        }
        la_ssize_t w = archive_write_data(b->a, b->rbuf, (size_t)n);
        if (w != n) {
            char *what = core_sprintf("archiving \"%s\"", b->abs.ptr);
            rc = archive_fail(b, err, what ? what : "archiving");
            core_free(what);
            goto out;
        }
        left -= n;
    }
    if (left != 0) {
        rc = core_error_set(err, BERTH_ECONFLICT, "file \"%s\" shrank while being archived",
                            b->abs.ptr);
        goto out;
    }
    /* Write the padding now, so the next directory header is captured alone. */
    if (archive_write_finish_entry(b->a) != ARCHIVE_OK) {
        char *what = core_sprintf("archiving \"%s\"", b->abs.ptr);
        rc = archive_fail(b, err, what ? what : "archiving");
        core_free(what);
        goto out;
    }
    b->files++;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        core_free(names[i]);
    core_free(names);
}

/* The names in the directory b->abs, sorted byte-wise. */
static int read_names(char ***names_out, size_t *n_out, build *b, berth_error **err)
{
    DIR *d = opendir(b->abs.ptr);
    if (!d)
        return core_error_errno(err, errno, "opening directory \"%s\"", b->abs.ptr);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = core_error_errno(err, errno, "reading directory \"%s\"", b->abs.ptr);
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **nn = core_realloc(names, ncap * sizeof(char *));
            if (!nn) {
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = core_strdup(de->d_name))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc < 0) {
        free_names(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof(char *), cmp_names);
    *names_out = names;
    *n_out = n;
    return 0;
}

static int push_component(berth_buf *p, const char *name)
{
    if (p->len && berth_buf_puts(p, "/") < 0)
        return BERTH_ENOMEM;
    return berth_buf_puts(p, name);
}

static void truncate_to(berth_buf *p, size_t len)
{
    p->len = len;
    if (p->ptr)
        p->ptr[len] = '\0';
}

/* Archive the children of the directory at b->abs (archive path b->rel). */
static int walk(build *b, berth_error **err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = read_names(&names, &n, b, err);
    if (rc < 0)
        return rc;
    size_t abs_len = b->abs.len, rel_len = b->rel.len;
    for (size_t i = 0; i < n && rc == 0; i++) {
        truncate_to(&b->abs, abs_len);
        truncate_to(&b->rel, rel_len);
        if (berth_buf_puts(&b->abs, "/") < 0 || berth_buf_puts(&b->abs, names[i]) < 0 ||
            push_component(&b->rel, names[i]) < 0) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            break;
        }
        struct stat st;
        if (lstat(b->abs.ptr, &st) < 0) {
            if (errno == ENOENT)
                continue; /* removed since readdir */
            rc = core_error_errno(err, errno, "inspecting \"%s\"", b->abs.ptr);
            break;
        }
        bool is_dir = S_ISDIR(st.st_mode);
        if (!is_dir && !S_ISREG(st.st_mode))
            continue; /* symlinks, devices, sockets, FIFOs: skipped as Flux does */
        bool ignored = oci_ignore_match(b->ig, b->rel.ptr, is_dir);
        if (is_dir) {
            if (ignored && b->prune)
                continue;
            if (!ignored && (rc = write_header(b, &st, true, 0, err)) < 0)
                break;
            rc = walk(b, err);
        } else if (!ignored) {
            rc = add_file(b, err);
        }
    }
    truncate_to(&b->abs, abs_len);
    truncate_to(&b->rel, rel_len);
    free_names(names, n);
    return rc;
}

/* Archive path (a directory, or one file as "." plus its basename). */
static int archive_tree(build *b, const char *path, berth_error **err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return core_error_errno(err, errno, "inspecting \"%s\"", path);
    if (berth_buf_puts(&b->abs, path) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    while (b->abs.len > 1 && b->abs.ptr[b->abs.len - 1] == '/')
        truncate_to(&b->abs, b->abs.len - 1);
    if (S_ISDIR(st.st_mode)) {
        int rc = write_header(b, &st, true, 0, err);
        return rc < 0 ? rc : walk(b, err);
    }
    if (!S_ISREG(st.st_mode))
        return core_error_set(err, BERTH_EINVAL, "\"%s\" is neither a regular file nor a directory",
                              path);
    /* Flux copies the file into a fresh 0700 temp directory and archives that. */
    struct stat root = st;
    root.st_mode = S_IFDIR | 0700;
    int rc = write_header(b, &root, true, 0, err);
    if (rc < 0)
        return rc;
    const char *base = strrchr(b->abs.ptr, '/');
    base = base ? base + 1 : b->abs.ptr;
    if (berth_buf_puts(&b->rel, base) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (oci_ignore_match(b->ig, b->rel.ptr, false))
        return 0;
    return add_file(b, err);
}

static int open_archive(build *b, berth_error **err)
{
    b->a = archive_write_new();
    b->e = archive_entry_new();
    if (!b->a || !b->e)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (archive_write_set_format_pax_restricted(b->a) != ARCHIVE_OK ||
        archive_write_add_filter_none(b->a) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(b->a, 0) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(b->a, 1) != ARCHIVE_OK ||
        archive_write_open(b->a, b, NULL, tar_write_cb, NULL) != ARCHIVE_OK)
        return core_error_set(err, BERTH_ERROR, "setting up the tar writer: %s",
                              archive_error_string(b->a));
    return 0;
}

int oci_artifact_build(berth_artifact_layer *out, const char *path, const char *out_file,
                       const berth_artifact_build_opts *opts, bool durable, berth_error **err)
{
    BERTH_ARG_CHECK(out && path && out_file);
    build b;
    memset(&b, 0, sizeof(b));
    b.fd = -1;
    berth_buf_init(&b.abs, 0);
    berth_buf_init(&b.rel, 0);
    berth_buf_init(&b.cap, 1u << 20);
    char *tmp = core_sprintf("%s.tmp-XXXXXX", out_file);
    int level = opts ? opts->level : 1;
    const char *ignore = opts ? opts->ignore_paths : NULL;
    bool thread_started = false;
    pthread_t th;
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    locale_t saved_locale = utf8 ? uselocale(utf8) : (locale_t)0;
    int rc = 0;
    char hex[CORE_SHA256_HEX_LEN + 1];

    memset(out, 0, sizeof(*out));
    if (!tmp || !(b.rbuf = core_malloc(READ_BUF))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = oci_ignore_new(&b.ig, ignore, err)) < 0 ||
        (rc = core_sha256_new(&b.tar_hash, err)) < 0 ||
        (rc = core_sha256_new(&b.gz_hash, err)) < 0 ||
        (rc = oci_gz_writer_new(&b.gz, level, gz_out, &b, err)) < 0 ||
        (rc = oci_blockq_new(&b.q, QUEUE_BLOCKS, QUEUE_BLOCK, err)) < 0)
        goto out;
    b.prune = !oci_ignore_has_negation(b.ig);
    b.fd = mkstemp(tmp);
    if (b.fd < 0) {
        rc = core_error_errno(err, errno, "creating a temporary file for \"%s\"", out_file);
        goto out;
    }
    b.tmp_path = tmp;
    if (pthread_create(&th, NULL, compress_main, &b) != 0) {
        rc = core_error_set(err, BERTH_ERROR, "starting the compression thread");
        goto out;
    }
    thread_started = true;
    if ((rc = open_archive(&b, err)) < 0 || (rc = archive_tree(&b, path, err)) < 0)
        goto out;
    if (archive_write_close(b.a) != ARCHIVE_OK) {
        rc = archive_fail(&b, err, "finishing the tar stream");
        goto out;
    }
    rc = oci_blockq_close(b.q);
out:
    if (thread_started) {
        if (rc < 0)
            oci_blockq_abort(b.q, rc);
        pthread_join(th, NULL);
        if (b.ccode < 0) {
            /* The compressor's failure is the cause of any abort the walker saw. */
            berth_error_free(err ? *err : NULL);
            if (err) {
                *err = b.cerr;
                b.cerr = NULL;
            }
            rc = b.ccode;
        }
    }
    if (rc == 0 && durable && fsync(b.fd) < 0)
        rc = core_error_errno(err, errno, "syncing \"%s\"", tmp);
    if (rc == 0 && fchmod(b.fd, 0640) < 0)
        rc = core_error_errno(err, errno, "setting the mode of \"%s\"", tmp);
    if (b.fd >= 0 && close(b.fd) < 0 && rc == 0)
        rc = core_error_errno(err, errno, "closing \"%s\"", tmp);
    if (rc == 0 && rename(tmp, out_file) < 0)
        rc = core_error_errno(err, errno, "renaming \"%s\" to \"%s\"", tmp, out_file);
    if (rc == 0 && durable) {
        char *dir = core_strdup(out_file);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!dir)
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        else if (slash == dir)
            rc = core_fs_sync_dir("/", err);
        else if (slash)
            *slash = '\0', rc = core_fs_sync_dir(dir, err);
        else
            rc = core_fs_sync_dir(".", err);
        core_free(dir);
    }
    if (rc == 0) {
        core_sha256_final_hex(b.gz_hash, hex);
        snprintf(out->digest, sizeof(out->digest), "sha256:%s", hex);
        core_sha256_final_hex(b.tar_hash, hex);
        snprintf(out->diff_id, sizeof(out->diff_id), "sha256:%s", hex);
        out->size = b.gz_size;
        out->files = b.files;
    } else if (b.fd >= 0) {
        unlink(tmp);
    }
    if (b.a)
        archive_write_free(b.a);
    if (b.e)
        archive_entry_free(b.e);
    berth_error_free(b.werr);
    berth_error_free(b.cerr);
    oci_blockq_free(b.q);
    oci_gz_writer_free(b.gz);
    core_sha256_free(b.gz_hash);
    core_sha256_free(b.tar_hash);
    oci_ignore_free(b.ig);
    berth_buf_dispose(&b.abs);
    berth_buf_dispose(&b.rel);
    berth_buf_dispose(&b.cap);
    core_free(b.rbuf);
    core_free(tmp);
    if (utf8) {
        uselocale(saved_locale);
        freelocale(utf8);
    }
    return rc;
}

int berth_artifact_build(berth_artifact_layer *out, const char *path, const char *out_file,
                         const berth_artifact_build_opts *opts, berth_error **err)
{
    return oci_artifact_build(out, path, out_file, opts, true, err);
}
