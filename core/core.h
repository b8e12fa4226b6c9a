/* core: helpers shared by every module of libberth (not public). Prefix core_. */
#ifndef BERTH_CORE_CORE_H
#define BERTH_CORE_CORE_H

#include <stdarg.h>
#include <stdio.h>
#include <sys/types.h>

#include <berth/buf.h>
#include <berth/common.h>
#include <berth/error.h>

/* ---- argument checks and "impossible" branches (style.md 2.3) ---- */
#ifdef NDEBUG
#define BERTH_ARG_CHECK(x)                                                                         \
    do {                                                                                           \
        if (!(x))                                                                                  \
            return BERTH_EINVAL;                                                                   \
    } while (0)
#define BERTH_ALWAYS(x) (x)
#define BERTH_NEVER(x) (x)
#else
#include <assert.h>
#define BERTH_ARG_CHECK(x)                                                                         \
    do {                                                                                           \
        assert(x);                                                                                 \
        if (!(x))                                                                                  \
            return BERTH_EINVAL;                                                                   \
    } while (0)
#define BERTH_ALWAYS(x) ((x) ? 1 : (assert(0), 0))
#define BERTH_NEVER(x) ((x) ? (assert(0), 1) : 0)
#endif

/* ---- errors ---- */
/**
 * Set *err to a new error with code and message and return code. err may be NULL (the code is
 * still returned). If *err already holds an error, the new one becomes its head (the old one its
 * cause).
 */
int core_error_set(berth_error **err, int code, const char *fmt, ...) BERTH_PRINTF(3, 4);
/** Like core_error_set but with the errno text appended: "msg: No such file or directory".
 * The code is BERTH_ENOTFOUND for ENOENT, BERTH_EDENIED for EACCES/EPERM, BERTH_EIO otherwise. */
int core_error_errno(berth_error **err, int errnum, const char *fmt, ...) BERTH_PRINTF(3, 4);
/**
 * Add a context link on top of *err and return the cause's code (BERTH_ERROR if *err is NULL).
 */
int core_error_wrap(berth_error **err, const char *fmt, ...) BERTH_PRINTF(2, 3);

/* ---- allocation (one family, style.md 2.5) ---- */
void *core_malloc(size_t n);
void *core_calloc(size_t n, size_t size);
void *core_realloc(void *p, size_t n);
char *core_strdup(const char *s);
char *core_strndup(const char *s, size_t n);
void core_free(void *p);
/** *out = a + b; returns false on overflow. */
bool core_size_add(size_t *out, size_t a, size_t b);
/** A formatted heap string (free with core_free), NULL on OOM. */
char *core_sprintf(const char *fmt, ...) BERTH_PRINTF(1, 2);

/* ---- strings ---- */
bool core_str_has_prefix(const char *s, const char *prefix);
bool core_str_has_suffix(const char *s, const char *suffix);
/** Case-insensitive ASCII compare of at most n bytes, 0 when equal. */
int core_strncasecmp(const char *a, const char *b, size_t n);

/* ---- digests ---- */
#define CORE_SHA256_HEX_LEN 64
/** Streaming sha256 (OpenSSL EVP). */
typedef struct core_sha256 core_sha256;
int core_sha256_new(core_sha256 **out, berth_error **err);
int core_sha256_update(core_sha256 *h, const void *data, size_t len);
/** Write 64 lowercase hex digits plus NUL into hex. The hasher can not be updated after this. */
int core_sha256_final_hex(core_sha256 *h, char hex[CORE_SHA256_HEX_LEN + 1]);
void core_sha256_free(core_sha256 *h);
/** One-shot: "sha256:<hex>" of data into out (at least 72 bytes). */
void core_sha256_digest(char out[72], const void *data, size_t len);

/* ---- files (core/fs.c): atomic writes and safe paths (style.md 2.6) ---- */
/** Write data to path atomically: temp file in the same directory, fsync, rename, fsync dir. */
int core_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         berth_error **err);
/**
 * The same, streamed: open a temp file beside path, write to it in pieces, then commit (fsync,
 * rename, fsync the directory) or abort (unlink). A commit or abort ends the writer; an abort
 * after a commit, an abort or a failed open does nothing.
 */
typedef struct core_fs_atomic {
    int fd;      /* the temp file, -1 when closed */
    char *tmp;   /* its path, NULL once renamed or removed */
    char *path;  /* the final path */
    mode_t mode; /* given to the file before the rename */
} core_fs_atomic;
int core_fs_atomic_open(core_fs_atomic *a, const char *path, mode_t mode, berth_error **err);
int core_fs_atomic_write(core_fs_atomic *a, const void *data, size_t len, berth_error **err);
int core_fs_atomic_commit(core_fs_atomic *a, berth_error **err);
void core_fs_atomic_abort(core_fs_atomic *a);
/** write() all of data, retrying on EINTR and short writes. Returns 0, or -1 with errno set. */
int core_fs_write_all(int fd, const void *data, size_t len);
/** Read a whole file, refusing files larger than max_bytes. */
int core_fs_read_file(berth_buf *out, const char *path, size_t max_bytes, berth_error **err);
/** mkdir -p with mode for created directories. */
int core_fs_mkdirs(const char *path, mode_t mode, berth_error **err);
/** rm -rf; a missing path is not an error. Does not follow symlinks. */
int core_fs_remove_all(const char *path, berth_error **err);
/** True for the temp-file names core_fs_write_atomic uses (".NAME.tmp-XXXXXX"). */
bool core_fs_is_temp_name(const char *name);
/** Remove temp files left by an interrupted core_fs_write_atomic in dir and up to depth levels
 * of subdirectories (links are not followed). A missing dir is not an error. */
int core_fs_sweep_temps(const char *dir, int depth, berth_error **err);
/** fsync a directory. */
int core_fs_sync_dir(const char *path, berth_error **err);
/** Create a fresh directory "<parent>/<prefix>XXXXXX" (mode 0700); *out is heap (core_free). */
int core_fs_mkdtemp(char **out, const char *parent, const char *prefix, berth_error **err);
/**
 * Check a relative path taken from an archive or source: refuses empty paths, absolute paths,
 * backslashes, NUL and any ".." component. Returns 0 or BERTH_EINVAL with a message naming it.
 */
int core_fs_check_relpath(const char *rel, berth_error **err);
/** Join base and a checked relative path; *out is heap (core_free). */
int core_fs_join(char **out, const char *base, const char *rel, berth_error **err);
bool core_fs_is_dir(const char *path);
bool core_fs_exists(const char *path);

/* ---- base64 ---- */
/** Standard base64 with padding; returns a heap string (core_free) or NULL on OOM. */
char *core_base64_encode(const void *data, size_t len);
/** Decode standard (or URL-safe when url is true) base64, padding optional. */
int core_base64_decode(berth_buf *out, const char *text, size_t len, bool url, berth_error **err);

/* ---- time ---- */
berth_mono_ms core_mono_now(void);
berth_unix_ms core_wall_now(void);
/** RFC 3339 UTC, second precision: "2025-01-02T03:04:05Z" (21 bytes with NUL). */
void core_time_rfc3339(char out[32], int64_t unix_seconds);
/** Parse RFC 3339 ("Z" or offsets, optional fraction) into Unix seconds. */
int core_time_parse_rfc3339(int64_t *out, const char *text);
void core_sleep_ms(int64_t ms);

#endif
