/*
 * core/http_curl.c: the libcurl transport behind core/http.h, plus the URL and header helpers.
 * This is the only file of berth that includes <curl/curl.h>.
 *
 * Design: a core_http is a transport vtable; core_http_run() only dispatches to it, so tests can
 * replace the network. The curl transport owns one CURLM (whose connection cache pools
 * connections across runs) and one CURLSH sharing the DNS and TLS session caches, plus a small
 * pool of idle easy handles that are reset and reused. A run adds one easy handle per transfer to
 * the multi handle and drives them all from the calling thread with curl_multi_perform and
 * curl_multi_poll until every transfer has reported CURLMSG_DONE.
 *
 * Response bodies are routed once the status of the final response is known (cached on the first
 * body callback, reset by each new status line): a 2xx body goes to the caller's sink straight
 * from curl's buffer (no copy), anything else to resp.body with a ceiling. Header blocks are
 * captured per response and restarted on each status line, so redirects and 1xx responses leave
 * only the final block. Nothing here retries or authenticates; see core/http.h.
 *
 * Proxies: nothing sets CURLOPT_PROXY or CURLOPT_NOPROXY, so libcurl honours the environment:
 * http_proxy (lower-case only, by design of libcurl), https_proxy or HTTPS_PROXY, all_proxy or
 * ALL_PROXY, and no_proxy or NO_PROXY.
 *
 * Threading: a core_http is used by one thread at a time, so the share handle needs no locks.
 */
#include "core/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#define DEFAULT_MAX_BODY ((size_t)4 << 20)     /* in-memory 2xx body ceiling */
#define ERROR_BODY_MAX ((size_t)64 << 10)      /* non-2xx bodies are cut silently here */
#define HEADERS_MAX ((size_t)1 << 20)          /* header block ceiling */
#define DOWNLOAD_BUFFER_BYTES (512L * 1024)    /* CURLOPT_BUFFERSIZE (libcurl maximum) */
#define UPLOAD_BUFFER_BYTES (2L * 1024 * 1024) /* CURLOPT_UPLOAD_BUFFERSIZE (maximum) */
#define DEFAULT_CONNECT_TIMEOUT_MS 30000L
#define DEFAULT_LOW_SPEED_TIME_S 60L
#define CANCEL_POLL_MS 100 /* the longest a cancelled transfer goes on */
#define MAX_REDIRECTS 10L
#define IDLE_POOL 16    /* easy handles kept for reuse */
#define MSG_URL_MAX 120 /* longer URLs lose their query in messages */

struct core_http {
    core_http_transport t;
    berth_mono_ms deadline; /* every transfer ends by then; 0: no deadline */
};

/* ---- the curl transport ---- */

typedef struct curl_transport {
    CURLM *multi;
    CURLSH *share;
    char *user_agent;
    char *ca_file;
    char *cert_file;
    char *key_file;
    char *ca_pem;
    char *cert_pem;
    char *key_pem;
    bool skip_verify;
    bool verbose;
    long connect_timeout_ms;
    long low_speed_time_s;
    CURL *idle[IDLE_POOL];
    size_t n_idle;
} curl_transport;

/* Why a callback stopped a transfer (the CURLcode alone cannot tell). */
typedef enum {
    ABORT_NONE = 0,
    ABORT_SINK,    /* the sink returned a negative code */
    ABORT_SOURCE,  /* the source returned a negative code */
    ABORT_BODY,    /* 2xx body over max_body */
    ABORT_HEADERS, /* header block over HEADERS_MAX */
    ABORT_NOMEM,
    ABORT_CANCEL, /* req.cancel was set */
} abort_kind;

/* Per-transfer state for one run; the easy handle's callbacks get a pointer to it. */
typedef struct xstate {
    core_http_xfer *x;
    curl_transport *ct;
    CURL *easy;
    struct curl_slist *headers;
    size_t index;        /* position in the run, for the verbose trace */
    bool added;          /* in the multi handle */
    bool done;           /* CURLMSG_DONE seen (or failed before starting) */
    bool routed;         /* body route decided for the current response */
    bool to_sink;        /* current response body goes to the sink */
    size_t body_limit;   /* ceiling for resp.body in buffer mode */
    bool limit_is_error; /* 2xx: exceeding is an error; otherwise cut silently */
    abort_kind abort;
    int abort_rc;
    char errbuf[CURL_ERROR_SIZE];
} xstate;

static const char *method_of(const core_http_req *req)
{
    return req->method ? req->method : "GET";
}

