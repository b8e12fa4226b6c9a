/* Errors: one type, a message per link, a cause chain (style.md 2.4). */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

#include "buf.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque error: a code, a message of at most 255 bytes, and an optional cause. */
typedef struct berth_error berth_error;

/** The code of this link (a wrap keeps its cause's code). NULL gives BERTH_OK. */
BERTH_EXTERN int berth_error_code(const berth_error *e);
/** The message of this link only; borrowed until the error is freed. */
BERTH_EXTERN const char *berth_error_message(const berth_error *e);
/** The next link of the chain, or NULL; borrowed. */
BERTH_EXTERN const berth_error *berth_error_cause(const berth_error *e);
/** Append the whole chain, "a: b: c", to out. Returns 0 or BERTH_ENOMEM. */
BERTH_EXTERN int berth_error_render(const berth_error *e, berth_buf *out);
/** The chain as a static-per-call heap string; caller frees with free(). NULL on OOM. */
BERTH_EXTERN char *berth_error_text(const berth_error *e);
/** True when a retry may succeed (network errors, 429, 5xx, timeouts). */
BERTH_EXTERN bool berth_error_is_transient(const berth_error *e);
/** The name of a code, "EAUTH". */
BERTH_EXTERN const char *berth_code_name(int code);
/** Free a whole chain. Accepts NULL. */
BERTH_EXTERN void berth_error_free(berth_error *e);

#ifdef __cplusplus
}
#endif
#endif
