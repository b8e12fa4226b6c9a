/*
 * The safe streaming extractor for artifact layers (spec §1.7 pull, §2.8): bytes arrive from
 * the network (or a file), are inflated and unpacked into a staging directory as they come, and
 * nothing in the archive can write outside that directory.
 *
 * Design: a three-stage pipeline, so that on two cores the download, the decompression and the
 * file writes overlap (measured: with inflate and unpack on one thread, that thread was the
 * bottleneck of a pull).
 *   1. berth_extractor_write() (the caller's thread, e.g. the blob download) only copies the
 *      bytes into a bounded queue of 1 MiB blocks and blocks while it is full, so a fast
 *      download never outruns the disk by more than the queue.
 *   2. The inflater thread sniffs the first two bytes (1f 8b: gzip, inflated with ISA-L, several
 *      members allowed; else plain tar), enforces the stream ceiling, and queues the tar bytes.
 *   3. The unpacker thread hashes the tar stream (the diff_id; skipped when nobody asked for it:
 *      pull does not) and feeds libarchive's tar reader through archive_read_open callbacks.
 *      For each entry it
 *   - cleans and checks the name: no absolute path, no "..", no backslash, "./" stripped;
 *   - refuses hard links, devices, FIFOs and sockets, and symlinks whose target is absolute or
 *     climbs out of the root (in-tree symlinks are skipped, as Flux skips all symlinks);
 *   - opens every parent directory with openat(O_NOFOLLOW | O_DIRECTORY) from the root, creating
 *     missing ones, so an existing symlink is never followed, and creates files with
 *     O_CREAT | O_EXCL | O_NOFOLLOW (a duplicate regular file is unlinked and recreated: the last
 *     entry wins, as in tar);
 *   - counts entries and file bytes against max_entries and max_bytes; the inflater counts the
 *     whole tar stream against max_bytes + 64 MiB + 1 KiB per allowed entry, so a tar or gzip
 *     bomb stops early.
 * The first failure aborts both queues; the producer's next write returns the error code and
 * berth_extractor_finish() returns the message (the inflater's when the input was bad, since
 * the unpacker then only saw its input stop), which names the entry. Nothing is fsynced here:
 * the caller commits the staging directory (berth_artifact_commit_dir).
 *
 * The unpacker runs with a thread-local C.UTF-8 LC_CTYPE so libarchive hands UTF-8 PAX names
 * through unchanged instead of failing to convert them to ASCII.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#define QUEUE_BLOCKS 8 /* layer bytes buffered from the caller */
#define TAR_BLOCKS 4   /* tar bytes buffered between inflater and unpacker */
#define QUEUE_BLOCK (1u << 20)
#define OUT_BUF (1u << 20) /* inflated bytes handed to libarchive per read */
#define DEFAULT_MAX_BYTES ((int64_t)1 << 30)
#define DEFAULT_MAX_ENTRIES 100000
#define STREAM_SLACK ((int64_t)64 << 20)

/* The tar byte source shared by the extractor and the lister: blocks in, tar bytes out. */
typedef int (*input_fn)(void *payload, const uint8_t **data, size_t *len); /* 1, 0 eof, <0 */

typedef struct tar_source {
    input_fn input;
    void *payload;
    int mode; /* 0 not yet known, 1 gzip, 2 plain */
    const uint8_t *in;
    size_t in_len;
    bool in_eof;
    oci_gunzip *gz;
    uint8_t *obuf;     /* inflate output for src_produce (the lister); the extractor inflates
                          straight into its tar queue */
    core_sha256 *hash; /* of the tar stream, or NULL */
    int64_t tar_bytes;
    int64_t max_tar_bytes; /* 0: none */
    berth_error *err;
    int code;
} tar_source;

static int src_fail(tar_source *s, int code)
{
    s->code = code;
    return code;
}

static int src_next_input(tar_source *s)
{
    if (s->in_len > 0)
        return 1;
    if (s->in_eof)
        return 0;
    int r = s->input(s->payload, &s->in, &s->in_len);
    if (r == 0) {
        s->in_eof = true;
        s->in_len = 0;
    }
    return r;
}

/* The next piece of the tar stream: 1 with (*buf, *len), 0 at its end, or a negative code.
 * Inflated bytes go into dst (cap bytes); plain input is handed out as it came (*buf is then
 * the input block, valid until the next call). */