/* The URL as shown in messages: long query strings (upload state, signatures) become "?...". */
static void url_for_msg(char *out, size_t cap, const char *url)
{
    size_t len, keep;
    const char *q;

    if (!url)
        url = "(null)";
    len = strlen(url);
    q = strchr(url, '?');
    keep = len;
    if (q && len > MSG_URL_MAX)
        keep = (size_t)(q - url);
    if (keep + 5 > cap)
        keep = cap - 5;
    memcpy(out, url, keep);
    if (keep < len)
        memcpy(out + keep, "?...", 5);
    else
        out[keep] = '\0';
}

/* Set the transfer's error as "<METHOD> <url>: <detail>". */
static int xfer_fail(core_http_xfer *x, int code, const char *fmt, ...) BERTH_PRINTF(3, 4);
static int xfer_fail(core_http_xfer *x, int code, const char *fmt, ...)
{
    char url[MSG_URL_MAX + 8];
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    url_for_msg(url, sizeof(url), x->req.url);
    x->rc = code;
    return core_error_set(&x->err, code, "%s %s: %s", method_of(&x->req), url, detail);
}

/* curl's error text, one lowercase-initial line without trailing newline. */
static const char *curl_detail(xstate *s, CURLcode cc)
{
    size_t len = strlen(s->errbuf);
    if (len == 0)
        return curl_easy_strerror(cc);
    while (len > 0 && (s->errbuf[len - 1] == '\n' || s->errbuf[len - 1] == '\r'))
        s->errbuf[--len] = '\0';
    if (s->errbuf[0] >= 'A' && s->errbuf[0] <= 'Z' &&
        !(s->errbuf[1] >= 'A' && s->errbuf[1] <= 'Z')) /* keep acronyms such as "SSL" */
        s->errbuf[0] = (char)(s->errbuf[0] - 'A' + 'a');
    return s->errbuf;
}

static bool is_2xx(long status)
{
    return status >= 200 && status < 300;
}

/* ---- callbacks ---- */

/* Decide where the body of the current response goes, once per response. */
static void route_body(xstate *s)
{
    core_http_xfer *x = s->x;
    long status = 0;
    size_t max_body = x->req.max_body ? x->req.max_body : DEFAULT_MAX_BODY;

    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    x->resp.status = status;
    s->routed = true;
    if (is_2xx(status)) {
        s->to_sink = x->req.sink != NULL;
        s->body_limit = max_body;
        s->limit_is_error = true;
    } else {
        s->to_sink = false;
        s->body_limit = max_body < ERROR_BODY_MAX ? max_body : ERROR_BODY_MAX;
        s->limit_is_error = false;
    }
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    xstate *s = userdata;
    core_http_xfer *x = s->x;
    size_t len = size * nmemb; /* size is always 1 */
    size_t room;
    int rc;

    if (!s->routed)
        route_body(s);
    x->resp.body_bytes += (int64_t)len;
    if (s->to_sink) {
        rc = x->req.sink(x->req.sink_payload, data, len);
        if (rc < 0) {
            s->abort = ABORT_SINK;
            s->abort_rc = rc;
            return 0;
        }
        return len;
    }
    room = s->body_limit - x->resp.body.len;
    if (len > room) {
        if (s->limit_is_error) {
            s->abort = ABORT_BODY;
            s->abort_rc = BERTH_EINVAL;
            return 0;
        }
        if (room > 0 && berth_buf_put(&x->resp.body, data, room) < 0)
            goto nomem;
        return len; /* error bodies are cut silently */
    }
    if (berth_buf_put(&x->resp.body, data, len) < 0)
        goto nomem;
    return len;
nomem:
    s->abort = ABORT_NOMEM;
    s->abort_rc = BERTH_ENOMEM;
    return 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    xstate *s = userdata;
    core_http_xfer *x = s->x;
    size_t len = size * nmemb;

    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a redirect or a 1xx): keep only the final one. */
        berth_buf_clear(&x->resp.headers);
        berth_buf_clear(&x->resp.body);
        x->resp.body_bytes = 0;
        s->routed = false;
        return len;
    }
    if (len == 0 || data[0] == '\r' || data[0] == '\n')
        return len; /* end of the block */
    if (x->resp.headers.len + len > HEADERS_MAX) {
        s->abort = ABORT_HEADERS;
        s->abort_rc = BERTH_EINVAL;
        return 0;
    }
    if (berth_buf_put(&x->resp.headers, data, len) < 0) {
        s->abort = ABORT_NOMEM;
        s->abort_rc = BERTH_ENOMEM;
        return 0;
    }
    return len;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    xstate *s = userdata;
    core_http_xfer *x = s->x;
    ssize_t n = x->req.source(x->req.source_payload, buf, size * nitems);

    if (n < 0) {
        s->abort = ABORT_SOURCE;
        s->abort_rc = (int)n;
        return CURL_READFUNC_ABORT;
    }
    return (size_t)n;
}

