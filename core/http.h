/*
 * core/http: HTTP transfers over one curl multi handle (the only place that includes curl).
 *
 * Design: a core_http owns one CURLM and a CURLSH (shared DNS cache and TLS sessions, connection
 * pool inside the multi handle). core_http_run() drives N transfers concurrently until all have
 * finished; each transfer reports its own result, so one failed blob does not hide the others.
 * Response bodies go either to a bounded in-memory buffer or to a caller sink (streaming, used for
 * blobs so they can be hashed and written as they arrive). Request bodies come from memory or from
 * a source callback (streaming uploads). Retries and auth are NOT done here: the OCI client owns
 * them, because only it knows which requests are idempotent and which scope a 401 needs.
 *
 * The transport behind core_http is a vtable so tests can replay canned exchanges.
 * Threading: a core_http is used by one thread at a time.
 */
#ifndef BERTH_CORE_HTTP_H
#define BERTH_CORE_HTTP_H

#include <stdatomic.h>
#include <sys/types.h>

#include "core.h"

typedef struct core_http core_http;

typedef struct core_http_opts {
    unsigned int version;
    const char *user_agent;  /* NULL: "berth/<version>" */
    const char *ca_file;     /* extra CA bundle (PEM) or NULL for the system store */
    const char *cert_file;   /* client certificate (PEM) for mTLS, or NULL */
    const char *key_file;    /* its key (PEM), or NULL */
    bool tls_skip_verify;    /* never verify the server (only when the user asks) */
    long connect_timeout_ms; /* 0: 30 s */
    long low_speed_time_s;   /* abort when below 1 byte/s for this long; 0: 60 s */
    bool verbose;            /* trace requests to stderr (Authorization redacted) */
    /* in-memory PEM (NUL-terminated) instead of files, or NULL (kubeconfig *-data fields) */
    const char *ca_pem;   /* extra CA bundle; the system store stays trusted */
    const char *cert_pem; /* client certificate */
    const char *key_pem;  /* its key */
} core_http_opts;
#define CORE_HTTP_OPTS_VERSION 1
#define CORE_HTTP_OPTS_INIT                                                                        \
    {                                                                                              \
        CORE_HTTP_OPTS_VERSION, NULL, NULL, NULL, NULL, false, 0, 0, false, NULL, NULL, NULL       \
    }

/**
 * Stream sink for a response body. Called only for 2xx responses (other bodies are kept in
 * resp->body for error messages). Return 0 to continue, a negative code to abort the transfer
 * (that code becomes the transfer's rc, and the sink should have set the error via its payload).
 */
typedef int (*core_http_sink_fn)(void *payload, const void *data, size_t len);
/** Stream source for a request body: fill buf with up to cap bytes; return the count, 0 at the
 * end, or a negative code to abort. */
typedef ssize_t (*core_http_source_fn)(void *payload, void *buf, size_t cap);

typedef struct core_http_req {
    const char *method;         /* "GET", "HEAD", "PUT", "POST", "PATCH", "DELETE" */
    const char *url;            /* absolute */
    const char *const *headers; /* NULL-terminated list of "Name: value", or NULL */
    const void *body;           /* in-memory request body, or NULL */
    size_t body_len;
    core_http_source_fn source; /* streaming request body instead of body, or NULL */
    void *source_payload;
    int64_t source_len;     /* length of the streamed body; -1 unknown (chunked) */
    core_http_sink_fn sink; /* streaming 2xx response body, or NULL: keep in resp->body */
    void *sink_payload;
    size_t max_body;       /* ceiling for the in-memory body; 0: 4 MiB */
    bool follow_redirects; /* follow 301/302/303/307/308 (Authorization is dropped when
                              the host changes) */
    long timeout_ms;       /* whole transfer; 0: none (low-speed limit still applies) */
    /* Cancel hook: when non-NULL and *cancel becomes non-zero (from any thread), the transfer
     * ends within about 100 ms with BERTH_ECANCELED, even when no byte arrives (core_http_run
     * then wakes every 100 ms to look at it). NULL: no hook and no extra wakeups. */
    const atomic_int *cancel;
    long low_speed_time_s; /* 0: the handle's low-speed limit; < 0: none (long watches) */
} core_http_req;

typedef struct core_http_resp {
    long status;        /* HTTP status, 0 when no response arrived */
    berth_buf headers;  /* raw header block of the final response ("Name: value\r\n" lines) */
    berth_buf body;     /* body when no sink was given, or a non-2xx body (bounded) */
    char *url;          /* effective URL after redirects (heap), or NULL */
    int64_t body_bytes; /* bytes of body received (sink or buffer) */
} core_http_resp;

/** One transfer: the request in, the response, code and error out. */
typedef struct core_http_xfer {
    core_http_req req;
    core_http_resp resp;
    int rc;           /* 0, or BERTH_ENET (connection failed/reset), BERTH_ETIMEOUT, BERTH_EINVAL
                         (body over ceiling), BERTH_ECANCELED (req.cancel was set), or the code
                         a sink/source returned */
    berth_error *err; /* set when rc < 0; owned by the xfer (core_http_xfer_dispose) */
} core_http_xfer;

int core_http_new(core_http **out, const core_http_opts *opts, berth_error **err);
void core_http_free(core_http *h);

/**
 * Bound every later transfer of h: each ends by the monotonic time deadline (its
 * req.timeout_ms is lowered to what is left), and once it has passed a transfer fails with
 * BERTH_ETIMEOUT without being sent. 0 removes the bound.
 */
void core_http_set_deadline(core_http *h, berth_mono_ms deadline);

/**
 * Run every transfer concurrently and return when all have finished. Each xfer gets its own
 * resp/rc/err; a non-2xx status is NOT an error here (rc stays 0). Returns 0, or a negative code
 * only when the multi loop itself failed. xfers must be zeroed except for req.
 */
int core_http_run(core_http *h, core_http_xfer *xfers, size_t n);

/** Convenience: run one transfer. Returns its rc (copying its error into err). */
int core_http_do(core_http *h, core_http_xfer *x, berth_error **err);

/** Free what run() put into x->resp and x->err; x->req is left alone. Accepts NULL. */
void core_http_xfer_dispose(core_http_xfer *x);

/**
 * First value of a response header (case-insensitive name), copied into a heap string
 * (core_free), or NULL when absent. Leading/trailing spaces trimmed.
 */
char *core_http_resp_header(const core_http_resp *resp, const char *name);

/** The lowercase reason phrase of an HTTP status ("not found"), or "unexpected status". */
const char *core_http_reason(long status);

/** Resolve a possibly relative reference (RFC 3986) against base; heap result (core_free). */
char *core_url_resolve(const char *base, const char *ref);
/** Scheme+host+port of an absolute URL, lowercase, heap ("https://reg:5000"); NULL if invalid. */
char *core_url_origin(const char *url);
/** Percent-encode a query value (unreserved characters kept); heap (core_free). */
char *core_url_escape(const char *s);

/* ---- pluggable transport (tests) ---- */
typedef struct core_http_transport {
    unsigned int version;
    int (*run)(void *self, core_http_xfer *xfers, size_t n);
    void (*free)(void *self);
    void *self;
} core_http_transport;
/** Build a core_http over a custom transport (takes ownership of t->self via t->free). */
int core_http_new_with_transport(core_http **out, const core_http_transport *t, berth_error **err);

#endif