static int src_produce_to(tar_source *s, uint8_t *dst, size_t cap, const void **buf, size_t *len)
{
    int r;
    if (s->code < 0)
        return s->code;
    if (s->mode == 0) {
        if ((r = src_next_input(s)) < 0)
            return src_fail(s, r);
        if (r == 0) {
            s->mode = 2;
        } else {
            bool gz = s->in[0] == 0x1f && (s->in_len < 2 || s->in[1] == 0x8b);
            s->mode = gz ? 1 : 2;
            if (gz && (r = oci_gunzip_new(&s->gz, &s->err)) < 0)
                return src_fail(s, r);
        }
    }
    size_t got = 0;
    if (s->mode == 2) {
        if ((r = src_next_input(s)) <= 0)
            return r < 0 ? src_fail(s, r) : 0;
        *buf = s->in;
        got = s->in_len;
        s->in_len = 0; /* the block stays valid until the next input() call */
    } else {
        while (got < cap) {
            if (s->in_len == 0) {
                if (got > 0)
                    break;
                if ((r = src_next_input(s)) < 0)
                    return src_fail(s, r);
                if (r == 0) {
                    if (!oci_gunzip_is_complete(s->gz))
                        return src_fail(
                            s, core_error_set(&s->err, BERTH_EINVAL, "truncated gzip stream"));
                    return 0;
                }
            }
            size_t before = s->in_len, made = 0;
            r = oci_gunzip_run(s->gz, &s->in, &s->in_len, dst + got, cap - got, &made, &s->err);
            got += made;
            if (r < 0)
                return src_fail(s, r);
            if (made == 0 && s->in_len == before)
                return src_fail(
                    s, core_error_set(&s->err, BERTH_EINVAL, "corrupt gzip stream: no progress"));
        }
        *buf = dst;
    }
    if (s->hash)
        core_sha256_update(s->hash, *buf, got);
    s->tar_bytes += (int64_t)got;
    if (s->max_tar_bytes > 0 && s->tar_bytes > s->max_tar_bytes)
        return src_fail(s, core_error_set(&s->err, BERTH_EINVAL,
                                          "archive exceeds %lld bytes of tar stream",
                                          (long long)s->max_tar_bytes));
    *len = got;
    return 1;
}

static int src_produce(tar_source *s, const void **buf, size_t *len)
{
    return src_produce_to(s, s->obuf, OUT_BUF, buf, len);
}

static la_ssize_t src_read_cb(struct archive *a, void *payload, const void **buf)
{
    tar_source *s = payload;
    size_t len = 0;
    int r = src_produce(s, buf, &len);
    if (r < 0) {
        archive_set_error(a, EIO, "layer input failed");
        return -1;
    }
    return r == 0 ? 0 : (la_ssize_t)len;
}

/* Read what follows the end-of-archive marker, so the diff_id covers the whole stream and the
 * gzip trailer is checked. */
static int src_drain(tar_source *s)
{
    const void *buf;
    size_t len;
    int r;
    while ((r = src_produce(s, &buf, &len)) > 0)
        ;
    return r;
}

static void src_dispose(tar_source *s)
{
    oci_gunzip_free(s->gz);
    core_free(s->obuf);
    berth_error_free(s->err);
}

static struct archive *tar_reader_new(void)
{
    struct archive *a = archive_read_new();
    if (!a)
        return NULL;
    if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_filter_none(a) != ARCHIVE_OK) {
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* A libarchive failure: the source's own error when it caused it, else libarchive's text. */
static int reader_fail(tar_source *s, struct archive *a, berth_error **err, const char *what)
{
    if (s->code < 0) {
        if (s->err && err && !*err) {
            *err = s->err;
            s->err = NULL;
        }
        return s->code;
    }
    const char *msg = archive_error_string(a);
    return core_error_set(err, BERTH_EINVAL, "%s: %s", what, msg ? msg : "invalid tar data");
}

char *oci_tar_clean_path(const char *name)
{
    while (name[0] == '.' && name[1] == '/') {
        name += 2;
        while (*name == '/')
            name++;
    }
    if (strcmp(name, ".") == 0)
        name = "";
    size_t n = strlen(name);
    while (n > 0 && name[n - 1] == '/')
        n--;
    if (n == 0 && name[0] == '/')
        n = 1; /* keep "/" visible so the absolute-path check refuses it */
    return core_strndup(name, n);
}

/* Join the components of rel without "" and "." ones; NULL on OOM. rel has passed
 * core_fs_check_relpath, so there is no "..". */
static char *canonical(const char *rel)
{
    size_t n = strlen(rel);
    char *out = core_malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *s = rel; *s;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len > 0 && !(len == 1 && s[0] == '.')) {
            if (o)
                out[o++] = '/';
            memcpy(out + o, s, len);
            o += len;
        }
        s += len;
        if (*s == '/')
            s++;
    }
    out[o] = '\0';
    return out;
}