/* ---- verbose trace with secrets redacted ---- */

static bool contains_ci(const char *s, size_t len, const char *needle)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= len; i++) {
        if (core_strncasecmp(s + i, needle, nl) == 0)
            return true;
    }
    return false;
}

/* Header names and query keys whose values are never printed. */
static bool is_secret_name(const char *name, size_t len)
{
    static const char *const words[] = {"authorization", "cookie", "token",         "secret",
                                        "password",      "passwd", "signature",     "credential",
                                        "api-key",       "apikey", "x-amz-security"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (contains_ci(name, len, words[i]))
            return true;
    }
    return len == 3 && core_strncasecmp(name, "sig", 3) == 0; /* Azure SAS */
}

/* Print text, replacing the values of secret query parameters with <redacted>. */
static void print_redacted_query(FILE *f, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        char c = s[i];
        fputc(c, f);
        i++;
        if (c != '?' && c != '&')
            continue;
        size_t k = i;
        while (k < len && s[k] != '=' && s[k] != '&' && s[k] != ' ' && s[k] != '#')
            k++;
        if (k < len && s[k] == '=' && is_secret_name(s + i, k - i)) {
            size_t v = k + 1;
            while (v < len && s[v] != '&' && s[v] != ' ' && s[v] != '#')
                v++;
            fwrite(s + i, 1, k + 1 - i, f);
            fputs("<redacted>", f);
            i = v;
        }
    }
}

static void print_header_line(FILE *f, const char *prefix, size_t index, const char *line,
                              size_t len)
{
    const char *colon = memchr(line, ':', len);

    fprintf(f, "[%zu] %s ", index, prefix);
    if (colon && is_secret_name(line, (size_t)(colon - line))) {
        const char *v = colon + 1;
        const char *end = line + len;
        fwrite(line, 1, (size_t)(colon - line) + 1, f);
        while (v < end && *v == ' ')
            v++;
        /* Keep the scheme ("Bearer", "Basic") of an (Proxy-)Authorization value only. */
        const char *sp = v;
        while (sp < end && *sp != ' ')
            sp++;
        if (sp < end && contains_ci(line, (size_t)(colon - line), "authorization"))
            fprintf(f, " %.*s", (int)(sp - v), v);
        fputs(" <redacted>\n", f);
        return;
    }
    print_redacted_query(f, line, len);
    fputc('\n', f);
}

static void print_block(FILE *f, const char *prefix, size_t index, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n')
            e++;
        size_t l = e;
        if (l > i && data[l - 1] == '\r')
            l--;
        if (l > i)
            print_header_line(f, prefix, index, data + i, l - i);
        i = e + 1;
    }
}

static int on_debug(CURL *easy, curl_infotype type, char *data, size_t size, void *userdata)
{
    xstate *s = userdata;
    (void)easy;
    switch (type) {
    case CURLINFO_TEXT:
        print_block(stderr, "*", s->index, data, size);
        break;
    case CURLINFO_HEADER_OUT:
        print_block(stderr, ">", s->index, data, size);
        break;
    case CURLINFO_HEADER_IN:
        print_block(stderr, "<", s->index, data, size);
        break;
    default: /* bodies and TLS records are not traced */
        break;
    }
    return 0;
}

/* ---- setting up one transfer ---- */

static bool has_header(const char *const *headers, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; headers && headers[i]; i++) {
        if (core_strncasecmp(headers[i], name, nl) == 0 && headers[i][nl] == ':')
            return true;
    }
    return false;
}

static CURL *easy_take(curl_transport *ct)
{
    if (ct->n_idle > 0)
        return ct->idle[--ct->n_idle];
    return curl_easy_init();
}

static void easy_give_back(curl_transport *ct, CURL *easy)
{
    if (!easy)
        return;
    if (ct->n_idle < IDLE_POOL) {
        /* Reset keeps the connection cache (in the multi), DNS and TLS sessions (share). */
        curl_easy_reset(easy);
        ct->idle[ct->n_idle++] = easy;
        return;
    }
    curl_easy_cleanup(easy);
}

/* libcurl calls this on every pass over the transfer (each curl_multi_perform), idle or not;
 * core_http_run keeps those passes at most CANCEL_POLL_MS apart when a transfer has a cancel
 * hook, so a cancel ends even a silent transfer (a watch with no events) within that time. */
static int on_progress(void *payload, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xstate *s = payload;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (*s->x->req.cancel) {
        s->abort = ABORT_CANCEL;
        return 1;
    }
    return 0;
}

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if ((cc = curl_easy_setopt(e, opt, val)) != CURLE_OK)                                      \
            goto fail;                                                                             \
    } while (0)

