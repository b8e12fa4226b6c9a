/* Common definitions shared by every public berth header. */
#ifndef BERTH_COMMON_H
#define BERTH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_EXTERN __attribute__((visibility("default")))
#define BERTH_MUST_CHECK __attribute__((warn_unused_result))
#define BERTH_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))

#define BERTH_VERSION "0.1.0"

/** Milliseconds on the monotonic clock: timeouts, intervals, backoff. */
typedef int64_t berth_mono_ms;
/** Milliseconds since the Unix epoch: status timestamps, expiry. */
typedef int64_t berth_unix_ms;

/** Result codes: 0 or negative. See docs/errors.md. */
typedef enum {
    BERTH_OK = 0,
    BERTH_ERROR = -1,         /* generic: read the message */
    BERTH_ENOMEM = -2,        /* out of memory */
    BERTH_EINVAL = -3,        /* bad argument or malformed input */
    BERTH_ENOTFOUND = -4,     /* reference, blob, file or key not found */
    BERTH_EAUTH = -5,         /* 401: credentials missing or rejected */
    BERTH_EDENIED = -6,       /* 403: access denied */
    BERTH_EVERIFY = -7,       /* digest or signature mismatch */
    BERTH_ETIMEOUT = -8,      /* operation timed out */
    BERTH_ENET = -9,          /* refused, reset, 429/5xx: transient, retried */
    BERTH_ECONFLICT = -10,    /* conflicting state */
    BERTH_EIO = -11,          /* local file system error */
    BERTH_EUNSUPPORTED = -12, /* the server or format does not support this */
    BERTH_ECANCELED = -13,    /* the caller cancelled the operation (a stop) */
} berth_code;

/** Library version string, "0.1.0". Thread-safe. */
BERTH_EXTERN const char *berth_version(void);

/**
 * Initialise global state (libcurl, libsodium). Call once before any thread starts.
 * Returns 0 or BERTH_ERROR.
 */
BERTH_EXTERN int berth_init(void);

#ifdef __cplusplus
}
#endif
#endif