/* ---------------------------------------------------------------- the extractor */
struct berth_extractor {
    char *dir;
    int root_fd;
    int64_t max_bytes, max_entries;
    oci_blockq *qin;  /* caller -> inflater: the layer bytes as written */
    oci_blockq *qtar; /* inflater -> unpacker: the tar stream */
    pthread_t inflater, unpacker;
    bool inflater_started, unpacker_started, joined, finished;
    /* inflater thread */
    tar_source src;
    berth_error *ierr; /* the inflater's own failure (bad gzip, stream too long) */
    int icode;
    char diff_id[72];
    /* unpacker thread */
    core_sha256 *tar_hash; /* the diff_id, when wanted; hashed here to offload the inflater */
    struct archive *a;
    int64_t file_bytes, entries;
    char *cache_rel; /* parent directory whose fd is cached */
    int cache_fd;
    int tar_code;      /* why qtar stopped, when it was aborted */
    berth_error *werr; /* the unpacker's failure */
    int wcode;
};

static int queue_input(void *payload, const uint8_t **data, size_t *len)
{
    berth_extractor *x = payload;
    return oci_blockq_get(x->qin, data, len);
}

/* Stop both queues: the caller's next write and both threads see code. */
static void abort_all(berth_extractor *x, int code)
{
    oci_blockq_abort(x->qtar, code);
    oci_blockq_abort(x->qin, code);
}

/* The inflater: layer bytes in, tar bytes (counted against the stream ceiling) out. */
static void *inflate_main(void *payload)
{
    berth_extractor *x = payload;
    const void *buf;
    uint8_t *dst;
    size_t len, cap;
    int r;
    for (;;) {
        /* Inflate straight into the next block of the tar queue (no copy). */
        if (oci_blockq_reserve(x->qtar, &dst, &cap) < 0)
            return NULL; /* the unpacker failed and stopped everything */
        if ((r = src_produce_to(&x->src, dst, cap, &buf, &len)) <= 0)
            break;
        if (buf == dst)
            oci_blockq_advance(x->qtar, len);
        else if (oci_blockq_put(x->qtar, buf, len) < 0) /* plain tar: copy the input block */
            return NULL;
    }
    if (r < 0) {
        if (x->src.err) {
            x->ierr = x->src.err;
            x->src.err = NULL;
            x->icode = r;
            abort_all(x, r);
        }
        /* else qin was aborted by the unpacker or by free(): not our failure */
        return NULL;
    }
    oci_blockq_close(x->qtar);
    return NULL;
}

static la_ssize_t tar_read_cb(struct archive *a, void *payload, const void **buf)
{
    berth_extractor *x = payload;
    const uint8_t *d;
    size_t len;
    int r = oci_blockq_get(x->qtar, &d, &len);
    if (r < 0) {
        x->tar_code = r;
        archive_set_error(a, EIO, "layer input stopped");
        return -1;
    }
    if (r == 0)
        return 0;
    if (x->tar_hash)
        core_sha256_update(x->tar_hash, d, len);
    *buf = d;
    return (la_ssize_t)len;
}

/* A libarchive failure in the unpacker. When the input stopped, the inflater (or whoever
 * aborted) owns the explanation and finish() reports that instead. */
static int unpack_fail(berth_extractor *x, const char *what)
{
    if (x->tar_code < 0)
        return x->tar_code;
    const char *msg = archive_error_string(x->a);
    return core_error_set(&x->werr, BERTH_EINVAL, "%s: %s", what, msg ? msg : "invalid tar data");
}

