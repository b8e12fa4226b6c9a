/*
 * The OCI distribution client: manifests, blobs, tags and referrers over one core_http, with
 * authentication, retries and digest verification (oci-artifacts.md 3.2-3.13).
 *
 * Design: every registry request is an oci_call, and every call goes through calls_run(), which
 * drives a set of calls to completion with one core_http_run() per round. A round sends each
 * unfinished call once; its result is then classified: a 401 is answered through oci/auth.c and
 * resent at once (at most once per distinct challenge), a transport failure or a 408/429/5xx of
 * an idempotent call waits for a backoff (base x2 per attempt, +-10 % jitter, at most 3 s, or the
 * server's Retry-After up to 30 s) and is resent in a later round; anything else finishes the
 * call, and its caller reads the final response. Callers decide what statuses mean.
 *
 * Scheme: requests go to https://HOST first. For loopback hosts, or any host with opts.insecure,
 * a TLS or connection failure on the first exchange makes the client try http://HOST; whichever
 * answers is remembered for the host for the client's lifetime. While a host's scheme is not
 * settled only one call per round goes to it, so parallel phases never race on the guess.
 *
 * Blob pushes run as phases over all blobs at once (HEAD, then POST, then PUT or PATCHes), each
 * phase one round; the first HEAD goes alone so that the scheme and the token are settled
 * before the others start. A failed upload session restarts from POST.
 *
 * Threading: a client is used by one thread at a time. The library never prints.
 */
#include "oci/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "oci/auth.h"

#define DEFAULT_RETRIES 5
#define DEFAULT_CHUNK_BYTES ((int64_t)128 << 20) /* blobs above this go in chunked PATCHes */
#define DEFAULT_RETRY_BASE_MS 250
#define BACKOFF_MAX_MS 3000
#define RETRY_AFTER_MAX_MS 30000
#define TAGS_PAGE_MAX_BODY ((size_t)16 << 20)
#define PAGES_MAX 100000
#define PROGRESS_MS 100
#define PROGRESS_BYTES ((int64_t)1 << 20)
#define MSG_URL_MAX 120
#define CALL_HEADERS_MAX 6
#define AUTH_ROUNDS_MAX 4 /* distinct 401 challenges answered per request */

#define ACCEPT_MANIFESTS                                                                           \
    "Accept: " BERTH_MT_OCI_MANIFEST ", " BERTH_MT_OCI_INDEX ", " BERTH_MT_DOCKER_MANIFEST         \
    ", " BERTH_MT_DOCKER_LIST

enum { SCHEME_UNKNOWN = 0, SCHEME_HTTPS, SCHEME_HTTP, SCHEME_TRY_HTTP };

typedef struct host_scheme {
    char *host;
    int state;
} host_scheme;

struct berth_oci_client {
    core_http *http;
    oci_auth *auth;
    int max_retries;
    int64_t retry_base_ms;
    int64_t chunk_size;
    bool insecure;
    berth_progress_fn progress;
    void *progress_payload;
    oci_hooks hooks;
    uint64_t rng; /* xorshift state for jitter */
    host_scheme *schemes;
    size_t schemes_len;
    berth_mono_ms deadline; /* opts.timeout_ms from creation; 0: none */
};

/* One registry request and its retries. Inputs are set by the caller after call_init. */
typedef struct oci_call {
    const char *method;
    const char *host;         /* API host: scheme and credentials */
    const char *url;          /* absolute URL (upload Location, Link), or NULL: path */
    char *path;               /* "/v2/..." with query (owned) */
    const char *repo;         /* repository for the token scope, or NULL */
    const char *scope_method; /* scope as for this method; NULL: method */
    const char *mount_from;   /* a second repository needing pull, or NULL */
    const char *headers[CALL_HEADERS_MAX];
    size_t nheaders;
    const void *body;
    size_t body_len;
    core_http_source_fn source;
    void *source_payload;
    int64_t source_len;
    core_http_sink_fn sink;
    void *sink_payload;
    size_t max_body;
    bool follow_redirects;
    bool retry; /* idempotent: resend on transport errors and 408/429/5xx */
    /* before each attempt: reset a body source, add a header (Range) */
    void (*prepare)(void *payload, core_http_xfer *x, const char **extra_header);
    void *prepare_payload;

    /* results */
    core_http_xfer x; /* the final exchange */
    char *req_url;    /* URL of the final request */
    int rc;           /* 0: x holds a response (any status); <0: err */
    berth_error *err;

    /* state */
    bool done;
    int attempts;
    int64_t delay_ms;
    int used_scheme;
    bool same_origin;
    char *auth_line; /* secret */
    const char **hdrs;
    char **seen; /* challenges answered */
    size_t nseen;
    berth_error *saved_err; /* the https failure while http is tried */
} oci_call;

/* ------------------------------------------------------------------ small helpers */

static int oom(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

static void secret_free(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        core_free(s);
    }
}

static const char *api_host(const berth_oci_ref *r)
{
    return r->api_host ? r->api_host : r->registry;
}

/* "registry/repository" plus ":tag" or "@digest" (target) for messages; heap. */
static char *ref_name(const berth_oci_ref *r, const char *target)
{
    if (!target)
        return core_sprintf("%s/%s", r->registry, r->repository);
    return core_sprintf("%s/%s%s%s", r->registry, r->repository, strchr(target, ':') ? "@" : ":",
                        target);
}

static bool is_digest_target(const char *target)
{
    return strchr(target, ':') != NULL;
}

static void short_digest(char out[24], const char *digest)
{
    const char *c = strchr(digest, ':');
    snprintf(out, 24, "%.12s", c ? c + 1 : digest);
}

static bool deadline_passed(const berth_oci_client *c)
{
    return c->deadline > 0 && core_mono_now() >= c->deadline;
}

static void do_sleep(berth_oci_client *c, int64_t ms)
{
    if (c->deadline > 0 && ms > c->deadline - core_mono_now())
        ms = c->deadline - core_mono_now(); /* a backoff never outlasts the budget */
    if (ms <= 0)
        return;
    if (c->hooks.sleep_ms)
        c->hooks.sleep_ms(c->hooks.payload, ms);
    else
        core_sleep_ms(ms);
}

static berth_unix_ms wall_now(berth_oci_client *c)
{
    return c->hooks.wall_now ? c->hooks.wall_now(c->hooks.payload) : core_wall_now();
}

static uint64_t next_rand(berth_oci_client *c)
{
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return x;
}

static int64_t backoff_ms(berth_oci_client *c, int attempt)
{
    int64_t d = c->retry_base_ms;
    for (int i = 0; i < attempt && d < BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    /* +-10 % jitter */
    int64_t span = d / 5;
    if (span > 0)
        d = d - d / 10 + (int64_t)(next_rand(c) % (uint64_t)(span + 1));
    if (d > BACKOFF_MAX_MS)
        d = BACKOFF_MAX_MS;
    return d < 1 ? 1 : d;
}

static bool retryable_status(long st)
{
    return st == 408 || st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

static int code_for_status(long st)
{
    if (st == 401)
        return BERTH_EAUTH;
    if (st == 403)
        return BERTH_EDENIED;
    if (st == 404)
        return BERTH_ENOTFOUND;
    if (st == 405)
        return BERTH_EUNSUPPORTED;
    if (st == 409 || st == 412)
        return BERTH_ECONFLICT;
    if (st == 408 || st == 429 || st >= 500)
        return BERTH_ENET;
    if (st == 400 || st == 413 || st == 414 || st == 431)
        return BERTH_EINVAL;
    return BERTH_ERROR;
}

static bool is_2xx(long st)
{
    return st >= 200 && st < 300;
}

/* ------------------------------------------------------------------ hosts */

bool oci_host_is_loopback(const char *host)
{
    char h[256];
    size_t len;
    if (!host)
        return false;
    if (host[0] == '[') {
        const char *e = strchr(host, ']');
        if (!e)
            return false;
        len = (size_t)(e - host - 1);
        if (len >= sizeof(h))
            return false;
        memcpy(h, host + 1, len);
        h[len] = '\0';
    } else {
        const char *colon = strchr(host, ':');
        if (colon && strchr(colon + 1, ':'))
            len = strlen(host); /* a bare IPv6 address */
        else
            len = colon ? (size_t)(colon - host) : strlen(host);
        if (len >= sizeof(h))
            return false;
        memcpy(h, host, len);
        h[len] = '\0';
    }
    if (strlen(h) == 9 && core_strncasecmp(h, "localhost", 9) == 0)
        return true;
    if (strcmp(h, "::1") == 0 || strcmp(h, "0:0:0:0:0:0:0:1") == 0)
        return true;
    /* 127.0.0.0/8: four decimal octets starting with 127 */
    if (strncmp(h, "127.", 4) != 0)
        return false;
    int parts = 1;
    const char *p = h + 4;
    while (*p) {
        int digits = 0, v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p - '0');
            p++;
            if (++digits > 3)
                return false;
        }
        if (digits == 0 || v > 255)
            return false;
        parts++;
        if (*p == '.')
            p++;
        else if (*p)
            return false;
    }
    return parts == 4;
}

static host_scheme *scheme_get(berth_oci_client *c, const char *host)
{
    for (size_t i = 0; i < c->schemes_len; i++)
        if (strcmp(c->schemes[i].host, host) == 0)
            return &c->schemes[i];
    host_scheme *n = core_realloc(c->schemes, (c->schemes_len + 1) * sizeof(*n));
    if (!n)
        return NULL;
    c->schemes = n;
    char *h = core_strdup(host);
    if (!h)
        return NULL;
    c->schemes[c->schemes_len].host = h;
    c->schemes[c->schemes_len].state =
        (c->insecure || oci_host_is_loopback(host)) ? SCHEME_UNKNOWN : SCHEME_HTTPS;
    return &c->schemes[c->schemes_len++];
}

static bool scheme_unsettled(berth_oci_client *c, const char *host)
{
    host_scheme *hs = scheme_get(c, host);
    return hs && (hs->state == SCHEME_UNKNOWN || hs->state == SCHEME_TRY_HTTP);
}

/* Does url point at host (default ports ignored)? */
static bool url_on_host(const char *url, const char *host)
{
    const char *p = strstr(url, "://");
    bool https;
    if (!p)
        return false;
    https = (size_t)(p - url) == 5 && core_strncasecmp(url, "https", 5) == 0;
    p += 3;
    size_t alen = strcspn(p, "/?#");
    size_t hlen = strlen(host);
    const char *dflt = https ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (alen > dl && memcmp(p + alen - dl, dflt, dl) == 0)
        alen -= dl;
    if (hlen > dl && memcmp(host + hlen - dl, dflt, dl) == 0)
        hlen -= dl;
    return alen == hlen && core_strncasecmp(p, host, alen) == 0;
}