static int setup_easy(xstate *s)
{
    curl_transport *ct = s->ct;
    core_http_xfer *x = s->x;
    const core_http_req *req = &x->req;
    const char *method = method_of(req);
    bool has_mem_body = req->body != NULL && !req->source;
    bool upload = false;
    CURLcode cc = CURLE_OK;
    CURL *e;

    if (!req->url)
        return xfer_fail(x, BERTH_EINVAL, "request without url");
    if ((e = easy_take(ct)) == NULL)
        return xfer_fail(x, BERTH_ENOMEM, "cannot create a curl handle");
    s->easy = e;

    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_PRIVATE, (void *)s);
    SETOPT(CURLOPT_SHARE, ct->share);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, s->errbuf);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_USERAGENT, ct->user_agent);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, ct->connect_timeout_ms);
    if (req->low_speed_time_s >= 0) {
        SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SETOPT(CURLOPT_LOW_SPEED_TIME,
               req->low_speed_time_s > 0 ? req->low_speed_time_s : ct->low_speed_time_s);
    }
    if (req->cancel) {
        SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
        SETOPT(CURLOPT_XFERINFODATA, (void *)s);
        SETOPT(CURLOPT_NOPROGRESS, 0L);
    }
    if (req->timeout_ms > 0)
        SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    /* A size hint only: libcurl 7.88 refuses it on some reused handles (seen on HTTP/2 over
     * TLS), and the transfer works with the default buffer, so a refusal is not an error. */
    (void)curl_easy_setopt(e, CURLOPT_BUFFERSIZE, DOWNLOAD_BUFFER_BYTES);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, (void *)s);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)s);
    /* No CURLOPT_ACCEPT_ENCODING: bodies are hashed as sent. HTTP version is libcurl's default:
     * HTTP/2 when TLS negotiates it, HTTP/1.1 for plain http. */
    if (ct->ca_file) {
        /* CAINFO replaces the default bundle file, but the default CAPATH (Debian:
         * /etc/ssl/certs, a hashed directory read by OpenSSL) stays, so the system store AND
         * the extra CA are trusted. */
        SETOPT(CURLOPT_CAINFO, ct->ca_file);
    }
    if (ct->cert_file)
        SETOPT(CURLOPT_SSLCERT, ct->cert_file);
    if (ct->key_file)
        SETOPT(CURLOPT_SSLKEY, ct->key_file);
    if (ct->ca_pem) {
        /* The blob replaces the CA file; the default CAPATH stays, as with ca_file. */
        struct curl_blob b = {ct->ca_pem, strlen(ct->ca_pem), CURL_BLOB_NOCOPY};
        SETOPT(CURLOPT_CAINFO_BLOB, &b);
    }
    if (ct->cert_pem) {
        struct curl_blob b = {ct->cert_pem, strlen(ct->cert_pem), CURL_BLOB_NOCOPY};
        SETOPT(CURLOPT_SSLCERT_BLOB, &b);
        SETOPT(CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (ct->key_pem) {
        struct curl_blob b = {ct->key_pem, strlen(ct->key_pem), CURL_BLOB_NOCOPY};
        SETOPT(CURLOPT_SSLKEY_BLOB, &b);
        SETOPT(CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (ct->skip_verify) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (req->follow_redirects) {
        /* libcurl (>= 7.58, and port/scheme changes since 7.83) sends a custom Authorization
         * header only to the original host; CURLOPT_UNRESTRICTED_AUTH stays off. Tested by
         * http_redirect_to_other_host_drops_authorization. */
        SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
        SETOPT(CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    }
    if (ct->verbose) {
        SETOPT(CURLOPT_DEBUGFUNCTION, on_debug);
        SETOPT(CURLOPT_DEBUGDATA, (void *)s);
        SETOPT(CURLOPT_VERBOSE, 1L);
    }

    if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (req->source) {
        /* Streamed body: an upload (PUT semantics) whose verb is replaced for POST/PATCH.
         * A length of -1 makes libcurl use chunked encoding on HTTP/1.1. */
        upload = true;
        SETOPT(CURLOPT_UPLOAD, 1L);
        SETOPT(CURLOPT_READFUNCTION, on_read);
        SETOPT(CURLOPT_READDATA, (void *)s);
        SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->source_len);
        (void)curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER_BYTES); /* hint */
        if (strcmp(method, "PUT") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    } else if (has_mem_body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0 ||
               strcmp(method, "PATCH") == 0) {
        /* In-memory body (possibly empty): POSTFIELDS sends it without a copy of our own and
         * lets libcurl rewind it for a 307/308; the verb is replaced unless it is POST. An empty
         * PUT thus goes out with "Content-Length: 0". */
        upload = true;
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(has_mem_body ? req->body_len : 0));
        SETOPT(CURLOPT_POSTFIELDS, has_mem_body ? req->body : (const void *)"");
        (void)curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUFFER_BYTES); /* hint */
        if (strcmp(method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }

    for (size_t i = 0; req->headers && req->headers[i]; i++) {
        struct curl_slist *l = curl_slist_append(s->headers, req->headers[i]);
        if (!l)
            return xfer_fail(x, BERTH_ENOMEM, "out of memory");
        s->headers = l;
    }
    if (upload) {
        /* No "Expect: 100-continue" round trip; and no form Content-Type from POSTFIELDS. */
        struct curl_slist *l = curl_slist_append(s->headers, "Expect:");
        if (!l)
            return xfer_fail(x, BERTH_ENOMEM, "out of memory");
        s->headers = l;
        if (!req->source && !has_header(req->headers, "Content-Type")) {
            if ((l = curl_slist_append(s->headers, "Content-Type:")) == NULL)
                return xfer_fail(x, BERTH_ENOMEM, "out of memory");
            s->headers = l;
        }
    }
    if (s->headers)
        SETOPT(CURLOPT_HTTPHEADER, s->headers);
    return 0;
fail:
    return xfer_fail(x, cc == CURLE_OUT_OF_MEMORY ? BERTH_ENOMEM : BERTH_ERROR, "curl option: %s",
                     curl_easy_strerror(cc));
}

#undef SETOPT

/* ---- finishing one transfer ---- */

/* Scheme, host and port of the effective URL, for TLS messages. */
static void effective_origin(char *out, size_t cap, const xstate *s)
{
    char *origin = core_url_origin(s->x->resp.url ? s->x->resp.url : s->x->req.url);
    snprintf(out, cap, "%s", origin ? origin : "(unknown)");
    core_free(origin);
}

static int fail_aborted(xstate *s, CURLcode cc)
{
    core_http_xfer *x = s->x;
    size_t max_body = x->req.max_body ? x->req.max_body : DEFAULT_MAX_BODY;

    switch (s->abort) {
    case ABORT_SINK:
        return xfer_fail(x, s->abort_rc, "storing the response body failed");
    case ABORT_SOURCE:
        return xfer_fail(x, s->abort_rc, "reading the request body failed");
    case ABORT_BODY:
        return xfer_fail(x, BERTH_EINVAL, "response body exceeds %zu bytes", max_body);
    case ABORT_HEADERS:
        return xfer_fail(x, BERTH_EINVAL, "response headers exceed %zu bytes", (size_t)HEADERS_MAX);
    case ABORT_NOMEM:
        return xfer_fail(x, BERTH_ENOMEM, "out of memory");
    case ABORT_CANCEL:
        return xfer_fail(x, BERTH_ECANCELED, "cancelled");
    case ABORT_NONE:
        break;
    }
    return xfer_fail(x, BERTH_ERROR, "%s", curl_detail(s, cc));
}

static int map_result(xstate *s, CURLcode cc)
{
    core_http_xfer *x = s->x;
    char origin[160];
    long os_errno = 0;

    switch (cc) {
    case CURLE_OK:
        return 0;
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        return fail_aborted(s, cc);
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(s->easy, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno == ECONNREFUSED)
            return xfer_fail(x, BERTH_ENET, "connection refused");
        return xfer_fail(x, BERTH_ENET, "%s", curl_detail(s, cc));
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        /* With TLS 1.3 the server's verdict on our client certificate arrives as an alert on the
         * first read, after the handshake looked complete. Retrying cannot change it. */
        if (strstr(curl_detail(s, cc), "alert")) {
            effective_origin(origin, sizeof(origin), s);
            return xfer_fail(x, BERTH_ERROR,
                             "tls: %s refused the connection, a client certificate may be "
                             "required (--cert-file/--key-file): %s",
                             origin, curl_detail(s, cc));
        }
        return xfer_fail(x, BERTH_ENET, "%s", curl_detail(s, cc));
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_PROXY:
        return xfer_fail(x, BERTH_ENET, "%s", curl_detail(s, cc));
    case CURLE_OPERATION_TIMEDOUT:
        return xfer_fail(x, BERTH_ETIMEOUT, "%s", curl_detail(s, cc));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        /* Not transient: retrying will not change the certificate. */
        effective_origin(origin, sizeof(origin), s);
        return xfer_fail(x, BERTH_ERROR, "tls: certificate verify failed for %s (%s)", origin,
                         curl_detail(s, cc));
    case CURLE_SSL_CONNECT_ERROR: {
        const char *d = curl_detail(s, cc);
        if (strstr(d, "wrong version number"))
            return xfer_fail(x, BERTH_ERROR,
                             "tls: handshake failed, the server may speak plain http (%s)", d);
        /* A connection reset or cut during the handshake is transient; alerts are not. */
        if (strstr(d, "reset") || strstr(d, "SSL_ERROR_SYSCALL") || strstr(d, "unexpected eof"))
            return xfer_fail(x, BERTH_ENET, "tls: %s", d);
        return xfer_fail(x, BERTH_ERROR, "tls: %s", d);
    }
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return xfer_fail(x, BERTH_ERROR, "tls: %s", curl_detail(s, cc));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return xfer_fail(x, BERTH_EINVAL, "%s", curl_detail(s, cc));
    case CURLE_OUT_OF_MEMORY:
        return xfer_fail(x, BERTH_ENOMEM, "out of memory");
    case CURLE_SEND_FAIL_REWIND:
        return xfer_fail(x, BERTH_ERROR, "cannot resend a streamed request body (%s)",
                         curl_detail(s, cc));
    default:
        return xfer_fail(x, BERTH_ERROR, "%s", curl_detail(s, cc));
    }
}

static void finish(xstate *s, CURLcode cc)
{
    core_http_xfer *x = s->x;
    long status = 0;
    char *url = NULL;

    s->done = true;
    if (curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
        x->resp.status = status;
    if (curl_easy_getinfo(s->easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
        x->resp.url = core_strdup(url);
    map_result(s, cc);
}

/* ---- the run loop ---- */

static void drain_messages(curl_transport *ct)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(ct->multi, &left)) != NULL) {
        xstate *s = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        if (BERTH_ALWAYS(s != NULL) && !s->done)
            finish(s, m->data.result);
    }
}

static int curl_run(void *self, core_http_xfer *xfers, size_t n)
{
    curl_transport *ct = self;
    xstate *st = NULL;
    int rc = 0;
    int running = 0;
    int poll_ms = 1000;
    CURLMcode mc = CURLM_OK;

    if (n == 0)
        return 0;
    if ((st = core_calloc(n, sizeof(*st))) == NULL) {
        for (size_t i = 0; i < n; i++)
            xfer_fail(&xfers[i], BERTH_ENOMEM, "out of memory");
        return BERTH_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        xstate *s = &st[i];
        core_http_xfer *x = &xfers[i];
        s->x = x;
        s->ct = ct;
        s->index = i;
        x->rc = 0;
        berth_buf_init(&x->resp.headers, HEADERS_MAX);
        berth_buf_init(&x->resp.body, 0);
        if (setup_easy(s) < 0) {
            s->done = true;
            continue;
        }
        if ((mc = curl_multi_add_handle(ct->multi, s->easy)) != CURLM_OK) {
            s->done = true;
            xfer_fail(x, mc == CURLM_OUT_OF_MEMORY ? BERTH_ENOMEM : BERTH_ERROR, "curl multi: %s",
                      curl_multi_strerror(mc));
            continue;
        }
        s->added = true;
    }

    for (size_t i = 0; i < n; i++)
        if (xfers[i].req.cancel)
            poll_ms = CANCEL_POLL_MS;
    for (;;) {
        if ((mc = curl_multi_perform(ct->multi, &running)) != CURLM_OK)
            break;
        drain_messages(ct);
        if (running == 0)
            break;
        if ((mc = curl_multi_poll(ct->multi, NULL, 0, poll_ms, NULL)) != CURLM_OK)
            break;
    }
    drain_messages(ct);
    if (mc != CURLM_OK)
        rc = mc == CURLM_OUT_OF_MEMORY ? BERTH_ENOMEM : BERTH_ERROR;

    for (size_t i = 0; i < n; i++) {
        xstate *s = &st[i];
        if (!s->done) {
            /* Only reachable when the multi loop itself failed. */
            xfer_fail(s->x, rc < 0 ? rc : BERTH_ERROR, "curl multi: %s", curl_multi_strerror(mc));
        }
        if (s->added)
            curl_multi_remove_handle(ct->multi, s->easy);
        easy_give_back(ct, s->easy);
        curl_slist_free_all(s->headers);
    }
    core_free(st);
    return rc;
}

static void curl_transport_free(void *self)
{
    curl_transport *ct = self;
    if (!ct)
        return;
    while (ct->n_idle > 0)
        curl_easy_cleanup(ct->idle[--ct->n_idle]);
    if (ct->multi)
        curl_multi_cleanup(ct->multi);
    if (ct->share)
        curl_share_cleanup(ct->share);
    core_free(ct->user_agent);
    core_free(ct->ca_file);
    core_free(ct->cert_file);
    core_free(ct->key_file);
    core_free(ct->ca_pem);
    core_free(ct->cert_pem);
    core_free(ct->key_pem);
    core_free(ct);
    curl_global_cleanup();
}

static int dup_opt(char **out, const char *s)
{
    *out = NULL;
    if (!s)
        return 0;
    if ((*out = core_strdup(s)) == NULL)
        return BERTH_ENOMEM;
    return 0;
}

int core_http_new(core_http **out, const core_http_opts *opts, berth_error **err)
{
    static const core_http_opts defaults = CORE_HTTP_OPTS_INIT;
    curl_transport *ct = NULL;
    core_http_transport t;
    int rc = 0;

    BERTH_ARG_CHECK(out);
    *out = NULL;
    if (!opts)
        opts = &defaults;
    if (opts->version != CORE_HTTP_OPTS_VERSION)
        return core_error_set(err, BERTH_EINVAL, "http: unsupported options version %u",
                              opts->version);
    /* Reference counted and thread-safe since libcurl 7.84; berth_init() normally did it. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return core_error_set(err, BERTH_ERROR, "http: curl initialisation failed");
    if ((ct = core_calloc(1, sizeof(*ct))) == NULL) {
        curl_global_cleanup();
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    ct->skip_verify = opts->tls_skip_verify;
    ct->verbose = opts->verbose;
    ct->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    ct->low_speed_time_s =
        opts->low_speed_time_s > 0 ? opts->low_speed_time_s : DEFAULT_LOW_SPEED_TIME_S;
    ct->user_agent =
        opts->user_agent ? core_strdup(opts->user_agent) : core_strdup("berth/" BERTH_VERSION);
    if (!ct->user_agent || dup_opt(&ct->ca_file, opts->ca_file) < 0 ||
        dup_opt(&ct->cert_file, opts->cert_file) < 0 ||
        dup_opt(&ct->key_file, opts->key_file) < 0 || dup_opt(&ct->ca_pem, opts->ca_pem) < 0 ||
        dup_opt(&ct->cert_pem, opts->cert_pem) < 0 || dup_opt(&ct->key_pem, opts->key_pem) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((ct->multi = curl_multi_init()) == NULL || (ct->share = curl_share_init()) == NULL) {
        rc = core_error_set(err, BERTH_ENOMEM, "http: cannot create curl handles");
        goto out;
    }
    /* The connection cache is not put in the share: the multi handle already pools connections
     * for all its easy handles, and libcurl 7.88 documents shared connection caches as unsafe. */
    if (curl_share_setopt(ct->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(ct->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        rc = core_error_set(err, BERTH_ERROR, "http: cannot set up the curl share handle");
        goto out;
    }
    t.version = 1;
    t.run = curl_run;
    t.free = curl_transport_free;
    t.self = ct;
    ct = NULL; /* owned by the transport from here on, even on failure */
    rc = core_http_new_with_transport(out, &t, err);
out:
    curl_transport_free(ct);
    return rc;
}

/* ---- transport-independent API ---- */

int core_http_new_with_transport(core_http **out, const core_http_transport *t, berth_error **err)
{
    core_http *h;

    BERTH_ARG_CHECK(out);
    BERTH_ARG_CHECK(t && t->run);
    *out = NULL;
    if ((h = core_calloc(1, sizeof(*h))) == NULL) {
        if (t->free)
            t->free(t->self);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    h->t = *t;
    *out = h;
    return 0;
}

void core_http_free(core_http *h)
{
    if (!h)
        return;
    if (h->t.free)
        h->t.free(h->t.self);
    core_free(h);
}

void core_http_set_deadline(core_http *h, berth_mono_ms deadline)
{
    if (h)
        h->deadline = deadline;
}

int core_http_run(core_http *h, core_http_xfer *xfers, size_t n)
{
    BERTH_ARG_CHECK(h);
    BERTH_ARG_CHECK(xfers || n == 0);
    if (h->deadline > 0) {
        int64_t left = h->deadline - core_mono_now();
        if (left <= 0) { /* nothing is sent once the budget is spent */
            for (size_t i = 0; i < n; i++)
                xfer_fail(&xfers[i], BERTH_ETIMEOUT, "not sent: the time budget is spent");
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (xfers[i].req.timeout_ms <= 0 || xfers[i].req.timeout_ms > left)
                xfers[i].req.timeout_ms = (long)left;
        }
    }
    return h->t.run(h->t.self, xfers, n);
}

/* Reproduce a chain on top of *err, deepest cause first, so *err ends up with the same links. */
static void copy_chain(berth_error **err, const berth_error *e)
{
    if (!e)
        return;
    copy_chain(err, berth_error_cause(e));
    core_error_set(err, berth_error_code(e), "%s", berth_error_message(e));
}

int core_http_do(core_http *h, core_http_xfer *x, berth_error **err)
{
    int rc;

    BERTH_ARG_CHECK(h && x);
    rc = core_http_run(h, x, 1);
    if (x->rc < 0) {
        if (err)
            copy_chain(err, x->err);
        return x->rc;
    }
    if (rc < 0)
        return core_error_set(err, rc, "%s %s: http transport failed", method_of(&x->req),
                              x->req.url ? x->req.url : "(null)");
    return 0;
}

void core_http_xfer_dispose(core_http_xfer *x)
{
    if (!x)
        return;
    berth_buf_dispose(&x->resp.headers);
    berth_buf_dispose(&x->resp.body);
    core_free(x->resp.url);
    berth_error_free(x->err);
    memset(&x->resp, 0, sizeof(x->resp));
    x->err = NULL;
    x->rc = 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

char *core_http_resp_header(const core_http_resp *resp, const char *name)
{
    const char *p, *end;
    size_t nl;

    if (!resp || !name || !resp->headers.ptr)
        return NULL;
    nl = strlen(name);
    p = resp->headers.ptr;
    end = p + resp->headers.len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        if ((size_t)(le - p) > nl && p[nl] == ':' && core_strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            const char *ve = le;
            while (v < ve && is_space(*v))
                v++;
            while (ve > v && (is_space(ve[-1]) || ve[-1] == '\r'))
                ve--;
            return core_strndup(v, (size_t)(ve - v));
        }
        p = le + 1;
    }
    return NULL;
}

/* ---- URLs ---- */

static char *url_get(CURLU *u, CURLUPart part, unsigned int flags)
{
    char *v = NULL, *copy;
    if (curl_url_get(u, part, &v, flags) != CURLUE_OK)
        return NULL;
    copy = core_strdup(v);
    curl_free(v);
    return copy;
}

char *core_url_resolve(const char *base, const char *ref)
{
    CURLU *u = NULL;
    char *res = NULL;

    if (!base || !ref)
        return NULL;
    if ((u = curl_url()) == NULL)
        goto out;
    if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto out;
    /* libcurl 7.88 mishandles two RFC 3986 forms: "" (the base itself) and "#frag" (the base
     * with that fragment); it drops the last path segment for both. */
    if (ref[0] == '\0' || ref[0] == '#') {
        if (curl_url_set(u, CURLUPART_FRAGMENT, ref[0] ? ref + 1 : NULL, 0) != CURLUE_OK)
            goto out;
    } else if (curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK) {
        goto out;
    }
    res = url_get(u, CURLUPART_URL, 0);
out:
    curl_url_cleanup(u);
    return res;
}

static void lower(char *s)
{
    for (; *s; s++) {
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
    }
}

char *core_url_origin(const char *url)
{
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL, *res = NULL;

    if (!url)
        return NULL;
    if ((u = curl_url()) == NULL)
        goto out;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if ((scheme = url_get(u, CURLUPART_SCHEME, 0)) == NULL ||
        (host = url_get(u, CURLUPART_HOST, 0)) == NULL)
        goto out;
    /* The default port is left out, so "https://reg:443" and "https://reg" are one origin. */
    port = url_get(u, CURLUPART_PORT, CURLU_NO_DEFAULT_PORT);
    lower(scheme);
    lower(host);
    res = port ? core_sprintf("%s://%s:%s", scheme, host, port)
               : core_sprintf("%s://%s", scheme, host);
out:
    core_free(scheme);
    core_free(host);
    core_free(port);
    curl_url_cleanup(u);
    return res;
}

char *core_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len, cap;
    char *out, *o;

    if (!s)
        return NULL;
    len = strlen(s);
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    cap = len * 3 + 1;
    if ((out = core_malloc(cap)) == NULL)
        return NULL;
    o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

const char *core_http_reason(long status)
{
    switch (status) {
    case 400:
        return "bad request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not found";
    case 405:
        return "method not allowed";
    case 408:
        return "request timeout";
    case 409:
        return "conflict";
    case 412:
        return "precondition failed";
    case 413:
        return "payload too large";
    case 414:
        return "uri too long";
    case 416:
        return "range not satisfiable";
    case 429:
        return "too many requests";
    case 500:
        return "internal server error";
    case 502:
        return "bad gateway";
    case 503:
        return "service unavailable";
    case 504:
        return "gateway timeout";
    default:
        return "unexpected status";
    }
}