static int entry_error(berth_extractor *x, const char *name, const char *what)
{
    return core_error_set(&x->werr, BERTH_EINVAL, "entry \"%s\": %s", name, what);
}

static void drop_cache(berth_extractor *x)
{
    if (x->cache_fd >= 0 && x->cache_fd != x->root_fd)
        close(x->cache_fd);
    x->cache_fd = -1;
    core_free(x->cache_rel);
    x->cache_rel = NULL;
}

/* An fd for the parent directory of name (canonical), creating missing directories (0755)
 * and never following a symlink. *leaf_out points into name. The fd is cached: do not close. */
static int open_parent(berth_extractor *x, const char *name, int *fd_out, const char **leaf_out)
{
    const char *slash = strrchr(name, '/');
    *leaf_out = slash ? slash + 1 : name;
    if (!slash) {
        *fd_out = x->root_fd;
        return 0;
    }
    size_t plen = (size_t)(slash - name);
    if (x->cache_rel && strlen(x->cache_rel) == plen && memcmp(x->cache_rel, name, plen) == 0) {
        *fd_out = x->cache_fd;
        return 0;
    }
    drop_cache(x);
    char *parent = core_strndup(name, plen);
    if (!parent)
        return core_error_set(&x->werr, BERTH_ENOMEM, "out of memory");
    int fd = x->root_fd, rc = 0;
    for (char *s = parent; *s;) {
        char *e = strchr(s, '/');
        if (e)
            *e = '\0';
        int next = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0 && errno == ENOENT) {
            if (mkdirat(fd, s, 0755) < 0 && errno != EEXIST) {
                rc = core_error_errno(&x->werr, errno, "entry \"%s\": creating directory \"%s\"",
                                      name, s);
            } else {
                next = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            }
        }
        if (rc == 0 && next < 0) {
            if (errno == ENOTDIR || errno == ELOOP)
                rc = core_error_set(&x->werr, BERTH_EINVAL,
                                    "entry \"%s\": \"%s\" is not a directory", name, s);
            else
                rc = core_error_errno(&x->werr, errno, "entry \"%s\": opening \"%s\"", name, s);
        }
        if (fd != x->root_fd)
            close(fd);
        if (rc < 0)
            break;
        fd = next;
        if (!e)
            break;
        *e = '/';
        s = e + 1;
    }
    if (rc < 0) {
        core_free(parent);
        return rc;
    }
    x->cache_rel = parent;
    x->cache_fd = fd;
    *fd_out = fd;
    return 0;
}

static int make_dir(berth_extractor *x, const char *name, mode_t mode)
{
    int pfd;
    const char *leaf;
    int rc = open_parent(x, name, &pfd, &leaf);
    if (rc < 0)
        return rc;
    if (mkdirat(pfd, leaf, (mode & 0777) | 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return core_error_errno(&x->werr, errno, "entry \"%s\": creating directory", name);
    struct stat st;
    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
        return entry_error(x, name, "exists and is not a directory");
    return 0;
}

static int bytes_exceeded(berth_extractor *x, const char *name)
{
    return core_error_set(&x->werr, BERTH_EINVAL,
                          "archive exceeds the limit of %lld bytes at entry \"%s\"",
                          (long long)x->max_bytes, name);
}

static int make_file(berth_extractor *x, struct archive_entry *e, const char *name, mode_t mode)
{
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (size < 0 || size > x->max_bytes - x->file_bytes)
        return bytes_exceeded(x, name);
    int pfd;
    const char *leaf;
    int rc = open_parent(x, name, &pfd, &leaf);
    if (rc < 0)
        return rc;
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(pfd, leaf, flags, mode & 0777);
    if (fd < 0 && errno == EEXIST) {
        struct stat st;
        if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            unlinkat(pfd, leaf, 0) == 0)
            fd = openat(pfd, leaf, flags, mode & 0777);
        else
            return entry_error(x, name, "exists and is not a regular file");
    }
    if (fd < 0)
        return core_error_errno(&x->werr, errno, "entry \"%s\": creating file", name);
    int64_t pos = 0;
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(x->a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = unpack_fail(x, "reading the layer");
            if (x->werr)
                core_error_wrap(&x->werr, "entry \"%s\"", name);
            goto out;
        }
        if (off < pos) {
            rc = entry_error(x, name, "overlapping data blocks");
            goto out;
        }
        if ((int64_t)len > size - off) {
            rc = bytes_exceeded(x, name);
            goto out;
        }
        if (off > pos && lseek(fd, (off_t)off, SEEK_SET) < 0) {
            rc = core_error_errno(&x->werr, errno, "entry \"%s\": seeking", name);
            goto out;
        }
        if (core_fs_write_all(fd, buf, len) < 0) {
            rc = core_error_errno(&x->werr, errno, "entry \"%s\": writing", name);
            goto out;
        }
        pos = off + (int64_t)len;
    }
    if (pos < size && ftruncate(fd, (off_t)size) < 0) {
        rc = core_error_errno(&x->werr, errno, "entry \"%s\": extending", name);
        goto out;
    }
    x->file_bytes += size;
out:
    if (close(fd) < 0 && rc == 0)
        rc = core_error_errno(&x->werr, errno, "entry \"%s\": closing", name);
    return rc;
}