/* ------------------------------------------------------------------ Retry-After */

static int month_index(const char *m)
{
    static const char *const names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (core_strncasecmp(m, names[i], 3) == 0)
            return i + 1;
    return 0;
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool read_num(const char **pp, int ndig, int *out)
{
    int v = 0;
    for (int i = 0; i < ndig; i++) {
        char ch = (*pp)[i];
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    *pp += ndig;
    *out = v;
    return true;
}

int64_t oci_retry_after_ms(const char *value, berth_unix_ms now)
{
    const char *p;
    if (!value)
        return -1;
    p = value;
    while (*p == ' ')
        p++;
    if (*p >= '0' && *p <= '9') {
        int64_t s = 0;
        while (*p >= '0' && *p <= '9') {
            if (s < 1000000000)
                s = s * 10 + (*p - '0');
            p++;
        }
        while (*p == ' ')
            p++;
        return *p ? -1 : s * 1000;
    }
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    const char *comma = strchr(p, ',');
    if (!comma)
        return -1;
    p = comma + 1;
    while (*p == ' ')
        p++;
    int d, y, h, mi, s, mo;
    if (!read_num(&p, 2, &d) || *p++ != ' ')
        return -1;
    if (strlen(p) < 4 || !(mo = month_index(p)) || p[3] != ' ')
        return -1;
    p += 4;
    if (!read_num(&p, 4, &y) || *p++ != ' ' || !read_num(&p, 2, &h) || *p++ != ':' ||
        !read_num(&p, 2, &mi) || *p++ != ':' || !read_num(&p, 2, &s))
        return -1;
    if (d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    while (*p == ' ')
        p++;
    if (strcmp(p, "GMT") != 0)
        return -1;
    int64_t when = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1000;
    return when > now ? when - now : 0;
}

/* ------------------------------------------------------------------ progress */

typedef struct progress {
    berth_oci_client *c;
    char what[24];
    int64_t total;
    int64_t last_done;
    berth_mono_ms last_ms;
    bool started;
} progress;

static void progress_init(progress *p, berth_oci_client *c, const char *digest, int64_t total)
{
    memset(p, 0, sizeof(*p));
    p->c = c;
    p->total = total;
    short_digest(p->what, digest);
}

static void progress_report(progress *p, int64_t done, bool force)
{
    if (!p->c || !p->c->progress)
        return;
    berth_mono_ms now = core_mono_now();
    if (!force && p->started && now - p->last_ms < PROGRESS_MS &&
        done - p->last_done < PROGRESS_BYTES)
        return;
    if (force && p->started && done == p->last_done)
        return;
    p->started = true;
    p->last_ms = now;
    p->last_done = done;
    p->c->progress(p->c->progress_payload, p->what, done, p->total);
}

/* ------------------------------------------------------------------ client */

static void client_defaults(berth_oci_client *c, const berth_oci_client_opts *opts)
{
    c->max_retries = DEFAULT_RETRIES;
    c->retry_base_ms = DEFAULT_RETRY_BASE_MS;
    if (opts) {
        if (opts->max_retries > 0)
            c->max_retries = opts->max_retries;
        else if (opts->max_retries < 0)
            c->max_retries = 0;
        if (opts->retry_base_ms > 0)
            c->retry_base_ms = opts->retry_base_ms;
        c->chunk_size = opts->chunk_size > 0    ? opts->chunk_size
                        : opts->chunk_size == 0 ? DEFAULT_CHUNK_BYTES
                                                : 0;
        c->insecure = opts->insecure;
        c->progress = opts->progress;
        c->progress_payload = opts->progress_payload;
    }
    c->rng = (uint64_t)core_mono_now() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)c ^
             ((uint64_t)getpid() << 32);
    if (c->rng == 0)
        c->rng = 0x2545F4914F6CDD1DULL;
}

int oci_client_new_with_http(berth_oci_client **out, const berth_oci_client_opts *opts,
                             core_http *http, berth_error **err)
{
    berth_oci_client *c = NULL;
    int rc;

    *out = NULL;
    if (opts && opts->version != BERTH_OCI_CLIENT_OPTS_VERSION) {
        core_http_free(http);
        return core_error_set(err, BERTH_EINVAL, "oci client: unsupported options version %u",
                              opts->version);
    }
    if (!(c = core_calloc(1, sizeof(*c)))) {
        core_http_free(http);
        return oom(err);
    }
    c->http = http;
    client_defaults(c, opts);
    berth_oci_client_restart_budget(c, opts ? opts->timeout_ms : 0);
    if ((rc = oci_auth_new(&c->auth, opts ? opts->creds : NULL, opts ? opts->docker_config : NULL,
                           err)) < 0) {
        berth_oci_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void oci_client_set_hooks(berth_oci_client *c, const oci_hooks *hooks)
{
    if (c && hooks)
        c->hooks = *hooks;
}

void berth_oci_client_restart_budget(berth_oci_client *c, int64_t timeout_ms)
{
    c->deadline = timeout_ms > 0 ? core_mono_now() + timeout_ms : 0;
    core_http_set_deadline(c->http, c->deadline);
}

int berth_oci_client_new(berth_oci_client **out, const berth_oci_client_opts *opts,
                         berth_error **err)
{
    core_http_opts ho = CORE_HTTP_OPTS_INIT;
    core_http *h = NULL;
    int rc;

    BERTH_ARG_CHECK(out);
    *out = NULL;
    if (opts && opts->version != BERTH_OCI_CLIENT_OPTS_VERSION)
        return core_error_set(err, BERTH_EINVAL, "oci client: unsupported options version %u",
                              opts->version);
    ho.user_agent = opts && opts->user_agent ? opts->user_agent : "berth/" BERTH_VERSION;
    if (opts) {
        ho.ca_file = opts->ca_file;
        ho.cert_file = opts->cert_file;
        ho.key_file = opts->key_file;
        ho.tls_skip_verify = opts->insecure;
        ho.verbose = opts->debug;
    }
    if ((rc = core_http_new(&h, &ho, err)) < 0)
        return rc;
    return oci_client_new_with_http(out, opts, h, err);
}

void berth_oci_client_free(berth_oci_client *c)
{
    if (!c)
        return;
    core_http_free(c->http);
    oci_auth_free(c->auth);
    for (size_t i = 0; i < c->schemes_len; i++)
        core_free(c->schemes[i].host);
    core_free(c->schemes);
    core_free(c);
}

void berth_oci_blob_dispose(berth_oci_blob *b)
{
    if (!b)
        return;
    core_free(b->data);
    core_free(b->media_type);
    core_free(b->digest);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------ calls */

static void call_init(oci_call *call, const char *method, const char *host)
{
    memset(call, 0, sizeof(*call));
    call->method = method;
    call->host = host;
}

static void call_add_header(oci_call *call, const char *h)
{
    if (BERTH_ALWAYS(call->nheaders < CALL_HEADERS_MAX))
        call->headers[call->nheaders++] = h;
}

static void call_reset_attempt(oci_call *call)
{
    core_http_xfer_dispose(&call->x);
    memset(&call->x, 0, sizeof(call->x));
}

static void call_dispose(oci_call *call)
{
    if (!call)
        return;
    core_free(call->path);
    core_http_xfer_dispose(&call->x);
    core_free(call->req_url);
    berth_error_free(call->err);
    secret_free(call->auth_line);
    core_free(call->hdrs);
    for (size_t i = 0; i < call->nseen; i++)
        core_free(call->seen[i]);
    core_free(call->seen);
    berth_error_free(call->saved_err);
    memset(call, 0, sizeof(*call));
}

/* Move the call's error into err (the call must have failed). */
static int call_take_error(oci_call *call, berth_error **err)
{
    int rc = call->rc < 0 ? call->rc : BERTH_ERROR;
    if (err && !*err && call->err) {
        *err = call->err;
        call->err = NULL;
        return rc;
    }
    return core_error_set(err, rc, "%s",
                          call->err ? berth_error_message(call->err) : "request failed");
}

static int call_scopes(const oci_call *call, oci_scopes *s)
{
    int rc = 0;
    if (call->repo)
        rc = oci_scopes_add_for_method(s, call->repo,
                                       call->scope_method ? call->scope_method : call->method);
    if (rc == 0 && call->mount_from)
        rc = oci_scopes_add_for_method(s, call->mount_from, "GET");
    return rc;
}

/* A failure before or instead of a response: retry it later, or finish the call with it. */
static void call_failed(berth_oci_client *c, oci_call *call, int rc, berth_error *e)
{
    if ((rc == BERTH_ENET || rc == BERTH_ETIMEOUT) && call->retry &&
        call->attempts < c->max_retries && !deadline_passed(c)) {
        call->delay_ms = backoff_ms(c, call->attempts);
        call->attempts++;
        berth_error_free(e); /* transient: the retry decides */
        return;
    }
    call->done = true;
    call->rc = rc;
    berth_error_free(call->err);
    call->err = e;
}

/* Fill x for the next attempt of call. Returns 0, or <0 when the call failed or waits. */
static int call_prepare(berth_oci_client *c, oci_call *call, core_http_xfer *x)
{
    oci_scopes scopes = {0};
    berth_error *e = NULL;
    const char *extra = NULL;
    int rc;

    call_reset_attempt(call);
    core_free(call->req_url);
    call->req_url = NULL;
    secret_free(call->auth_line);
    call->auth_line = NULL;
    core_free(call->hdrs);
    call->hdrs = NULL;

    if (call->url) {
        host_scheme *hs = scheme_get(c, call->host);
        call->req_url = core_strdup(call->url);
        /* credentials go only to the registry itself, never downgraded to plain http */
        call->same_origin =
            url_on_host(call->url, call->host) &&
            !(hs && hs->state == SCHEME_HTTPS && core_strncasecmp(call->url, "http://", 7) == 0);
        call->used_scheme = SCHEME_UNKNOWN;
    } else {
        host_scheme *hs = scheme_get(c, call->host);
        if (!hs) {
            call_failed(c, call, BERTH_ENOMEM, NULL);
            return BERTH_ENOMEM;
        }
        bool http = hs->state == SCHEME_HTTP || hs->state == SCHEME_TRY_HTTP;
        call->used_scheme = http ? SCHEME_HTTP : SCHEME_HTTPS;
        call->req_url = core_sprintf("%s://%s%s", http ? "http" : "https", call->host,
                                     call->path ? call->path : "/v2/");
        call->same_origin = true;
    }
    if (!call->req_url) {
        rc = oom(&e);
        call_failed(c, call, rc, e);
        return rc;
    }
    if (call->same_origin) {
        if ((rc = call_scopes(call, &scopes)) < 0 ||
            (rc = oci_auth_header(&call->auth_line, c->auth, c->http, call->host, &scopes,
                                  wall_now(c), &e)) < 0) {
            oci_scopes_dispose(&scopes);
            if (rc == BERTH_ENOMEM && !e)
                oom(&e);
            call_failed(c, call, rc, e);
            return rc;
        }
        oci_scopes_dispose(&scopes);
    }
    if (call->prepare)
        call->prepare(call->prepare_payload, x, &extra);
    if (!(call->hdrs = core_calloc(call->nheaders + 3, sizeof(*call->hdrs)))) {
        rc = oom(&e);
        call_failed(c, call, rc, e);
        return rc;
    }
    size_t k = 0;
    for (size_t i = 0; i < call->nheaders; i++)
        call->hdrs[k++] = call->headers[i];
    if (call->auth_line)
        call->hdrs[k++] = call->auth_line;
    if (extra)
        call->hdrs[k++] = extra;
    call->hdrs[k] = NULL;

    x->req.method = call->method;
    x->req.url = call->req_url;
    x->req.headers = call->hdrs;
    x->req.body = call->body;
    x->req.body_len = call->body_len;
    x->req.source = call->source;
    x->req.source_payload = call->source_payload;
    x->req.source_len = call->source_len;
    x->req.sink = call->sink;
    x->req.sink_payload = call->sink_payload;
    x->req.max_body = call->max_body;
    x->req.follow_redirects = call->follow_redirects;
    return 0;
}

static bool body_contains(const berth_buf *b, const char *needle)
{
    size_t nl = strlen(needle);
    if (!b->ptr)
        return false;
    for (size_t i = 0; i + nl <= b->len; i++)
        if (memcmp(b->ptr + i, needle, nl) == 0)
            return true;
    return false;
}

/* Should a failed https attempt be tried again over plain http? */
static bool worth_http_fallback(const core_http_xfer *x)
{
    if (x->rc == BERTH_ENET || x->rc == BERTH_ETIMEOUT)
        return true;
    const char *m = berth_error_message(x->err);
    return x->rc == BERTH_ERROR && (strstr(m, "tls") || strstr(m, "TLS") || strstr(m, "SSL"));
}

static void call_finish(berth_oci_client *c, oci_call *call, core_http_xfer *xf)
{
    host_scheme *hs = call->url ? NULL : scheme_get(c, call->host);
    core_http_xfer *x = &call->x;
    int rc;

    *x = *xf;
    memset(xf, 0, sizeof(*xf));
    if (x->rc == 0 && x->resp.status == 0) {
        x->rc = BERTH_ENET;
        core_error_set(&x->err, BERTH_ENET, "%s %s: no response", call->method, call->req_url);
    }
    if (hs && hs->state == SCHEME_TRY_HTTP && call->used_scheme == SCHEME_HTTP) {
        /* the http guess: a plain-http server answers; a TLS server says 400 to it ("client
         * sent an HTTP request to an HTTPS server", no body for HEAD) */
        if (x->rc == 0 && x->resp.status != 400) {
            hs->state = SCHEME_HTTP;
            berth_error_free(call->saved_err);
            call->saved_err = NULL;
        } else if (x->rc == BERTH_ETIMEOUT) {
            /* something took the plain-http request and answered too slowly (or the time
             * budget ran out): that timeout is the news, not the TLS failure before it */
            hs->state = SCHEME_UNKNOWN;
            berth_error_free(call->saved_err);
            call->saved_err = NULL;
        } else {
            hs->state = SCHEME_UNKNOWN; /* report the https failure */
            berth_error_free(x->err);
            x->err = call->saved_err;
            call->saved_err = NULL;
            x->rc = x->err ? berth_error_code(x->err) : BERTH_ENET;
        }
    } else if (hs && hs->state == SCHEME_UNKNOWN && call->used_scheme == SCHEME_HTTPS) {
        if (x->rc < 0 && worth_http_fallback(x)) {
            hs->state = SCHEME_TRY_HTTP;
            berth_error_free(call->saved_err);
            call->saved_err = x->err;
            x->err = NULL;
            call_reset_attempt(call);
            return; /* resend now over http */
        }
        if (x->rc == 0)
            hs->state = SCHEME_HTTPS;
    }
    if (x->rc < 0) {
        berth_error *e = x->err;
        rc = x->rc;
        x->err = NULL;
        if (!e)
            core_error_set(&e, rc, "%s %s: request failed", call->method, call->req_url);
        call_failed(c, call, rc, e);
        if (!call->done)
            call_reset_attempt(call);
        return;
    }
    long st = x->resp.status;
    if (st == 401 && call->same_origin) {
        char *www = core_http_resp_header(&x->resp, "WWW-Authenticate");
        const char *key = www ? www : "";
        berth_error *e = NULL;
        bool again = call->nseen >= AUTH_ROUNDS_MAX; /* a server inventing new challenges */
        for (size_t i = 0; i < call->nseen && !again; i++)
            again = strcmp(call->seen[i], key) == 0;
        if (again) {
            bool had = oci_auth_has_creds(c->auth, call->host);
            core_free(www);
            core_error_set(&e, BERTH_EAUTH, "registry \"%s\": authentication %s: 401 %s",
                           call->host, had ? "failed" : "required", core_http_reason(401));
            call_failed(c, call, BERTH_EAUTH, e);
            return;
        }
        char **ns = core_realloc(call->seen, (call->nseen + 1) * sizeof(*ns));
        char *k = ns ? core_strdup(key) : NULL;
        if (ns)
            call->seen = ns;
        if (!k) {
            core_free(www);
            call_failed(c, call, BERTH_ENOMEM, NULL);
            return;
        }
        call->seen[call->nseen++] = k;
        oci_scopes scopes = {0};
        rc = call_scopes(call, &scopes);
        if (rc == 0)
            rc = oci_auth_challenge(c->auth, c->http, call->host, www, &scopes, wall_now(c), &e);
        oci_scopes_dispose(&scopes);
        core_free(www);
        if (rc < 0) {
            if (rc == BERTH_ENOMEM && !e)
                oom(&e);
            call_failed(c, call, rc, e);
            if (!call->done)
                call_reset_attempt(call);
            return;
        }
        call_reset_attempt(call);
        return; /* resend with the new credentials */
    }
    if (retryable_status(st) && call->retry && call->attempts < c->max_retries &&
        !deadline_passed(c)) {
        int64_t d = backoff_ms(c, call->attempts);
        char *ra = core_http_resp_header(&x->resp, "Retry-After");
        int64_t ra_ms = oci_retry_after_ms(ra, wall_now(c));
        core_free(ra);
        if (ra_ms > RETRY_AFTER_MAX_MS)
            ra_ms = RETRY_AFTER_MAX_MS;
        if (ra_ms > d)
            d = ra_ms;
        call->delay_ms = d;
        call->attempts++;
        call_reset_attempt(call);
        return;
    }
    call->done = true;
    call->rc = 0;
}

/* Drive calls to completion: one core_http_run per round. */
static void calls_run(berth_oci_client *c, oci_call **calls, size_t n)
{
    core_http_xfer *xf = core_calloc(n, sizeof(*xf));
    oci_call **batch = core_calloc(n, sizeof(*batch));

    if (!xf || !batch) {
        for (size_t i = 0; i < n; i++) {
            if (!calls[i]->done) {
                berth_error *e = NULL;
                oom(&e);
                calls[i]->retry = false;
                call_failed(c, calls[i], BERTH_ENOMEM, e);
            }
        }
        goto out;
    }
    for (;;) {
        int64_t delay = 0;
        bool pending = false;
        for (size_t i = 0; i < n; i++) {
            if (!calls[i]->done) {
                pending = true;
                if (calls[i]->delay_ms > delay)
                    delay = calls[i]->delay_ms;
            }
        }
        if (!pending)
            break;
        do_sleep(c, delay);
        for (size_t i = 0; i < n; i++)
            calls[i]->delay_ms = 0;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            oci_call *call = calls[i];
            if (call->done)
                continue;
            if (!call->url && scheme_unsettled(c, call->host)) {
                bool busy = false;
                for (size_t j = 0; j < k; j++)
                    if (!batch[j]->url && strcmp(batch[j]->host, call->host) == 0)
                        busy = true;
                if (busy)
                    continue; /* one guess at a time per host */
            }
            memset(&xf[k], 0, sizeof(xf[k]));
            if (call_prepare(c, call, &xf[k]) < 0)
                continue;
            batch[k++] = call;
        }
        if (k == 0)
            continue;
        core_http_run(c->http, xf, k); /* each xfer reports its own result */
        for (size_t j = 0; j < k; j++)
            call_finish(c, batch[j], &xf[j]);
    }
out:
    core_free(xf);
    core_free(batch);
}

static void call_run(berth_oci_client *c, oci_call *call)
{
    oci_call *one[1] = {call};
    calls_run(c, one, 1);
}

/* The URL as shown in messages: long queries (upload state) become "?...". */
static void url_for_msg(char *out, size_t cap, const char *url)
{
    size_t len = strlen(url), keep = len;
    const char *q = strchr(url, '?');
    if (q && (len > MSG_URL_MAX || strstr(url, "/blobs/uploads/")))
        keep = (size_t)(q - url);
    if (keep + 5 > cap)
        keep = cap - 5;
    memcpy(out, url, keep);
    if (keep < len)
        memcpy(out + keep, "?...", 5);
    else
        out[keep] = '\0';
}

/* The registry's explanation of a failed request: "CODE: message" or a line of raw text. */
static void error_detail(char *out, size_t cap, const core_http_resp *resp)
{
    json_error_t jerr;
    json_t *root = NULL;
    size_t used = 0;

    out[0] = '\0';
    if (resp->body.ptr && resp->body.len > 0)
        root = json_loadb(resp->body.ptr, resp->body.len, 0, &jerr);
    json_t *errors = json_is_object(root) ? json_object_get(root, "errors") : NULL;
    if (json_is_array(errors) && json_array_size(errors) > 0) {
        for (size_t i = 0; i < json_array_size(errors) && i < 3 && used + 1 < cap; i++) {
            json_t *e = json_array_get(errors, i);
            const char *code = json_string_value(json_object_get(e, "code"));
            const char *msg = json_string_value(json_object_get(e, "message"));
            int w = snprintf(out + used, cap - used, "%s%s%s%s", i ? "; " : "", code ? code : "",
                             code && msg ? ": " : "", msg ? msg : "");
            if (w < 0)
                break;
            used += (size_t)w < cap - used ? (size_t)w : cap - used - 1;
        }
        json_decref(root);
        return;
    }
    json_decref(root);
    /* raw text (proxies, plain-text 404s): the first printable line */
    if (!resp->body.ptr)
        return;
    const char *p = resp->body.ptr;
    while (*p == ' ' || *p == '\r' || *p == '\n' || *p == '\t')
        p++;
    if (*p == '<' || *p == '{')
        return; /* HTML or JSON we do not understand */
    size_t n = 0;
    while (p[n] && p[n] != '\n' && p[n] != '\r' && n + 1 < cap && n < 100) {
        unsigned char ch = (unsigned char)p[n];
        out[n] = (ch < 0x20 || ch > 0x7e) ? '?' : (char)ch;
        n++;
    }
    out[n] = '\0';
}

/* Set err for a response the caller did not expect; returns the mapped code. */
static int status_error(const oci_call *call, berth_error **err)
{
    char url[MSG_URL_MAX + 8];
    char detail[200];
    long st = call->x.resp.status;
    int code = code_for_status(st);

    url_for_msg(url, sizeof(url), call->req_url ? call->req_url : "");
    error_detail(detail, sizeof(detail), &call->x.resp);
    if (detail[0] && strchr(detail, ':') && call->x.resp.body.ptr &&
        call->x.resp.body.ptr[0] == '{')
        return core_error_set(err, code, "%s %s: %ld %s", call->method, url, st, detail);
    if (detail[0])
        return core_error_set(err, code, "%s %s: %ld %s: %s", call->method, url, st,
                              core_http_reason(st), detail);
    return core_error_set(err, code, "%s %s: %ld %s", call->method, url, st, core_http_reason(st));
}

/* ------------------------------------------------------------------ manifests */

static bool generic_type(const char *ct)
{
    return !*ct || strcmp(ct, "application/json") == 0 || strcmp(ct, "text/plain") == 0 ||
           strcmp(ct, "application/octet-stream") == 0;
}

/* Content-Type without parameters (heap), or NULL. */
static char *content_type(const core_http_resp *resp)
{
    char *ct = core_http_resp_header(resp, "Content-Type");
    if (!ct)
        return NULL;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    ct[n] = '\0';
    return ct;
}

/* The media type of manifest bytes: Content-Type, else the document's mediaType. */
static char *manifest_media_type(const core_http_resp *resp, const void *data, size_t len)
{
    char *ct = content_type(resp);
    if (ct && !generic_type(ct))
        return ct;
    core_free(ct);
    json_error_t jerr;
    json_t *root = json_loadb(data, len, 0, &jerr);
    char *mt = NULL;
    if (json_is_object(root)) {
        const char *v = json_string_value(json_object_get(root, "mediaType"));
        if (v && *v)
            mt = core_strdup(v);
        else if (json_is_array(json_object_get(root, "manifests")))
            mt = core_strdup(BERTH_MT_OCI_INDEX);
        else
            mt = core_strdup(BERTH_MT_OCI_MANIFEST);
    }
    json_decref(root);
    return mt;
}

static int manifest_fetch(berth_oci_blob *out, berth_oci_client *c, const berth_oci_ref *ref,
                          const char *target, berth_error **err)
{
    oci_call call;
    char *name = ref_name(ref, target);
    char local[72];
    char *dcd = NULL;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    call_init(&call, "GET", api_host(ref));
    call.repo = ref->repository;
    call.path = core_sprintf("/v2/%s/manifests/%s", ref->repository, target);
    call_add_header(&call, ACCEPT_MANIFESTS);
    call.max_body = BERTH_OCI_MANIFEST_MAX;
    call.retry = true;
    call.follow_redirects = true;
    if (!name || !call.path) {
        rc = oom(err);
        goto out;
    }
    if (is_digest_target(target) && !core_str_has_prefix(target, "sha256:")) {
        rc = core_error_set(err, BERTH_EUNSUPPORTED,
                            "manifest \"%s\": cannot verify digest algorithm of \"%s\"", name,
                            target);
        goto out;
    }
    call_run(c, &call);
    if (call.rc < 0) {
        call_take_error(&call, err);
        rc = core_error_wrap(err, "fetching manifest \"%s\"", name);
        goto out;
    }
    if (call.x.resp.status != 200) {
        rc = status_error(&call, err);
        if (rc == BERTH_ENOTFOUND)
            rc = core_error_wrap(err, "manifest \"%s\" not found", name);
        else
            rc = core_error_wrap(err, "fetching manifest \"%s\"", name);
        goto out;
    }
    const berth_buf *body = &call.x.resp.body;
    if (body->len == 0) {
        rc = core_error_set(err, BERTH_EINVAL, "manifest \"%s\": empty response body", name);
        goto out;
    }
    core_sha256_digest(local, body->ptr, body->len);
    if (is_digest_target(target)) {
        if (strcmp(local, target) != 0) {
            rc = core_error_set(err, BERTH_EVERIFY, "manifest \"%s\": digest mismatch: got %s",
                                name, local);
            goto out;
        }
    } else {
        dcd = core_http_resp_header(&call.x.resp, "Docker-Content-Digest");
        if (dcd && core_str_has_prefix(dcd, "sha256:") && strcmp(dcd, local) != 0) {
            rc = core_error_set(err, BERTH_EVERIFY,
                                "manifest \"%s\": digest mismatch: registry says %.80s, got %s",
                                name, dcd, local);
            goto out;
        }
    }
    out->media_type = manifest_media_type(&call.x.resp, body->ptr, body->len);
    out->digest = core_strdup(local);
    out->len = body->len;
    out->data = berth_buf_detach(&call.x.resp.body);
    if (!out->media_type || !out->digest || !out->data) {
        berth_oci_blob_dispose(out);
        rc = oom(err);
        goto out;
    }
out:
    core_free(dcd);
    core_free(name);
    call_dispose(&call);
    return rc;
}

int berth_oci_manifest_get(berth_oci_blob *out, berth_oci_client *c, const berth_oci_ref *ref,
                           berth_error **err)
{
    BERTH_ARG_CHECK(out && c && ref && ref->repository);
    return manifest_fetch(out, c, ref, berth_oci_ref_target(ref), err);
}

int berth_oci_manifest_head(char **digest_out, char **media_type_out, berth_oci_client *c,
                            const berth_oci_ref *ref, berth_error **err)
{
    oci_call call;
    const char *target;
    char *name = NULL, *dcd = NULL, *ct = NULL;
    int rc = 0;

    BERTH_ARG_CHECK(digest_out && c && ref && ref->repository);
    *digest_out = NULL;
    if (media_type_out)
        *media_type_out = NULL;
    target = berth_oci_ref_target(ref);
    name = ref_name(ref, target);
    call_init(&call, "HEAD", api_host(ref));
    call.repo = ref->repository;
    call.path = core_sprintf("/v2/%s/manifests/%s", ref->repository, target);
    call_add_header(&call, ACCEPT_MANIFESTS);
    call.retry = true;
    call.follow_redirects = true;
    if (!name || !call.path) {
        rc = oom(err);
        goto out;
    }
    call_run(c, &call);
    if (call.rc < 0) {
        call_take_error(&call, err);
        rc = core_error_wrap(err, "resolving manifest \"%s\"", name);
        goto out;
    }
    if (call.x.resp.status != 200) {
        rc = status_error(&call, err);
        if (rc == BERTH_ENOTFOUND)
            rc = core_error_wrap(err, "manifest \"%s\" not found", name);
        else
            rc = core_error_wrap(err, "resolving manifest \"%s\"", name);
        goto out;
    }
    dcd = core_http_resp_header(&call.x.resp, "Docker-Content-Digest");
    if (!dcd || !berth_oci_digest_is_valid(dcd)) {
        /* no digest header: GET and hash the bytes */
        berth_oci_blob b;
        if ((rc = manifest_fetch(&b, c, ref, target, err)) < 0)
            goto out;
        *digest_out = b.digest;
        b.digest = NULL;
        if (media_type_out) {
            *media_type_out = b.media_type;
            b.media_type = NULL;
        }
        berth_oci_blob_dispose(&b);
        goto out;
    }
    if (is_digest_target(target) && strcmp(dcd, target) != 0) {
        rc = core_error_set(err, BERTH_EVERIFY,
                            "manifest \"%s\": registry answered for digest %.80s", name, dcd);
        goto out;
    }
    ct = content_type(&call.x.resp);
    if (media_type_out && ct && !generic_type(ct)) {
        *media_type_out = ct;
        ct = NULL;
    }
    *digest_out = dcd;
    dcd = NULL;
out:
    core_free(ct);
    core_free(dcd);
    core_free(name);
    call_dispose(&call);
    return rc;
}

static int manifest_put_target(char **digest_out, berth_oci_client *c, const berth_oci_ref *ref,
                               const char *target, const char *media_type, const void *data,
                               size_t len, berth_error **err)
{
    oci_call call;
    char local[72];
    char *name = ref_name(ref, target);
    char *ct_header = core_sprintf("Content-Type: %s", media_type);
    char *dcd = NULL;
    int rc = 0;

    call_init(&call, "PUT", api_host(ref));
    call.repo = ref->repository;
    call.path = core_sprintf("/v2/%s/manifests/%s", ref->repository, target);
    call.body = data;
    call.body_len = len;
    call.retry = true; /* PUT of the same bytes is idempotent */
    if (!name || !ct_header || !call.path) {
        rc = oom(err);
        goto out;
    }
    call_add_header(&call, ct_header);
    if (len > BERTH_OCI_MANIFEST_MAX) {
        rc = core_error_set(err, BERTH_EINVAL, "manifest \"%s\" is larger than %u bytes", name,
                            BERTH_OCI_MANIFEST_MAX);
        goto out;
    }
    core_sha256_digest(local, data, len);
    if (is_digest_target(target) && strcmp(target, local) != 0) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "manifest \"%s\": the bytes have digest %s, not the one named", name,
                            local);
        goto out;
    }
    call_run(c, &call);
    if (call.rc < 0) {
        call_take_error(&call, err);
        rc = core_error_wrap(err, "pushing manifest \"%s\"", name);
        goto out;
    }
    if (!is_2xx(call.x.resp.status)) {
        status_error(&call, err);
        rc = core_error_wrap(err, "pushing manifest \"%s\"", name);
        goto out;
    }
    dcd = core_http_resp_header(&call.x.resp, "Docker-Content-Digest");
    if (dcd && core_str_has_prefix(dcd, "sha256:") && strcmp(dcd, local) != 0) {
        rc = core_error_set(err, BERTH_EVERIFY,
                            "manifest \"%s\": registry stored digest %.80s, sent %s", name, dcd,
                            local);
        goto out;
    }
    if (digest_out && !(*digest_out = core_strdup(local)))
        rc = oom(err);
out:
    core_free(dcd);
    core_free(ct_header);
    core_free(name);
    call_dispose(&call);
    return rc;
}

int berth_oci_manifest_put(char **digest_out, berth_oci_client *c, const berth_oci_ref *ref,
                           const char *media_type, const void *data, size_t len, berth_error **err)
{
    BERTH_ARG_CHECK(c && ref && ref->repository && media_type && (data || len == 0));
    if (digest_out)
        *digest_out = NULL;
    const char *target = ref->tag ? ref->tag : ref->digest;
    if (!target)
        return core_error_set(err, BERTH_EINVAL,
                              "pushing a manifest to \"%s/%s\" needs a tag or a digest",
                              ref->registry, ref->repository);
    return manifest_put_target(digest_out, c, ref, target, media_type, data, len, err);
}

int berth_oci_manifest_delete(berth_oci_client *c, const berth_oci_ref *ref, berth_error **err)
{
    oci_call call;
    const char *target;
    char *name = NULL;
    int rc = 0;

    BERTH_ARG_CHECK(c && ref && ref->repository);
    target = berth_oci_ref_target(ref);
    name = ref_name(ref, target);
    call_init(&call, "DELETE", api_host(ref));
    call.repo = ref->repository;
    call.path = core_sprintf("/v2/%s/manifests/%s", ref->repository, target);
    call.retry = true;
    if (!name || !call.path) {
        rc = oom(err);
        goto out;
    }
    call_run(c, &call);
    if (call.rc < 0) {
        call_take_error(&call, err);
        rc = core_error_wrap(err, "deleting manifest \"%s\"", name);
        goto out;
    }
    long st = call.x.resp.status;
    if (!is_2xx(st)) {
        rc = status_error(&call, err);
        if (st == 405 || (st == 400 && !is_digest_target(target)))
            rc = core_error_set(err, BERTH_EUNSUPPORTED,
                                "deleting manifest \"%s\": the registry does not allow it%s", name,
                                st == 400 ? " by tag" : "");
        else if (rc == BERTH_ENOTFOUND)
            rc = core_error_wrap(err, "manifest \"%s\" not found", name);
        else
            rc = core_error_wrap(err, "deleting manifest \"%s\"", name);
    }
out:
    core_free(name);
    call_dispose(&call);
    return rc;
}

/* ------------------------------------------------------------------ blob download */

typedef struct get_state {
    core_sha256 *sha;
    berth_oci_sink_fn sink;
    void *payload;
    int64_t size;      /* expected, or -1 */
    int64_t delivered; /* bytes handed to the sink */
    int64_t skip;      /* bytes of this response already delivered (a 200 after Range) */
    bool range_sent;
    bool checked;
    core_http_xfer *x; /* the live exchange */
    char range_header[64];
    int fail_rc; /* why the sink stopped the transfer */
    bool too_big;
    progress prog;
} get_state;

static void get_prepare(void *payload, core_http_xfer *x, const char **extra)
{
    get_state *st = payload;
    st->x = x;
    st->checked = false;
    st->skip = 0;
    st->range_sent = st->delivered > 0;
    if (st->range_sent) {
        snprintf(st->range_header, sizeof(st->range_header), "Range: bytes=%lld-",
                 (long long)st->delivered);
        *extra = st->range_header;
    }
}

static int get_sink(void *payload, const void *data, size_t len)
{
    get_state *st = payload;
    const char *p = data;
    if (!st->checked) {
        st->checked = true;
        /* a server that ignores Range starts from byte 0 again */
        if (st->range_sent && st->x && st->x->resp.status == 200)
            st->skip = st->delivered;
    }
    if (st->skip > 0) {
        size_t drop = (int64_t)len < st->skip ? len : (size_t)st->skip;
        st->skip -= (int64_t)drop;
        p += drop;
        len -= drop;
        if (len == 0)
            return 0;
    }
    if (st->size >= 0 && st->delivered + (int64_t)len > st->size) {
        st->too_big = true;
        st->fail_rc = BERTH_EVERIFY;
        return BERTH_EVERIFY;
    }
    core_sha256_update(st->sha, p, len);
    int rc = st->sink(st->payload, p, len);
    if (rc < 0) {
        st->fail_rc = rc;
        return rc;
    }
    st->delivered += (int64_t)len;
    progress_report(&st->prog, st->delivered, false);
    return 0;
}

int berth_oci_blob_get(berth_oci_client *c, const berth_oci_ref *repo, const char *digest,
                       int64_t size, berth_oci_sink_fn sink, void *payload, berth_error **err)
{
    oci_call call;
    get_state st;
    char *name = NULL;
    char hex[CORE_SHA256_HEX_LEN + 1];
    int rc = 0;

    BERTH_ARG_CHECK(c && repo && repo->repository && digest && sink);
    memset(&st, 0, sizeof(st));
    call_init(&call, "GET", api_host(repo));
    if (!(name = ref_name(repo, NULL))) {
        rc = oom(err);
        goto out;
    }
    if (!berth_oci_digest_is_valid(digest)) {
        rc = core_error_set(err, BERTH_EINVAL, "blob of \"%s\": invalid digest \"%.80s\"", name,
                            digest);
        goto out;
    }
    if (!core_str_has_prefix(digest, "sha256:")) {
        rc = core_error_set(err, BERTH_EUNSUPPORTED,
                            "blob %s of \"%s\": cannot verify this digest algorithm", digest, name);
        goto out;
    }
    if ((rc = core_sha256_new(&st.sha, err)) < 0)
        goto out;
    st.sink = sink;
    st.payload = payload;
    st.size = size;
    progress_init(&st.prog, c, digest, size);
    call.repo = repo->repository;
    if (!(call.path = core_sprintf("/v2/%s/blobs/%s", repo->repository, digest))) {
        rc = oom(err);
        goto out;
    }
    call.sink = get_sink;
    call.sink_payload = &st;
    call.prepare = get_prepare;
    call.prepare_payload = &st;
    call.retry = true;
    call.follow_redirects = true;
    call_run(c, &call);
    if (call.rc < 0) {
        if (st.too_big) {
            rc = core_error_set(err, BERTH_EVERIFY,
                                "blob %s of \"%s\": size mismatch: more than %lld bytes", digest,
                                name, (long long)size);
        } else if (st.fail_rc < 0) {
            rc = core_error_set(err, st.fail_rc, "blob %s of \"%s\": storing the bytes failed",
                                digest, name);
        } else {
            call_take_error(&call, err);
            rc = core_error_wrap(err, "fetching blob %s of \"%s\"", digest, name);
        }
        goto out;
    }
    long status = call.x.resp.status;
    bool complete_416 = status == 416 && size >= 0 && st.delivered == size;
    if (status != 200 && status != 206 && !complete_416) {
        rc = status_error(&call, err);
        if (rc == BERTH_ENOTFOUND)
            rc = core_error_wrap(err, "blob %s of \"%s\" not found", digest, name);
        else
            rc = core_error_wrap(err, "fetching blob %s of \"%s\"", digest, name);
        goto out;
    }
    if (size >= 0 && st.delivered != size) {
        rc = core_error_set(err, BERTH_EVERIFY,
                            "blob %s of \"%s\": size mismatch: got %lld bytes, expected %lld",
                            digest, name, (long long)st.delivered, (long long)size);
        goto out;
    }
    core_sha256_final_hex(st.sha, hex);
    if (strcmp(hex, digest + 7) != 0) {
        rc = core_error_set(err, BERTH_EVERIFY, "blob %s of \"%s\": digest mismatch: got sha256:%s",
                            digest, name, hex);
        goto out;
    }
    progress_report(&st.prog, st.delivered, true);
out:
    core_sha256_free(st.sha);
    core_free(name);
    call_dispose(&call);
    return rc;
}

typedef struct mem_sink {
    berth_buf *buf;
    bool overflow;
} mem_sink;

static int mem_sink_put(void *payload, const void *data, size_t len)
{
    mem_sink *m = payload;
    int rc = berth_buf_put(m->buf, data, len);
    if (rc == BERTH_EINVAL)
        m->overflow = true;
    return rc;
}

int berth_oci_blob_get_mem(berth_buf *out, berth_oci_client *c, const berth_oci_ref *repo,
                           const char *digest, size_t max_bytes, berth_error **err)
{
    berth_error *e = NULL;
    mem_sink m;
    int rc;

    BERTH_ARG_CHECK(out && c && repo && digest);
    berth_buf_init(out, max_bytes);
    m.buf = out;
    m.overflow = false;
    rc = berth_oci_blob_get(c, repo, digest, -1, mem_sink_put, &m, &e);
    if (rc < 0) {
        berth_buf_dispose(out);
        if (m.overflow) {
            berth_error_free(e); /* replaced by the clearer message below */
            return core_error_set(err, BERTH_EINVAL,
                                  "blob %s of \"%s/%s\" is larger than %zu bytes", digest,
                                  repo->registry, repo->repository, max_bytes);
        }
        if (err && !*err)
            *err = e;
        else
            berth_error_free(e); /* the caller passed a used err: keep theirs */
        return rc;
    }
    return 0;
}

int berth_oci_blob_exists(bool *exists_out, berth_oci_client *c, const berth_oci_ref *repo,
                          const char *digest, berth_error **err)
{
    oci_call call;
    char *name = NULL;
    int rc = 0;

    BERTH_ARG_CHECK(exists_out && c && repo && repo->repository && digest);
    *exists_out = false;
    call_init(&call, "HEAD", api_host(repo));
    call.repo = repo->repository;
    call.path = core_sprintf("/v2/%s/blobs/%s", repo->repository, digest);
    call.retry = true;
    call.follow_redirects = true;
    name = ref_name(repo, NULL);
    if (!call.path || !name) {
        rc = oom(err);
        goto out;
    }
    call_run(c, &call);
    if (call.rc < 0) {
        call_take_error(&call, err);
        rc = core_error_wrap(err, "checking blob %s of \"%s\"", digest, name);
        goto out;
    }
    if (call.x.resp.status == 200) {
        *exists_out = true;
    } else if (call.x.resp.status != 404) {
        status_error(&call, err);
        rc = core_error_wrap(err, "checking blob %s of \"%s\"", digest, name);
    }
out:
    core_free(name);
    call_dispose(&call);
    return rc;
}

int berth_oci_blob_delete(berth_oci_client *c, const berth_oci_ref *repo, const char *digest,
                          berth_error **err)
{
    oci_call call;
    char *name = NULL;
    int rc = 0;

    BERTH_ARG_CHECK(c && repo && repo->repository && digest);
    call_init(&call, "DELETE", api_host(repo));
    call.repo = repo->repository;
    call.path = core_sprintf("/v2/%s/blobs/%s", repo->repository, digest);
    call.retry = true;
    name = ref_name(repo, NULL);
    if (!call.path || !name) {
        rc = oom(err);
        goto out;
    }
    call_run(c, &call);
    if (call.rc < 0) {
        call_take_error(&call, err);
        rc = core_error_wrap(err, "deleting blob %s of \"%s\"", digest, name);
        goto out;
    }
    if (!is_2xx(call.x.resp.status)) {
        rc = status_error(&call, err);
        if (rc == BERTH_ENOTFOUND)
            rc = core_error_wrap(err, "blob %s of \"%s\" not found", digest, name);
        else
            rc = core_error_wrap(err, "deleting blob %s of \"%s\"", digest, name);
    }
out:
    core_free(name);
    call_dispose(&call);
    return rc;
}

/* ------------------------------------------------------------------ blob upload */

enum { P_HEAD = 0, P_START, P_DATA, P_CLOSE, P_DONE, P_FAILED };

/* Large blobs go in chunked PATCHes so no single request carries more than chunk_size bytes
 * (proxies and registries often cap request bodies); small ones in one PUT. */
static bool use_chunks(const berth_oci_client *c, const berth_oci_upload *u)
{
    return c->chunk_size > 0 && u->size > c->chunk_size;
}

typedef struct push_item {
    berth_oci_client *c;
    const berth_oci_upload *u;
    int state;
    bool skipped;
    bool mount;        /* still try the cross-repository mount */
    char *location;    /* newest upload Location, absolute */
    int64_t offset;    /* bytes the registry holds (chunked) */
    int64_t chunk_len; /* bytes of the current request body */
    int64_t pos;       /* bytes of the current body read so far */
    int restarts;
    int64_t delay_ms;
    int fd;
    char *url;          /* request URL built for this phase */
    char range_hdr[80]; /* Content-Range of a PATCH */
    progress prog;
    oci_call call;
    int rc;
    berth_error *err;
} push_item;

static ssize_t push_source(void *payload, void *buf, size_t cap)
{
    push_item *it = payload;
    int64_t left = it->chunk_len - it->pos;
    size_t n = (int64_t)cap < left ? cap : (size_t)left;
    if (n == 0)
        return 0;
    if (it->u->data) {
        memcpy(buf, (const char *)it->u->data + it->offset + it->pos, n);
    } else {
        ssize_t r;
        do
            r = pread(it->fd, buf, n, (off_t)(it->offset + it->pos));
        while (r < 0 && errno == EINTR);
        if (r <= 0)
            return BERTH_EIO; /* the file shrank under us */
        n = (size_t)r;
    }
    it->pos += (int64_t)n;
    progress_report(&it->prog, it->offset + it->pos, false);
    return (ssize_t)n;
}

static void push_prepare(void *payload, core_http_xfer *x, const char **extra)
{
    push_item *it = payload;
    (void)x;
    it->pos = 0;
    if (it->range_hdr[0])
        *extra = it->range_hdr;
}

static void item_fail(push_item *it, int rc, berth_error *e)
{
    it->state = P_FAILED;
    it->rc = rc;
    berth_error_free(it->err);
    it->err = e;
}

/* A failed upload step: start a new session, or give up. */
static void item_restart(push_item *it, oci_call *call)
{
    berth_oci_client *c = it->c;
    berth_error *e = NULL;
    int rc;
    bool transient;
    if (call->rc < 0) {
        rc = call->rc;
        call_take_error(call, &e);
        transient = rc == BERTH_ENET || rc == BERTH_ETIMEOUT;
    } else {
        long st = call->x.resp.status;
        rc = status_error(call, &e);
        transient = st == 404 || st == 416 || retryable_status(st);
    }
    if (transient && it->restarts < c->max_retries) {
        berth_error_free(e); /* a new session is safe: try again */
        it->delay_ms = backoff_ms(c, it->restarts);
        it->restarts++;
        it->state = P_START;
        it->offset = 0;
        core_free(it->location);
        it->location = NULL;
        return;
    }
    item_fail(it, rc, e);
}

static int check_pushed_digest(push_item *it, oci_call *call)
{
    char *dcd = core_http_resp_header(&call->x.resp, "Docker-Content-Digest");
    if (dcd && core_str_has_prefix(dcd, "sha256:") && strcmp(dcd, it->u->digest) != 0) {
        berth_error *e = NULL;
        core_error_set(&e, BERTH_EVERIFY, "registry stored digest %.80s", dcd);
        core_free(dcd);
        item_fail(it, BERTH_EVERIFY, e);
        return BERTH_EVERIFY;
    }
    core_free(dcd);
    return 0;
}

/* Set up the call of the item's next step. Returns 0, or <0 when the item failed. */
static int item_build(push_item *it, const berth_oci_ref *repo)
{
    berth_oci_client *c = it->c;
    oci_call *call = &it->call;
    const char *digest = it->u->digest;

    call_dispose(call);
    core_free(it->url);
    it->url = NULL;
    it->range_hdr[0] = '\0';
    switch (it->state) {
    case P_HEAD:
        call_init(call, "HEAD", api_host(repo));
        call->scope_method = "PUT"; /* one token for the whole push */
        call->path = core_sprintf("/v2/%s/blobs/%s", repo->repository, digest);
        call->retry = true;
        call->follow_redirects = true;
        break;
    case P_START:
        call_init(call, "POST", api_host(repo));
        if (it->mount) {
            char *d = core_url_escape(digest);
            char *f = core_url_escape(it->u->mount_from);
            if (d && f)
                call->path =
                    core_sprintf("/v2/%s/blobs/uploads/?mount=%s&from=%s", repo->repository, d, f);
            core_free(d);
            core_free(f);
        } else {
            call->path = core_sprintf("/v2/%s/blobs/uploads/", repo->repository);
        }
        call->retry = true; /* opening a session twice is harmless */
        break;
    case P_DATA:
        if (use_chunks(c, it->u)) {
            int64_t left = it->u->size - it->offset;
            it->chunk_len = left < c->chunk_size ? left : c->chunk_size;
            call_init(call, "PATCH", api_host(repo));
            call->url = it->location;
            snprintf(it->range_hdr, sizeof(it->range_hdr), "Content-Range: %lld-%lld",
                     (long long)it->offset, (long long)(it->offset + it->chunk_len - 1));
        } else {
            char *d = core_url_escape(digest);
            it->offset = 0;
            it->chunk_len = it->u->size;
            call_init(call, "PUT", api_host(repo));
            if (d)
                it->url = core_sprintf("%s%sdigest=%s", it->location,
                                       strchr(it->location, '?') ? "&" : "?", d);
            core_free(d);
            if (!it->url)
                return BERTH_ENOMEM;
            call->url = it->url;
        }
        call_add_header(call, "Content-Type: application/octet-stream");
        call->source = push_source;
        call->source_payload = it;
        call->source_len = it->chunk_len;
        call->prepare = push_prepare;
        call->prepare_payload = it;
        break;
    case P_CLOSE: {
        char *d = core_url_escape(digest);
        call_init(call, "PUT", api_host(repo));
        if (d)
            it->url = core_sprintf("%s%sdigest=%s", it->location,
                                   strchr(it->location, '?') ? "&" : "?", d);
        core_free(d);
        if (!it->url)
            return BERTH_ENOMEM;
        call->url = it->url;
        call->retry = true; /* closing with an empty body is idempotent */
        break;
    }
    default:
        return BERTH_EINVAL;
    }
    call->repo = repo->repository;
    if (it->u->mount_from && it->state != P_DATA && it->state != P_CLOSE)
        call->mount_from = it->u->mount_from;
    if (!call->url && !call->path)
        return BERTH_ENOMEM;
    return 0;
}

static void item_result(push_item *it)
{
    oci_call *call = &it->call;
    berth_error *e = NULL;
    long st = call->rc < 0 ? 0 : call->x.resp.status;

    switch (it->state) {
    case P_HEAD:
        if (call->rc < 0) {
            int rc = call_take_error(call, &e);
            item_fail(it, rc, e);
        } else if (st == 200) {
            it->state = P_DONE;
            it->skipped = true;
        } else if (st == 404) {
            it->state = P_START;
        } else {
            int rc = status_error(call, &e);
            item_fail(it, rc, e);
        }
        break;
    case P_START:
        if (call->rc == 0 && st == 201 && it->mount) {
            it->state = P_DONE;
            progress_report(&it->prog, it->u->size, true);
        } else if (call->rc == 0 && st == 202) {
            char *loc = core_http_resp_header(&call->x.resp, "Location");
            if (!loc) {
                core_error_set(&e, BERTH_ERROR, "POST %s: 202 without a Location header",
                               call->req_url);
                item_fail(it, BERTH_ERROR, e);
                break;
            }
            core_free(it->location);
            it->location = core_url_resolve(call->req_url, loc);
            core_free(loc);
            if (!it->location) {
                core_error_set(&e, BERTH_ERROR, "POST %s: unusable Location header", call->req_url);
                item_fail(it, BERTH_ERROR, e);
                break;
            }
            it->offset = 0;
            it->state = P_DATA;
        } else if (it->mount && call->rc == 0) {
            it->mount = false; /* the registry refused the mount: upload instead */
        } else if (call->rc < 0) {
            int rc = call_take_error(call, &e);
            item_fail(it, rc, e);
        } else {
            int rc = status_error(call, &e);
            item_fail(it, rc, e);
        }
        break;
    case P_DATA:
        if (call->rc < 0 || !is_2xx(st)) {
            item_restart(it, call);
            break;
        }
        if (use_chunks(it->c, it->u)) {
            char *loc = core_http_resp_header(&call->x.resp, "Location");
            if (loc) {
                char *abs = core_url_resolve(call->req_url, loc);
                core_free(loc);
                if (abs) {
                    core_free(it->location);
                    it->location = abs;
                }
            }
            it->offset += it->chunk_len;
            if (it->offset >= it->u->size)
                it->state = P_CLOSE;
        } else if (check_pushed_digest(it, call) == 0) {
            it->state = P_DONE;
            progress_report(&it->prog, it->u->size, true);
        }
        break;
    case P_CLOSE:
        if (call->rc < 0 || !is_2xx(st)) {
            item_restart(it, call);
            break;
        }
        if (check_pushed_digest(it, call) == 0) {
            it->state = P_DONE;
            progress_report(&it->prog, it->u->size, true);
        }
        break;
    default:
        break;
    }
}

static int item_open(push_item *it, berth_error **err)
{
    struct stat sb;
    if (it->u->data || it->fd >= 0)
        return 0;
    it->fd = open(it->u->path, O_RDONLY | O_CLOEXEC);
    if (it->fd < 0)
        return core_error_errno(err, errno, "opening blob file \"%s\"", it->u->path);
    if (fstat(it->fd, &sb) < 0)
        return core_error_errno(err, errno, "reading blob file \"%s\"", it->u->path);
    if ((int64_t)sb.st_size != it->u->size)
        return core_error_set(err, BERTH_EINVAL,
                              "blob file \"%s\" has %lld bytes, the descriptor says %lld",
                              it->u->path, (long long)sb.st_size, (long long)it->u->size);
    return 0;
}

/* Run one round over items in states [from, to]; only_first limits it to the first one. */
static int push_round(berth_oci_client *c, const berth_oci_ref *repo, push_item *items, size_t n,
                      bool only_first, berth_error **err)
{
    oci_call **calls = core_calloc(n ? n : 1, sizeof(*calls));
    push_item **who = core_calloc(n ? n : 1, sizeof(*who));
    size_t k = 0;
    int64_t delay = 0;
    int rc = 0;

    if (!calls || !who) {
        rc = oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (items[i].state < P_DONE && items[i].delay_ms > delay)
            delay = items[i].delay_ms;
    do_sleep(c, delay);
    for (size_t i = 0; i < n; i++) {
        push_item *it = &items[i];
        it->delay_ms = 0;
        if (it->state >= P_DONE)
            continue;
        if (it->state == P_START) {
            berth_error *e = NULL;
            int orc = item_open(it, &e);
            if (orc < 0) {
                item_fail(it, orc, e);
                continue;
            }
        }
        if (item_build(it, repo) < 0) {
            rc = oom(err);
            goto out;
        }
        calls[k] = &it->call;
        who[k++] = it;
        if (only_first)
            break;
    }
    calls_run(c, calls, k);
    for (size_t j = 0; j < k; j++)
        item_result(who[j]);
out:
    core_free(calls);
    core_free(who);
    return rc;
}

int berth_oci_blobs_push(berth_oci_client *c, const berth_oci_ref *repo,
                         const berth_oci_upload *blobs, size_t n, size_t *skipped_out,
                         berth_error **err)
{
    push_item *items = NULL;
    char *name = NULL;
    size_t skipped = 0;
    int rc = 0;

    BERTH_ARG_CHECK(c && repo && repo->repository && (blobs || n == 0));
    if (skipped_out)
        *skipped_out = 0;
    if (n == 0)
        return 0;
    if (!(name = ref_name(repo, NULL)) || !(items = core_calloc(n, sizeof(*items)))) {
        rc = oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        push_item *it = &items[i];
        it->c = c;
        it->u = &blobs[i];
        it->fd = -1;
        it->mount = blobs[i].mount_from != NULL;
        if (!blobs[i].digest || !berth_oci_digest_is_valid(blobs[i].digest) || blobs[i].size < 0 ||
            (!blobs[i].data && !blobs[i].path)) {
            rc = core_error_set(err, BERTH_EINVAL, "pushing to \"%s\": invalid blob #%zu", name, i);
            goto out;
        }
        progress_init(&it->prog, c, blobs[i].digest, blobs[i].size);
        for (size_t j = 0; j < i; j++)
            if (strcmp(blobs[j].digest, blobs[i].digest) == 0)
                it->state = P_DONE; /* the same bytes twice: push once */
    }
    /* first HEAD alone: it settles the scheme and the token for the rest */
    if ((rc = push_round(c, repo, items, n, true, err)) < 0)
        goto out;
    for (size_t guard = 0; guard < 10000; guard++) {
        bool active = false;
        for (size_t i = 0; i < n; i++)
            if (items[i].state < P_DONE)
                active = true;
        if (!active)
            break;
        if ((rc = push_round(c, repo, items, n, false, err)) < 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (items[i].state == P_FAILED) {
            if (err && !*err && items[i].err) {
                *err = items[i].err;
                items[i].err = NULL;
            } else {
                core_error_set(err, items[i].rc, "%s", berth_error_message(items[i].err));
            }
            rc = core_error_wrap(err, "pushing blob %s to \"%s\"", items[i].u->digest, name);
            goto out;
        }
        if (items[i].state != P_DONE) {
            rc = core_error_set(err, BERTH_ERROR, "pushing blob %s to \"%s\": did not finish",
                                items[i].u->digest, name);
            goto out;
        }
        if (items[i].skipped)
            skipped++;
    }
    if (skipped_out)
        *skipped_out = skipped;
out:
    if (items) {
        for (size_t i = 0; i < n; i++) {
            call_dispose(&items[i].call);
            core_free(items[i].location);
            core_free(items[i].url);
            berth_error_free(items[i].err);
            if (items[i].fd >= 0)
                close(items[i].fd);
        }
    }
    core_free(items);
    core_free(name);
    return rc;
}

/* ------------------------------------------------------------------ tags */

/* The target of `Link: <url>; rel="next"` (heap), or NULL. */
static char *link_next(const char *link)
{
    const char *p = link;
    while (p && *p) {
        const char *lt = strchr(p, '<');
        if (!lt)
            return NULL;
        const char *gt = strchr(lt, '>');
        if (!gt)
            return NULL;
        const char *end = strchr(gt, ',');
        size_t plen = end ? (size_t)(end - gt) : strlen(gt);
        /* look for rel="next" or rel=next among the params */
        for (size_t i = 0; i + 3 <= plen; i++) {
            if (core_strncasecmp(gt + i, "rel", 3) != 0)
                continue;
            const char *q = gt + i + 3;
            while (*q == ' ')
                q++;
            if (*q != '=')
                continue;
            q++;
            while (*q == ' ')
                q++;
            if (*q == '"')
                q++;
            if (core_strncasecmp(q, "next", 4) == 0 &&
                (q[4] == '"' || q[4] == ';' || q[4] == ',' || q[4] == ' ' || !q[4]))
                return core_strndup(lt + 1, (size_t)(gt - lt - 1));
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* Resolve a Link target against the request URL, refusing other origins. */
static int next_page_url(char **out, const oci_call *call, berth_error **err)
{
    char *link = core_http_resp_header(&call->x.resp, "Link");
    char *target = link ? link_next(link) : NULL;
    char *abs = NULL, *o1 = NULL, *o2 = NULL;
    int rc = 0;

    *out = NULL;
    if (!target)
        goto out;
    abs = core_url_resolve(call->req_url, target);
    o1 = abs ? core_url_origin(abs) : NULL;
    o2 = core_url_origin(call->req_url);
    if (!abs || !o1 || !o2 || strcmp(o1, o2) != 0) {
        rc = core_error_set(err, BERTH_EINVAL, "refusing Link \"%.100s\" to another origin than %s",
                            target, o2 ? o2 : "the registry");
        goto out;
    }
    *out = abs;
    abs = NULL;
out:
    core_free(link);
    core_free(target);
    core_free(abs);
    core_free(o1);
    core_free(o2);
    return rc;
}

int berth_oci_tags_list(char ***tags_out, size_t *n_out, berth_oci_client *c,
                        const berth_oci_ref *repo, int page_size, berth_error **err)
{
    char **tags = NULL;
    size_t ntags = 0, cap = 0;
    char *name = NULL, *next = NULL;
    oci_call call;
    json_t *root = NULL;
    int rc = 0;

    BERTH_ARG_CHECK(tags_out && n_out && c && repo && repo->repository);
    *tags_out = NULL;
    *n_out = 0;
    call_init(&call, "GET", api_host(repo));
    if (!(name = ref_name(repo, NULL))) {
        rc = oom(err);
        goto out;
    }
    for (int page = 0; page < PAGES_MAX; page++) {
        call_dispose(&call);
        call_init(&call, "GET", api_host(repo));
        call.repo = repo->repository;
        call.retry = true;
        call.follow_redirects = true;
        call.max_body = TAGS_PAGE_MAX_BODY;
        if (next) {
            call.url = next;
        } else if (!(call.path = core_sprintf("/v2/%s/tags/list?n=%d", repo->repository,
                                              page_size > 0 ? page_size : 1000))) {
            rc = oom(err);
            goto out;
        }
        call_run(c, &call);
        if (call.rc < 0) {
            call_take_error(&call, err);
            rc = core_error_wrap(err, "listing tags of \"%s\"", name);
            goto out;
        }
        if (call.x.resp.status != 200) {
            rc = status_error(&call, err);
            if (rc == BERTH_ENOTFOUND)
                rc = core_error_wrap(err, "repository \"%s\" not found", name);
            else
                rc = core_error_wrap(err, "listing tags of \"%s\"", name);
            goto out;
        }
        json_error_t jerr;
        json_decref(root);
        root = json_loadb(call.x.resp.body.ptr ? call.x.resp.body.ptr : "", call.x.resp.body.len, 0,
                          &jerr);
        if (!json_is_object(root)) {
            rc = core_error_set(err, BERTH_EINVAL,
                                "listing tags of \"%s\": reply is not a JSON "
                                "object",
                                name);
            goto out;
        }
        json_t *arr = json_object_get(root, "tags");
        if (arr && !json_is_null(arr) && !json_is_array(arr)) {
            rc = core_error_set(err, BERTH_EINVAL, "listing tags of \"%s\": \"tags\" is not a list",
                                name);
            goto out;
        }
        for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr); i++) {
            const char *t = json_string_value(json_array_get(arr, i));
            if (!t)
                continue;
            if (ntags == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                char **nv = core_realloc(tags, ncap * sizeof(*nv));
                if (!nv) {
                    rc = oom(err);
                    goto out;
                }
                tags = nv;
                cap = ncap;
            }
            if (!(tags[ntags] = core_strdup(t))) {
                rc = oom(err);
                goto out;
            }
            ntags++;
        }
        char *nu = NULL;
        if ((rc = next_page_url(&nu, &call, err)) < 0) {
            rc = core_error_wrap(err, "listing tags of \"%s\"", name);
            goto out;
        }
        if (!nu || (call.req_url && strcmp(nu, call.req_url) == 0)) {
            core_free(nu);
            break;
        }
        core_free(next);
        next = nu;
        call.url = NULL; /* points at the old next: not used again */
    }
    *tags_out = tags;
    *n_out = ntags;
    tags = NULL;
out:
    if (tags) {
        for (size_t i = 0; i < ntags; i++)
            core_free(tags[i]);
        core_free(tags);
    }
    json_decref(root);
    call_dispose(&call);
    core_free(next);
    core_free(name);
    return rc;
}

/* ------------------------------------------------------------------ referrers */

char *berth_oci_referrers_tag(const char *digest)
{
    const char *colon = digest ? strchr(digest, ':') : NULL;
    if (!colon || colon == digest || !colon[1])
        return NULL;
    size_t al = (size_t)(colon - digest), el = strlen(colon + 1);
    if (al > 32)
        al = 32;
    if (el > 64)
        el = 64;
    char *t = core_sprintf("%.*s-%.*s", (int)al, digest, (int)el, colon + 1);
    if (!t)
        return NULL;
    for (char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            *p = '-';
    return t;
}

static bool is_index_type(const char *ct)
{
    return ct && (strcmp(ct, BERTH_MT_OCI_INDEX) == 0 || strcmp(ct, BERTH_MT_DOCKER_LIST) == 0);
}

/* Append the descriptors of an index document to *v, keeping those of artifact_type. */
static int take_descs(berth_oci_desc **v, size_t *n, const void *data, size_t len,
                      const char *ctype, const char *artifact_type, bool *is_index,
                      berth_error **err)
{
    berth_oci_manifest m;
    int rc;

    memset(&m, 0, sizeof(m));
    *is_index = false;
    if ((rc = berth_oci_manifest_parse(&m, data, len, is_index_type(ctype) ? ctype : NULL, err)) <
        0)
        return rc;
    if (!m.is_index) {
        berth_oci_manifest_dispose(&m);
        return 0;
    }
    *is_index = true;
    if (m.layers_len > 0) {
        berth_oci_desc *nv = core_realloc(*v, (*n + m.layers_len) * sizeof(*nv));
        if (!nv) {
            berth_oci_manifest_dispose(&m);
            return oom(err);
        }
        *v = nv;
        for (size_t i = 0; i < m.layers_len; i++) {
            berth_oci_desc *d = &m.layers[i];
            if (artifact_type && (!d->artifact_type || strcmp(d->artifact_type, artifact_type))) {
                berth_oci_desc_dispose(d);
                continue;
            }
            (*v)[(*n)++] = *d; /* moved */
        }
        core_free(m.layers);
        m.layers = NULL;
        m.layers_len = 0;
    }
    berth_oci_manifest_dispose(&m);
    return 0;
}

int berth_oci_referrers(berth_oci_desc **descs_out, size_t *n_out, bool *used_fallback_out,
                        berth_oci_client *c, const berth_oci_ref *repo, const char *subject_digest,
                        const char *artifact_type, berth_error **err)
{
    berth_oci_desc *v = NULL;
    size_t n = 0;
    char *name = NULL, *next = NULL, *tag = NULL, *ct = NULL, *filters = NULL, *esc = NULL;
    oci_call call;
    berth_oci_blob b = {0};
    bool fallback = false, is_index;
    int rc = 0;

    BERTH_ARG_CHECK(descs_out && n_out && c && repo && repo->repository && subject_digest);
    *descs_out = NULL;
    *n_out = 0;
    if (used_fallback_out)
        *used_fallback_out = false;
    call_init(&call, "GET", api_host(repo));
    if (!(name = ref_name(repo, subject_digest))) {
        rc = oom(err);
        goto out;
    }
    if (!berth_oci_digest_is_valid(subject_digest)) {
        rc = core_error_set(err, BERTH_EINVAL, "referrers of \"%s\": invalid digest", name);
        goto out;
    }
    if (artifact_type && !(esc = core_url_escape(artifact_type))) {
        rc = oom(err);
        goto out;
    }
    for (int page = 0; page < PAGES_MAX; page++) {
        call_dispose(&call);
        call_init(&call, "GET", api_host(repo));
        call.repo = repo->repository;
        call.retry = true;
        call.follow_redirects = true;
        call.max_body = BERTH_OCI_MANIFEST_MAX;
        call_add_header(&call, "Accept: " BERTH_MT_OCI_INDEX);
        if (next) {
            call.url = next;
        } else if (!(call.path =
                         core_sprintf("/v2/%s/referrers/%s%s%s", repo->repository, subject_digest,
                                      esc ? "?artifactType=" : "", esc ? esc : ""))) {
            rc = oom(err);
            goto out;
        }
        call_run(c, &call);
        if (call.rc < 0) {
            call_take_error(&call, err);
            rc = core_error_wrap(err, "listing referrers of \"%s\"", name);
            goto out;
        }
        long st = call.x.resp.status;
        if (st == 404 && page == 0 && !body_contains(&call.x.resp.body, "NAME_UNKNOWN")) {
            fallback = true; /* no referrers API: use the tag schema */
            break;
        }
        if (st != 200) {
            rc = status_error(&call, err);
            rc = core_error_wrap(err, "listing referrers of \"%s\"", name);
            goto out;
        }
        core_free(ct);
        ct = content_type(&call.x.resp);
        core_free(filters);
        filters = core_http_resp_header(&call.x.resp, "OCI-Filters-Applied");
        bool applied = filters && strstr(filters, "artifactType");
        if ((rc = take_descs(&v, &n, call.x.resp.body.ptr ? call.x.resp.body.ptr : "",
                             call.x.resp.body.len, ct, applied ? NULL : artifact_type, &is_index,
                             err)) < 0) {
            rc = core_error_wrap(err, "listing referrers of \"%s\"", name);
            goto out;
        }
        char *nu = NULL;
        if ((rc = next_page_url(&nu, &call, err)) < 0) {
            rc = core_error_wrap(err, "listing referrers of \"%s\"", name);
            goto out;
        }
        if (!nu || (call.req_url && strcmp(nu, call.req_url) == 0)) {
            core_free(nu);
            break;
        }
        core_free(next);
        next = nu;
        call.url = NULL;
    }
    if (fallback) {
        berth_error *e = NULL;
        if (!(tag = berth_oci_referrers_tag(subject_digest))) {
            rc = oom(err);
            goto out;
        }
        rc = manifest_fetch(&b, c, repo, tag, &e);
        if (rc == BERTH_ENOTFOUND) {
            berth_error_free(e); /* no referrers tag: nothing refers to the subject */
            rc = 0;
        } else if (rc < 0) {
            if (err && !*err)
                *err = e;
            else
                berth_error_free(e); /* the caller's err was already set */
            rc = core_error_wrap(err, "listing referrers of \"%s\"", name);
            goto out;
        } else if ((rc = take_descs(&v, &n, b.data, b.len, b.media_type, artifact_type, &is_index,
                                    err)) < 0) {
            rc = core_error_wrap(err, "listing referrers of \"%s\" (tag \"%s\")", name, tag);
            goto out;
        }
    }
    if (used_fallback_out)
        *used_fallback_out = fallback;
    *descs_out = v;
    *n_out = n;
    v = NULL;
    n = 0;
out:
    for (size_t i = 0; i < n; i++)
        berth_oci_desc_dispose(&v[i]);
    core_free(v);
    berth_oci_blob_dispose(&b);
    call_dispose(&call);
    core_free(next);
    core_free(name);
    core_free(tag);
    core_free(ct);
    core_free(filters);
    core_free(esc);
    return rc;
}

static json_t *desc_json(const berth_oci_desc *d)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "mediaType", json_string(d->media_type ? d->media_type : ""));
    bad |= json_object_set_new(o, "digest", json_string(d->digest));
    bad |= json_object_set_new(o, "size", json_integer((json_int_t)d->size));
    if (d->artifact_type)
        bad |= json_object_set_new(o, "artifactType", json_string(d->artifact_type));
    if (d->annotations_len > 0) {
        json_t *a = json_object();
        bad |= json_object_set_new(o, "annotations", a);
        for (size_t i = 0; a && i < d->annotations_len; i++)
            bad |=
                json_object_set_new(a, d->annotations[i].key, json_string(d->annotations[i].value));
    }
    if (d->platform_os || d->platform_arch) {
        json_t *p = json_object();
        bad |= json_object_set_new(o, "platform", p);
        if (p && d->platform_arch)
            bad |= json_object_set_new(p, "architecture", json_string(d->platform_arch));
        if (p && d->platform_os)
            bad |= json_object_set_new(p, "os", json_string(d->platform_os));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int berth_oci_referrers_tag_add(berth_oci_client *c, const berth_oci_ref *repo,
                                const char *subject_digest, const berth_oci_desc *desc,
                                berth_error **err)
{
    char *tag = NULL, *name = NULL, *text = NULL;
    berth_oci_blob b = {0};
    berth_error *e = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    int rc;

    BERTH_ARG_CHECK(c && repo && repo->repository && subject_digest && desc && desc->digest);
    if (!(tag = berth_oci_referrers_tag(subject_digest)) || !(name = ref_name(repo, NULL))) {
        rc = oom(err);
        goto out;
    }
    rc = manifest_fetch(&b, c, repo, tag, &e);
    if (rc == BERTH_ENOTFOUND) {
        berth_error_free(e); /* no index yet: start one */
        e = NULL;
        root = json_pack("{s:i,s:s,s:[]}", "schemaVersion", 2, "mediaType", BERTH_MT_OCI_INDEX,
                         "manifests");
        if (!root) {
            rc = oom(err);
            goto out;
        }
    } else if (rc < 0) {
        if (err && !*err)
            *err = e;
        else
            berth_error_free(e); /* keep the caller's error */
        rc = core_error_wrap(err, "updating referrers tag \"%s\" of \"%s\"", tag, name);
        goto out;
    } else {
        root = json_loadb(b.data, b.len, 0, &jerr);
        if (!json_is_object(root) || !json_is_array(json_object_get(root, "manifests"))) {
            rc = core_error_set(err, BERTH_EINVAL,
                                "referrers tag \"%s\" of \"%s\" does not hold an image index", tag,
                                name);
            goto out;
        }
    }
    json_t *arr = json_object_get(root, "manifests");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *d = json_string_value(json_object_get(json_array_get(arr, i), "digest"));
        if (d && strcmp(d, desc->digest) == 0) {
            rc = 0; /* already listed */
            goto out;
        }
    }
    json_t *dj = desc_json(desc);
    if (!dj || json_array_append_new(arr, dj) < 0) {
        rc = oom(err);
        goto out;
    }
    if (!(text = json_dumps(root, JSON_COMPACT))) {
        rc = oom(err);
        goto out;
    }
    rc = manifest_put_target(NULL, c, repo, tag, BERTH_MT_OCI_INDEX, text, strlen(text), err);
    if (rc < 0)
        rc = core_error_wrap(err, "updating referrers tag \"%s\" of \"%s\"", tag, name);
out:
    free(text); /* jansson allocates with malloc */
    json_decref(root);
    berth_oci_blob_dispose(&b);
    core_free(tag);
    core_free(name);
    return rc;
}