/* True when a symlink at name pointing at target leaves the root (lexically). */
static bool symlink_escapes(const char *name, const char *target)
{
    if (target[0] == '/')
        return true;
    long depth = 0;
    for (const char *s = name; *s; s++)
        depth += *s == '/';
    for (const char *s = target; *s;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.') {
            if (--depth < 0)
                return true;
        } else if (len > 0 && !(len == 1 && s[0] == '.')) {
            depth++;
        }
        s += len;
        if (*s == '/')
            s++;
    }
    return false;
}

static const char *type_name(mode_t type)
{
    switch (type) {
    case AE_IFCHR:
        return "character device";
    case AE_IFBLK:
        return "block device";
    case AE_IFIFO:
        return "fifo";
    case AE_IFSOCK:
        return "socket";
    default:
        return "entry of unknown type";
    }
}

static int handle_entry(berth_extractor *x, struct archive_entry *e)
{
    const char *raw = archive_entry_pathname(e);
    if (!raw)
        return core_error_set(&x->werr, BERTH_EINVAL, "an entry has no readable name");
    char *clean = oci_tar_clean_path(raw);
    char *name = NULL;
    int rc = 0;
    if (!clean) {
        rc = core_error_set(&x->werr, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    mode_t type = archive_entry_filetype(e);
    if (clean[0] == '\0') {
        if (type != AE_IFDIR || archive_entry_hardlink(e))
            rc = core_error_set(&x->werr, BERTH_EINVAL,
                                "entry \"%s\": the archive root must be a directory", raw);
        goto out;
    }
    if ((rc = core_fs_check_relpath(clean, &x->werr)) < 0) {
        core_error_wrap(&x->werr, "entry \"%s\"", raw);
        goto out;
    }
    if (!(name = canonical(clean))) {
        rc = core_error_set(&x->werr, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (name[0] == '\0')
        goto out; /* "a/.." was refused above; this is "./." */
    if (archive_entry_hardlink(e)) {
        rc = core_error_set(&x->werr, BERTH_EINVAL,
                            "entry \"%s\": hard links are not allowed (target \"%s\")", name,
                            archive_entry_hardlink(e));
        goto out;
    }
    switch (type) {
    case AE_IFDIR:
        rc = make_dir(x, name, archive_entry_perm(e));
        break;
    case AE_IFREG:
        rc = make_file(x, e, name, archive_entry_perm(e));
        break;
    case AE_IFLNK: {
        const char *target = archive_entry_symlink(e);
        if (!target || !*target)
            rc = entry_error(x, name, "symlink without a target");
        else if (symlink_escapes(name, target))
            rc = core_error_set(&x->werr, BERTH_EINVAL,
                                "entry \"%s\": symlink target \"%s\" points outside the archive "
                                "root",
                                name, target);
        /* else: an in-tree symlink, skipped as Flux does */
        break;
    }
    default:
        rc = core_error_set(&x->werr, BERTH_EINVAL, "entry \"%s\": %s is not allowed", name,
                            type_name(type));
        break;
    }
out:
    core_free(name);
    core_free(clean);
    return rc;
}

static int extract_run(berth_extractor *x)
{
    int rc = 0;
    x->a = tar_reader_new();
    if (!x->a)
        return core_error_set(&x->werr, BERTH_ENOMEM, "out of memory");
    if (archive_read_open(x->a, x, NULL, tar_read_cb, NULL) != ARCHIVE_OK)
        return unpack_fail(x, "reading the layer");
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(x->a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = unpack_fail(x, "reading the layer");
            break;
        }
        if (++x->entries > x->max_entries) {
            rc = core_error_set(&x->werr, BERTH_EINVAL, "archive exceeds the limit of %lld entries",
                                (long long)x->max_entries);
            break;
        }
        if ((rc = handle_entry(x, e)) < 0)
            break;
    }
    /* Consume what follows the end-of-archive marker so the inflater can finish. */
    const uint8_t *d;
    size_t len;
    int r;
    while (rc == 0 && (r = oci_blockq_get(x->qtar, &d, &len)) != 0) {
        if (r < 0)
            rc = x->tar_code = r;
        else if (x->tar_hash)
            core_sha256_update(x->tar_hash, d, len);
    }
    if (rc == 0 && x->tar_hash) {
        char hex[CORE_SHA256_HEX_LEN + 1];
        core_sha256_final_hex(x->tar_hash, hex);
        snprintf(x->diff_id, sizeof(x->diff_id), "sha256:%s", hex);
    }
    return rc;
}

static void *extract_main(void *payload)
{
    berth_extractor *x = payload;
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (utf8)
        uselocale(utf8);
    int rc = extract_run(x);
    if (x->a) {
        archive_read_free(x->a);
        x->a = NULL;
    }
    if (rc < 0)
        abort_all(x, rc);
    x->wcode = rc;
    drop_cache(x);
    if (utf8) {
        uselocale(LC_GLOBAL_LOCALE);
        freelocale(utf8);
    }
    return NULL;
}

int berth_extractor_new(berth_extractor **out, const char *dir, const berth_extract_opts *opts,
                        berth_error **err)
{
    return oci_extractor_new(out, dir, opts, true, err);
}

int oci_extractor_new(berth_extractor **out, const char *dir, const berth_extract_opts *opts,
                      bool want_diff_id, berth_error **err)
{
    BERTH_ARG_CHECK(out && dir);
    *out = NULL;
    berth_extractor *x = core_calloc(1, sizeof(*x));
    int rc = 0;
    if (!x)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    x->root_fd = -1;
    x->cache_fd = -1;
    x->max_bytes = opts && opts->max_bytes > 0 ? opts->max_bytes : DEFAULT_MAX_BYTES;
    x->max_entries = opts && opts->max_entries > 0 ? opts->max_entries : DEFAULT_MAX_ENTRIES;
    x->src.input = queue_input;
    x->src.payload = x;
    x->src.max_tar_bytes = x->max_bytes + STREAM_SLACK + x->max_entries * 1024;
    if (!(x->dir = core_strdup(dir))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((want_diff_id && (rc = core_sha256_new(&x->tar_hash, err)) < 0) ||
        (rc = oci_blockq_new(&x->qin, QUEUE_BLOCKS, QUEUE_BLOCK, err)) < 0 ||
        (rc = oci_blockq_new(&x->qtar, TAR_BLOCKS, QUEUE_BLOCK, err)) < 0)
        goto out;
    x->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (x->root_fd < 0) {
        rc = core_error_errno(err, errno, "opening directory \"%s\"", dir);
        goto out;
    }
    if (pthread_create(&x->unpacker, NULL, extract_main, x) != 0) {
        rc = core_error_set(err, BERTH_ERROR, "starting the extraction thread");
        goto out;
    }
    x->unpacker_started = true;
    if (pthread_create(&x->inflater, NULL, inflate_main, x) != 0) {
        rc = core_error_set(err, BERTH_ERROR, "starting the decompression thread");
        goto out;
    }
    x->inflater_started = true;
out:
    if (rc < 0) {
        berth_extractor_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

int berth_extractor_write(berth_extractor *x, const void *data, size_t len)
{
    BERTH_ARG_CHECK(x && (data || len == 0));
    if (x->finished)
        return BERTH_EINVAL;
    return oci_blockq_put(x->qin, data, len);
}

static void join_workers(berth_extractor *x)
{
    if (x->joined)
        return;
    if (x->inflater_started)
        pthread_join(x->inflater, NULL);
    if (x->unpacker_started)
        pthread_join(x->unpacker, NULL);
    x->joined = true;
}

int berth_extractor_finish(berth_extractor *x, char *diff_id_out, berth_error **err)
{
    BERTH_ARG_CHECK(x);
    if (x->finished)
        return core_error_set(err, BERTH_EINVAL, "extractor already finished");
    x->finished = true;
    oci_blockq_close(x->qin);
    join_workers(x);
    /* The inflater's failure explains the unpacker's (its input stopped), not the reverse. */
    int code = x->icode < 0 ? x->icode : x->wcode;
    berth_error **which = x->icode < 0 ? &x->ierr : &x->werr;
    if (code < 0) {
        if (!*which)
            core_error_set(which, code, "extraction stopped");
        if (err && !*err) {
            *err = *which;
            *which = NULL;
        }
        return code;
    }
    if (diff_id_out)
        memcpy(diff_id_out, x->diff_id, sizeof(x->diff_id));
    return 0;
}

void berth_extractor_free(berth_extractor *x)
{
    if (!x)
        return;
    if (!x->joined && (x->inflater_started || x->unpacker_started)) {
        abort_all(x, BERTH_ERROR);
        join_workers(x);
    }
    if (x->root_fd >= 0)
        close(x->root_fd);
    drop_cache(x);
    core_sha256_free(x->tar_hash);
    src_dispose(&x->src);
    oci_blockq_free(x->qin);
    oci_blockq_free(x->qtar);
    berth_error_free(x->ierr);
    berth_error_free(x->werr);
    core_free(x->dir);
    core_free(x);
}

/* ---------------------------------------------------------------- file helpers */
typedef struct file_input {
    int fd;
    const char *path;
    uint8_t *buf;
    berth_error *err;
} file_input;

static int file_read(void *payload, const uint8_t **data, size_t *len)
{
    file_input *f = payload;
    for (;;) {
        ssize_t n = read(f->fd, f->buf, QUEUE_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return core_error_errno(&f->err, errno, "reading \"%s\"", f->path);
        *data = f->buf;
        *len = (size_t)n;
        return n > 0 ? 1 : 0;
    }
}

int berth_artifact_extract_file(const char *tgz, const char *dir, const berth_extract_opts *opts,
                                berth_error **err)
{
    BERTH_ARG_CHECK(tgz && dir);
    berth_extractor *x = NULL;
    file_input f = {-1, tgz, NULL, NULL};
    int rc = 0;
    if (!(f.buf = core_malloc(QUEUE_BLOCK))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    f.fd = open(tgz, O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) {
        rc = core_error_errno(err, errno, "opening \"%s\"", tgz);
        goto out;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    (void)posix_fadvise(f.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    if ((rc = oci_extractor_new(&x, dir, opts, false, err)) < 0)
        goto out;
    for (;;) {
        const uint8_t *data = NULL;
        size_t len = 0;
        int r = file_read(&f, &data, &len);
        if (r < 0) {
            rc = r;
            /* The read error is the cause; the extractor only saw its input stop. */
            if (err && !*err) {
                *err = f.err;
                f.err = NULL;
            }
            goto out;
        }
        if (r == 0)
            break;
        if (berth_extractor_write(x, data, len) < 0)
            break; /* the worker failed: finish() reports why */
    }
    rc = berth_extractor_finish(x, NULL, err);
    if (rc < 0)
        core_error_wrap(err, "extracting \"%s\"", tgz);
out:
    berth_extractor_free(x);
    if (f.fd >= 0)
        close(f.fd);
    berth_error_free(f.err);
    core_free(f.buf);
    return rc;
}

/* ---------------------------------------------------------------- listing (diff) */
static int cmp_items(const void *a, const void *b)
{
    const oci_tar_item *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    return c ? c : (x->seq < y->seq ? -1 : x->seq > y->seq);
}

void oci_tar_items_free(oci_tar_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        core_free(items[i].path);
    core_free(items);
}

static int list_entry(oci_tar_item *it, struct archive *a, struct archive_entry *e, tar_source *s,
                      berth_error **err)
{
    core_sha256 *h = NULL;
    mode_t type = archive_entry_filetype(e);
    it->type = archive_entry_hardlink(e) ? 'o'
               : type == AE_IFREG        ? 'f'
               : type == AE_IFDIR        ? 'd'
               : type == AE_IFLNK        ? 'l'
                                         : 'o';
    it->mode = archive_entry_perm(e) & 07777;
    it->size = archive_entry_size(e);
    it->sha256[0] = '\0';
    if (it->type != 'f')
        return 0;
    int rc = core_sha256_new(&h, err);
    if (rc < 0)
        return rc;
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t off;
        int r = archive_read_data_block(a, &buf, &len, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = reader_fail(s, a, err, "reading the layer");
            break;
        }
        core_sha256_update(h, buf, len);
    }
    if (rc == 0)
        core_sha256_final_hex(h, it->sha256);
    core_sha256_free(h);
    return rc;
}

int oci_tar_list_file(oci_tar_item **items_out, size_t *n_out, const char *file, berth_error **err)
{
    BERTH_ARG_CHECK(items_out && n_out && file);
    *items_out = NULL;
    *n_out = 0;
    file_input f = {-1, file, NULL, NULL};
    tar_source s;
    memset(&s, 0, sizeof(s));
    s.input = file_read;
    s.payload = &f;
    s.max_tar_bytes = DEFAULT_MAX_BYTES + STREAM_SLACK + DEFAULT_MAX_ENTRIES * 1024;
    struct archive *a = NULL;
    oci_tar_item *items = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    locale_t saved = utf8 ? uselocale(utf8) : (locale_t)0;

    if (!(f.buf = core_malloc(QUEUE_BLOCK)) || !(s.obuf = core_malloc(OUT_BUF)) ||
        !(a = tar_reader_new())) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    f.fd = open(file, O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) {
        rc = core_error_errno(err, errno, "opening \"%s\"", file);
        goto out;
    }
    if (archive_read_open(a, &s, NULL, src_read_cb, NULL) != ARCHIVE_OK) {
        rc = reader_fail(&s, a, err, "reading the layer");
        goto out;
    }
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = reader_fail(&s, a, err, "reading the layer");
            goto out;
        }
        const char *raw = archive_entry_pathname(e);
        char *path = raw ? oci_tar_clean_path(raw) : NULL;
        char *canon = path ? canonical(path) : NULL;
        core_free(path);
        if (!canon) {
            rc = core_error_set(err, raw ? BERTH_ENOMEM : BERTH_EINVAL,
                                raw ? "out of memory" : "an entry has no readable name");
            goto out;
        }
        if (canon[0] == '\0') {
            core_free(canon);
            continue;
        }
        if (n >= DEFAULT_MAX_ENTRIES) {
            core_free(canon);
            rc = core_error_set(err, BERTH_EINVAL, "archive exceeds the limit of %d entries",
                                DEFAULT_MAX_ENTRIES);
            goto out;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            oci_tar_item *ni = core_realloc(items, ncap * sizeof(*items));
            if (!ni) {
                core_free(canon);
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                goto out;
            }
            items = ni;
            cap = ncap;
        }
        items[n].path = canon;
        items[n].seq = n;
        n++;
        if ((rc = list_entry(&items[n - 1], a, e, &s, err)) < 0)
            goto out;
    }
    if ((rc = src_drain(&s)) < 0) {
        rc = reader_fail(&s, a, err, "reading the layer");
        goto out;
    }
    if (f.err) {
        rc = BERTH_EIO;
        goto out;
    }
    /* Sort by path then position; of duplicates keep the last (a later entry replaces). */
    if (n > 1)
        qsort(items, n, sizeof(*items), cmp_items);
    {
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            if (w > 0 && strcmp(items[w - 1].path, items[i].path) == 0) {
                core_free(items[w - 1].path);
                items[w - 1] = items[i];
                continue;
            }
            items[w++] = items[i];
        }
        n = w;
    }
    *items_out = items;
    *n_out = n;
    items = NULL;
    n = 0;
out:
    if (rc < 0 && f.err && err && !*err) {
        *err = f.err;
        f.err = NULL;
    }
    oci_tar_items_free(items, n);
    if (a)
        archive_read_free(a);
    if (f.fd >= 0)
        close(f.fd);
    berth_error_free(f.err);
    core_free(f.buf);
    src_dispose(&s);
    if (utf8) {
        uselocale(saved);
        freelocale(utf8);
    }
    return rc;
}
