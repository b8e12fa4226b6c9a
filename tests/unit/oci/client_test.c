/*
 * Unit tests for oci/client.c over a fake transport: each test scripts the registry's replies in
 * order, the fake records every request, and the test checks both the result and the exact
 * requests (count, URLs, headers). Backoff sleeps go through a hook that records the delays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/http.h"
#include "oci/internal.h"

/* ------------------------------------------------------------------ the fake registry */

typedef struct canned {
    const char *method; /* expected method, or NULL for any */
    const char *url;    /* expected URL, or NULL for any */
    long status;
    const char *headers; /* "Name: value\r\n" lines, or NULL */
    const char *body;    /* or NULL */
    size_t body_len;     /* 0: strlen(body) */
    int rc;              /* <0: the transfer fails (after drop_after body bytes) */
    size_t drop_after;
} canned;

typedef struct recorded {
    char *method;
    char *url;
    char *headers; /* one per line */
    char *body;
    size_t body_len;
} recorded;

#define MAX_REC 128

typedef struct fake {
    const canned *script;
    size_t n;
    size_t next;
    recorded rec[MAX_REC];
    size_t nrec;
    size_t runs;
    size_t batch[MAX_REC]; /* transfers per run */
    int64_t delays[MAX_REC];
    size_t ndelays;
    long last_timeout_ms; /* req.timeout_ms of the last transfer sent */
} fake;

static fake F;
static berth_unix_ms fake_clock = 1700000000000LL; /* the wall clock the client sees */

static void fake_reset(const canned *script, size_t n)
{
    for (size_t i = 0; i < F.nrec; i++) {
        free(F.rec[i].method);
        free(F.rec[i].url);
        free(F.rec[i].headers);
        free(F.rec[i].body);
    }
    memset(&F, 0, sizeof(F));
    fake_clock = 1700000000000LL;
    F.script = script;
    F.n = n;
}

static void record(core_http_xfer *x)
{
    berth_buf h = BERTH_BUF_INIT, b = BERTH_BUF_INIT;
    assert_true(F.nrec < MAX_REC);
    recorded *r = &F.rec[F.nrec++];
    r->method = core_strdup(x->req.method ? x->req.method : "GET");
    r->url = core_strdup(x->req.url);
    for (size_t i = 0; x->req.headers && x->req.headers[i]; i++)
        berth_buf_printf(&h, "%s\n", x->req.headers[i]);
    r->headers = h.ptr ? berth_buf_detach(&h) : core_strdup("");
    if (x->req.source) {
        char chunk[7]; /* small reads exercise the source */
        ssize_t got;
        while ((got = x->req.source(x->req.source_payload, chunk, sizeof(chunk))) > 0)
            berth_buf_put(&b, chunk, (size_t)got);
        assert_true(got == 0);
    } else if (x->req.body) {
        berth_buf_put(&b, x->req.body, x->req.body_len);
    }
    r->body_len = b.len;
    r->body = b.ptr ? berth_buf_detach(&b) : core_strdup("");
}

static void answer(core_http_xfer *x)
{
    if (F.next >= F.n)
        fail_msg("unexpected request %s %s", x->req.method, x->req.url);
    const canned *cn = &F.script[F.next++];
    if (cn->method && strcmp(cn->method, x->req.method) != 0)
        fail_msg("request %zu: method %s, expected %s (%s)", F.next, x->req.method, cn->method,
                 x->req.url);
    if (cn->url && strcmp(cn->url, x->req.url) != 0)
        fail_msg("request %zu: url %s, expected %s", F.next, x->req.url, cn->url);
    berth_buf_init(&x->resp.headers, 0);
    berth_buf_init(&x->resp.body, 0);
    x->resp.url = core_strdup(x->req.url);
    x->resp.status = cn->status;
    if (cn->headers)
        berth_buf_puts(&x->resp.headers, cn->headers);
    size_t len = cn->body ? (cn->body_len ? cn->body_len : strlen(cn->body)) : 0;
    if (strcmp(x->req.method, "HEAD") == 0)
        len = 0;
    if (cn->rc < 0)
        len = cn->drop_after;
    bool ok = cn->status >= 200 && cn->status < 300;
    if (len > 0) {
        if (ok && x->req.sink) {
            /* two pieces, to exercise streaming */
            size_t half = len / 2;
            int src = x->req.sink(x->req.sink_payload, cn->body, half);
            if (src == 0)
                src = x->req.sink(x->req.sink_payload, cn->body + half, len - half);
            if (src < 0) {
                x->rc = src;
                core_error_set(&x->err, src, "%s %s: storing the response body failed",
                               x->req.method, x->req.url);
                return;
            }
        } else {
            size_t max = x->req.max_body ? x->req.max_body : (4u << 20);
            if (ok && len > max) {
                x->rc = BERTH_EINVAL;
                core_error_set(&x->err, BERTH_EINVAL, "%s %s: response body exceeds %zu bytes",
                               x->req.method, x->req.url, max);
                return;
            }
            berth_buf_put(&x->resp.body, cn->body, len);
        }
        x->resp.body_bytes = (int64_t)len;
    }
    if (cn->rc < 0) {
        x->rc = cn->rc;
        core_error_set(&x->err, cn->rc, "%s %s: %s", x->req.method, x->req.url,
                       cn->rc == BERTH_ERROR
                           ? "tls: handshake failed, the server may speak plain http"
                           : "connection reset by peer");
    }
}

static int fake_run(void *self, core_http_xfer *xfers, size_t n)
{
    (void)self;
    assert_true(F.runs < MAX_REC);
    F.batch[F.runs++] = n;
    for (size_t i = 0; i < n; i++) {
        F.last_timeout_ms = xfers[i].req.timeout_ms;
        record(&xfers[i]);
        answer(&xfers[i]);
    }
    return 0;
}

static void fake_sleep(void *payload, int64_t ms)
{
    (void)payload;
    assert_true(F.ndelays < MAX_REC);
    F.delays[F.ndelays++] = ms;
}

static berth_unix_ms fake_now(void *payload)
{
    (void)payload;
    return fake_clock;
}

static berth_oci_client *make_client(berth_oci_client_opts *opts)
{
    core_http_transport t = {1, fake_run, NULL, NULL};
    core_http *h = NULL;
    berth_oci_client *c = NULL;
    berth_oci_client_opts def = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    if (!opts)
        opts = &def;
    if (!opts->docker_config)
        opts->docker_config = "/nonexistent/berth-test/config.json"; /* no host creds */
    assert_int_equal(core_http_new_with_transport(&h, &t, NULL), 0);
    assert_int_equal(oci_client_new_with_http(&c, opts, h, NULL), 0);
    oci_hooks hooks = {fake_sleep, fake_now, NULL};
    oci_client_set_hooks(c, &hooks);
    return c;
}

static berth_oci_ref ref_of(const char *text)
{
    berth_oci_ref r;
    berth_error *err = NULL;
    if (berth_oci_ref_parse(&r, text, &err) < 0)
        fail_msg("bad test reference %s", text);
    return r;
}

static void assert_error(berth_error *err, int code, const char *word)
{
    assert_non_null(err);
    char *text = berth_error_text(err);
    assert_non_null(text);
    if (berth_error_code(err) != code)
        fail_msg("code %s, expected %s: %s", berth_code_name(berth_error_code(err)),
                 berth_code_name(code), text);
    if (!strstr(text, word))
        fail_msg("error \"%s\" does not mention \"%s\"", text, word);
    free(text);
}

static bool has_header(size_t req, const char *line)
{
    const char *h = F.rec[req].headers;
    size_t l = strlen(line);
    for (const char *p = h; (p = strstr(p, line)) != NULL; p++)
        if ((p == h || p[-1] == '\n') && p[l] == '\n')
            return true;
    return false;
}

static bool has_header_named(size_t req, const char *name)
{
    const char *h = F.rec[req].headers;
    size_t l = strlen(name);
    for (const char *p = h; *p;) {
        if (core_strncasecmp(p, name, l) == 0 && p[l] == ':')
            return true;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return false;
}

#define MANIFEST                                                                                   \
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","           \
    "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"digest\":"                  \
    "\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\"size\":2},"     \
    "\"layers\":[]}"

#define BEARER_CHALLENGE                                                                           \
    "WWW-Authenticate: Bearer realm=\"https://auth.test/token\",service=\"reg.test\","             \
    "scope=\"repository:app:pull\"\r\n"

/* ------------------------------------------------------------------ auth */

static void bearer_token_is_fetched_once_and_reused(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", "https://reg.test/v2/app/manifests/v1", 401, BEARER_CHALLENGE,
         "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}", 0, 0, 0},
        {"GET", "https://auth.test/token?service=reg.test&scope=repository%3Aapp%3Apull", 200, NULL,
         "{\"token\":\"tok-1\",\"expires_in\":300}", 0, 0, 0},
        {"GET", "https://reg.test/v2/app/manifests/v1", 200,
         "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n", MANIFEST, 0, 0, 0},
        {"GET", "https://reg.test/v2/app/manifests/v1", 200,
         "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n", MANIFEST, 0, 0, 0},
    };
    fake_reset(script, 4);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app:v1");
    berth_oci_blob b;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_manifest_get(&b, c, &r, &err), 0);
    assert_int_equal(b.len, strlen(MANIFEST));
    berth_oci_blob_dispose(&b);
    assert_int_equal(F.nrec, 3);
    assert_false(has_header_named(0, "Authorization"));
    assert_false(has_header_named(1, "Authorization")); /* anonymous token request */
    assert_true(has_header(2, "Authorization: Bearer tok-1"));
    assert_int_equal(berth_oci_manifest_get(&b, c, &r, &err), 0);
    berth_oci_blob_dispose(&b);
    assert_int_equal(F.nrec, 4); /* the cached token: no 401, no token request */
    assert_true(has_header(3, "Authorization: Bearer tok-1"));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void bearer_token_request_uses_basic_creds_and_new_scopes(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", "https://reg.test/v2/app/tags/list?n=1000", 401, BEARER_CHALLENGE, NULL, 0, 0, 0},
        {"GET", "https://auth.test/token?service=reg.test&scope=repository%3Aapp%3Apull", 200, NULL,
         "{\"access_token\":\"pull-tok\"}", 0, 0, 0},
        {"GET", "https://reg.test/v2/app/tags/list?n=1000", 200, NULL, "{\"tags\":[\"v1\"]}", 0, 0,
         0},
        /* a push needs a new token: fetched before the request, no 401 round trip */
        {"GET", "https://auth.test/token?service=reg.test&scope=repository%3Aapp%3Apull%2Cpush",
         200, NULL, "{\"token\":\"push-tok\"}", 0, 0, 0},
        {"PUT", "https://reg.test/v2/app/manifests/v2", 201, NULL, NULL, 0, 0, 0},
    };
    fake_reset(script, 5);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.creds = "alice:s3cret";
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app:v2");
    char **tags = NULL;
    size_t n = 0;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    assert_int_equal(n, 1);
    berth_strv_free(tags, n);
    /* YWxpY2U6czNjcmV0 = base64("alice:s3cret") */
    assert_true(has_header(1, "Authorization: Basic YWxpY2U6czNjcmV0"));
    assert_int_equal(berth_oci_manifest_put(NULL, c, &r, BERTH_MT_OCI_MANIFEST, MANIFEST,
                                            strlen(MANIFEST), NULL),
                     0);
    assert_int_equal(F.nrec, 5);
    assert_true(has_header(4, "Authorization: Bearer push-tok"));
    assert_true(has_header(4, "Content-Type: " BERTH_MT_OCI_MANIFEST));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void insufficient_scope_requests_the_union_once(void **state)
{
    (void)state;
    const char *digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    char url[256];
    snprintf(url, sizeof(url), "https://reg.test/v2/app/manifests/%s", digest);
    const canned s2[] = {
        {"DELETE", url, 401, BEARER_CHALLENGE, NULL, 0, 0, 0},
        /* the operation's own scope (delete) plus the challenge's (pull) */
        {"GET", "https://auth.test/token?service=reg.test&scope=repository%3Aapp%3Adelete%2Cpull",
         200, NULL, "{\"token\":\"t1\"}", 0, 0, 0},
        {"DELETE", url, 401,
         "WWW-Authenticate: Bearer realm=\"https://auth.test/token\",service=\"reg.test\","
         "scope=\"repository:app:*\",error=\"insufficient_scope\"\r\n",
         NULL, 0, 0, 0},
        {"GET",
         "https://auth.test/token?service=reg.test&scope=repository%3Aapp%3A%2A%2Cdelete%2Cpull",
         200, NULL, "{\"token\":\"t2\"}", 0, 0, 0},
        {"DELETE", url, 401,
         "WWW-Authenticate: Bearer realm=\"https://auth.test/token\",service=\"reg.test\","
         "scope=\"repository:app:*\",error=\"insufficient_scope\"\r\n",
         NULL, 0, 0, 0},
    };
    fake_reset(s2, 5);
    berth_oci_client *c = make_client(NULL);
    char text[256];
    snprintf(text, sizeof(text), "reg.test/app@%s", digest);
    berth_oci_ref r = ref_of(text);
    berth_error *err = NULL;
    assert_int_equal(berth_oci_manifest_delete(c, &r, &err), BERTH_EAUTH);
    assert_error(err, BERTH_EAUTH, "registry \"reg.test\": authentication required");
    berth_error_free(err);
    assert_int_equal(F.nrec, 5); /* the same challenge is not answered twice */
    assert_true(has_header(2, "Authorization: Bearer t1"));
    assert_true(has_header(4, "Authorization: Bearer t2"));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void endless_new_challenges_stop_after_four_rounds(void **state)
{
    (void)state;
#define CH(n)                                                                                      \
    "WWW-Authenticate: Bearer realm=\"https://auth.test/token\",service=\"reg.test\",error=\"e" #n \
    "\"\r\n"
    const canned script[] = {
        {"GET", NULL, 401, CH(1), NULL, 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"token\":\"t\"}", 0, 0, 0},
        {"GET", NULL, 401, CH(2), NULL, 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"token\":\"t\"}", 0, 0, 0},
        {"GET", NULL, 401, CH(3), NULL, 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"token\":\"t\"}", 0, 0, 0},
        {"GET", NULL, 401, CH(4), NULL, 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"token\":\"t\"}", 0, 0, 0},
        {"GET", NULL, 401, CH(5), NULL, 0, 0, 0},
    };
#undef CH
    fake_reset(script, 9);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, &err), BERTH_EAUTH);
    assert_error(err, BERTH_EAUTH, "registry \"reg.test\"");
    berth_error_free(err);
    assert_int_equal(F.nrec, 9);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void basic_auth_rejected_names_the_registry_host(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", "https://reg.test/v2/app/manifests/v1", 401,
         "WWW-Authenticate: Basic realm=\"berth-realm\"\r\n", NULL, 0, 0, 0},
        {"GET", "https://reg.test/v2/app/manifests/v1", 401,
         "WWW-Authenticate: Basic realm=\"berth-realm\"\r\n", NULL, 0, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.creds = "berth:wrong";
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app:v1");
    berth_oci_blob b;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_manifest_get(&b, c, &r, &err), BERTH_EAUTH);
    assert_error(err, BERTH_EAUTH,
                 "registry \"reg.test\": authentication failed: 401 unauthorized");
    berth_error_free(err);
    assert_int_equal(F.nrec, 2);
    assert_true(has_header(1, "Authorization: Basic YmVydGg6d3Jvbmc="));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void expired_token_is_replaced_before_the_request(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", NULL, 401, BEARER_CHALLENGE, NULL, 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"token\":\"old\",\"expires_in\":60}", 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"tags\":[]}", 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"tags\":[]}", 0, 0, 0},
        /* 61 s later: a new token first, then the request */
        {"GET", "https://auth.test/token?service=reg.test&scope=repository%3Aapp%3Apull", 200, NULL,
         "{\"token\":\"new\",\"expires_in\":60}", 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"tags\":[]}", 0, 0, 0},
    };
    fake_reset(script, 6);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    berth_strv_free(tags, n);
    fake_clock += 30000; /* still fresh */
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    berth_strv_free(tags, n);
    assert_true(has_header(3, "Authorization: Bearer old"));
    fake_clock += 31000;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    berth_strv_free(tags, n);
    assert_int_equal(F.nrec, 6);
    assert_true(has_header(5, "Authorization: Bearer new"));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void identity_token_uses_the_oauth2_refresh_grant(void **state)
{
    (void)state;
    char dir[] = "/tmp/berth-client-cfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *cfg = core_sprintf("%s/config.json", dir);
    const char *text = "{\"auths\":{\"https://reg.test\":{\"identitytoken\":\"refresh-abc\"}}}";
    assert_int_equal(core_fs_write_atomic(cfg, text, strlen(text), 0600, NULL), 0);
    const canned script[] = {
        {"GET", "https://reg.test/v2/app/tags/list?n=1000", 401, BEARER_CHALLENGE, NULL, 0, 0, 0},
        {"POST", "https://auth.test/token", 200, NULL,
         "{\"access_token\":\"oauth-tok\",\"expires_in\":300}", 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"tags\":[\"x\"]}", 0, 0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.docker_config = cfg;
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    berth_strv_free(tags, n);
    assert_string_equal(F.rec[1].body, "grant_type=refresh_token&refresh_token=refresh-abc&"
                                       "service=reg.test&scope=repository%3Aapp%3Apull&"
                                       "client_id=berth");
    assert_true(has_header(1, "Content-Type: application/x-www-form-urlencoded"));
    assert_true(has_header(2, "Authorization: Bearer oauth-tok"));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
    unlink(cfg);
    rmdir(dir);
    core_free(cfg);
}

static void basic_challenge_without_creds_is_eauth(void **state)
{
    (void)state;
    const canned script[] = {
        {"HEAD", NULL, 401, "WWW-Authenticate: Basic realm=\"r\"\r\n", NULL, 0, 0, 0},
    };
    fake_reset(script, 1);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app:v1");
    char *d = NULL;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_manifest_head(&d, NULL, c, &r, &err), BERTH_EAUTH);
    assert_error(err, BERTH_EAUTH, "authentication required");
    assert_null(d);
    berth_error_free(err);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void lone_creds_value_is_sent_as_bearer_token(void **state)
{
    (void)state;
    const canned script[] = {
        {"HEAD", "https://reg.test/v2/app/manifests/v1", 200,
         "Docker-Content-Digest: "
         "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\r\n"
         "Content-Type: application/vnd.oci.image.index.v1+json; charset=utf-8\r\n",
         NULL, 0, 0, 0},
    };
    fake_reset(script, 1);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.creds = "ghp_abc123";
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app:v1");
    char *d = NULL, *mt = NULL;
    assert_int_equal(berth_oci_manifest_head(&d, &mt, c, &r, NULL), 0);
    assert_string_equal(d,
                        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    assert_string_equal(mt, BERTH_MT_OCI_INDEX);
    assert_true(has_header(0, "Authorization: Bearer ghp_abc123"));
    assert_true(has_header(0, "Accept: " BERTH_MT_OCI_MANIFEST ", " BERTH_MT_OCI_INDEX
                              ", " BERTH_MT_DOCKER_MANIFEST ", " BERTH_MT_DOCKER_LIST));
    free(d);
    free(mt);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

/* ------------------------------------------------------------------ retries */

static void server_errors_are_retried_with_backoff(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", NULL, 500, NULL, "oops", 0, 0, 0},
        {"GET", NULL, 502, NULL, NULL, 0, 0, 0},
        {"GET", NULL, 200, NULL, "{\"tags\":[\"a\"]}", 0, 0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.retry_base_ms = 100;
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    assert_int_equal(F.nrec, 3);
    assert_int_equal(F.ndelays, 2);
    /* 100 ms then 200 ms, each +-10 % */
    assert_in_range(F.delays[0], 90, 110);
    assert_in_range(F.delays[1], 180, 220);
    berth_strv_free(tags, n);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

/* opts.timeout_ms (OCIRepository spec.timeout): every transfer carries what is left of the
 * budget, and once it is spent nothing more is sent and nothing is retried. */
static void time_budget_bounds_transfers_and_stops_retries(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", NULL, 200, NULL, "{\"tags\":[\"a\"]}", 0, 0, 0},
    };
    fake_reset(script, 1);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.timeout_ms = 60000;
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    assert_true(F.last_timeout_ms > 50000 && F.last_timeout_ms <= 60000);
    berth_strv_free(tags, n);
    berth_oci_client_free(c);

    const canned failing[] = {
        {"GET", NULL, 503, NULL, NULL, 0, 0, 0},
        {"GET", NULL, 503, NULL, NULL, 0, 0, 0},
    };
    fake_reset(failing, 2);
    o.timeout_ms = 1;
    o.max_retries = 5;
    c = make_client(&o);
    core_sleep_ms(5); /* the budget is spent before the first request */
    berth_error *err = NULL;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, &err), BERTH_ETIMEOUT);
    assert_error(err, BERTH_ETIMEOUT, "time budget is spent");
    berth_error_free(err);
    assert_int_equal(F.nrec, 0);    /* nothing was sent */
    assert_int_equal(F.ndelays, 0); /* and nothing retried */
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

/* A client kept across reconciles gets a fresh budget for each: a spent one no longer fails. */
static void restarted_budget_lets_a_kept_client_work_again(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", NULL, 200, NULL, "{\"tags\":[\"a\"]}", 0, 0, 0},
    };
    fake_reset(script, 1);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.timeout_ms = 1;
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    berth_error *err = NULL;
    core_sleep_ms(5);
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, &err), BERTH_ETIMEOUT);
    berth_error_free(err);
    berth_oci_client_restart_budget(c, 60000);
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    assert_int_equal(n, 1);
    assert_true(F.last_timeout_ms > 50000 && F.last_timeout_ms <= 60000);
    berth_strv_free(tags, n);
    berth_oci_client_restart_budget(c, 0); /* none: transfers carry no budget */
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void server_errors_exhaust_retries_as_enet(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", NULL, 503, NULL, NULL, 0, 0, 0},
        {"GET", NULL, 503, NULL, NULL, 0, 0, 0},
        {"GET", NULL, 503, NULL, "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"down\"}]}",
         0, 0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.max_retries = 2;
    o.retry_base_ms = 5000; /* clamped to 3 s */
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app:v1");
    berth_oci_blob b;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_manifest_get(&b, c, &r, &err), BERTH_ENET);
    assert_error(err, BERTH_ENET, "503 UNAVAILABLE: down");
    assert_true(berth_error_is_transient(err));
    berth_error_free(err);
    assert_int_equal(F.nrec, 3);
    assert_int_equal(F.ndelays, 2);
    assert_true(F.delays[0] <= 3000 && F.delays[1] <= 3000 && F.delays[1] >= 2700);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void too_many_requests_honours_retry_after(void **state)
{
    (void)state;
    const canned script[] = {
        {"HEAD", NULL, 429, "Retry-After: 1\r\n", NULL, 0, 0, 0},
        {"HEAD", NULL, 429, "Retry-After: 120\r\n", NULL, 0, 0, 0},
        {"HEAD", NULL, 200, NULL, NULL, 0, 0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.retry_base_ms = 10;
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    bool exists = false;
    assert_int_equal(berth_oci_blob_exists(&exists, c, &r,
                                           "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e"
                                           "8310c060f61caaff8a",
                                           NULL),
                     0);
    assert_true(exists);
    assert_int_equal(F.ndelays, 2);
    assert_int_equal(F.delays[0], 1000);  /* Retry-After: 1 */
    assert_int_equal(F.delays[1], 30000); /* capped */
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void retry_after_reads_seconds_and_http_dates(void **state)
{
    (void)state;
    berth_unix_ms now = 1700000000000LL; /* Tue, 14 Nov 2023 22:13:20 GMT */
    assert_int_equal(oci_retry_after_ms("7", now), 7000);
    assert_int_equal(oci_retry_after_ms(" 0 ", now), 0);
    assert_int_equal(oci_retry_after_ms("Tue, 14 Nov 2023 22:13:25 GMT", now), 5000);
    assert_int_equal(oci_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now), 0);
    assert_int_equal(oci_retry_after_ms("soon", now), -1);
    assert_int_equal(oci_retry_after_ms("Tue, 14 Nov 2023 22:13:25 PST", now), -1);
    assert_int_equal(oci_retry_after_ms("5s", now), -1);
    assert_int_equal(oci_retry_after_ms(NULL, now), -1);
}

static void get_is_retried_after_a_network_error_and_null_tags_are_empty(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", NULL, 0, NULL, NULL, 0, BERTH_ENET, 0},
        {"GET", NULL, 200, NULL, "{\"tags\":null}", 0, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 9;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    assert_int_equal(n, 0); /* null tags: empty */
    assert_int_equal(F.nrec, 2);
    berth_strv_free(tags, n);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

/* ------------------------------------------------------------------ manifests */

static void missing_manifest_is_enotfound_naming_the_reference(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", "https://reg.test/v2/team/app/manifests/v9", 404,
         "Content-Type: application/json\r\n",
         "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\","
         "\"detail\":{\"Tag\":\"v9\"}}]}",
         0, 0, 0},
    };
    fake_reset(script, 1);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/team/app:v9");
    berth_oci_blob b;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_manifest_get(&b, c, &r, &err), BERTH_ENOTFOUND);
    assert_error(err, BERTH_ENOTFOUND,
                 "manifest \"reg.test/team/app:v9\" not found: GET "
                 "https://reg.test/v2/team/app/manifests/v9: 404 MANIFEST_UNKNOWN: manifest "
                 "unknown");
    berth_error_free(err);
    assert_null(b.data);
    assert_int_equal(F.nrec, 1); /* a 404 is not retried */
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void manifest_by_digest_must_hash_to_it(void **state)
{
    (void)state;
    const char *other = "{\"schemaVersion\":2,\"manifests\":[]}";
    const canned script[] = {
        {"GET", NULL, 200, "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n", other, 0,
         0, 0},
    };
    fake_reset(script, 1);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of(
        "reg.test/app@sha256:1111111111111111111111111111111111111111111111111111111111111111");
    berth_oci_blob b;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_manifest_get(&b, c, &r, &err), BERTH_EVERIFY);
    assert_error(err, BERTH_EVERIFY, "digest mismatch");
    berth_error_free(err);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void manifest_by_tag_checks_docker_content_digest(void **state)
{
    (void)state;
    char good[72];
    char hdr[160];
    core_sha256_digest(good, MANIFEST, strlen(MANIFEST));
    snprintf(hdr, sizeof(hdr), "Docker-Content-Digest: %s\r\n", good);
    const canned script[] = {
        {"GET", NULL, 200,
         "Docker-Content-Digest: "
         "sha256:1111111111111111111111111111111111111111111111111111111111111111\r\n",
         MANIFEST, 0, 0, 0},
        {"GET", NULL, 200, hdr, MANIFEST, 0, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app:v1");
    berth_oci_blob b;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_manifest_get(&b, c, &r, &err), BERTH_EVERIFY);
    assert_error(err, BERTH_EVERIFY, "registry says sha256:1111");
    berth_error_free(err);
    /* no Content-Type: the media type comes from the document */
    assert_int_equal(berth_oci_manifest_get(&b, c, &r, NULL), 0);
    assert_string_equal(b.digest, good);
    assert_string_equal(b.media_type, BERTH_MT_OCI_MANIFEST);
    assert_memory_equal(b.data, MANIFEST, b.len);
    berth_oci_blob_dispose(&b);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void manifest_head_falls_back_to_get_without_digest_header(void **state)
{
    (void)state;
    char good[72];
    core_sha256_digest(good, MANIFEST, strlen(MANIFEST));
    const canned script[] = {
        {"HEAD", NULL, 200, "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n", NULL, 0,
         0, 0},
        {"GET", NULL, 200, "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n", MANIFEST,
         0, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app:v1");
    char *d = NULL;
    assert_int_equal(berth_oci_manifest_head(&d, NULL, c, &r, NULL), 0);
    assert_string_equal(d, good);
    assert_int_equal(F.nrec, 2);
    free(d);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void manifest_put_rejects_a_different_stored_digest(void **state)
{
    (void)state;
    const canned script[] = {
        {"PUT", "https://reg.test/v2/app/manifests/v1", 201,
         "Docker-Content-Digest: "
         "sha256:2222222222222222222222222222222222222222222222222222222222222222\r\n",
         NULL, 0, 0, 0},
    };
    fake_reset(script, 1);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app:v1");
    char *d = NULL;
    berth_error *err = NULL;
    assert_int_equal(
        berth_oci_manifest_put(&d, c, &r, BERTH_MT_OCI_MANIFEST, MANIFEST, strlen(MANIFEST), &err),
        BERTH_EVERIFY);
    assert_error(err, BERTH_EVERIFY, "sha256:2222");
    berth_error_free(err);
    assert_null(d);
    assert_int_equal(F.rec[0].body_len, strlen(MANIFEST));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

/* ------------------------------------------------------------------ tags */

static void tags_follow_link_pagination_across_three_pages(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", "https://reg.test/v2/app/tags/list?n=2", 200,
         "Link: </v2/app/tags/list?n=2&last=b>; rel=\"next\"\r\n", "{\"tags\":[\"a\",\"b\"]}", 0, 0,
         0},
        {"GET", "https://reg.test/v2/app/tags/list?n=2&last=b", 200,
         "Link: <https://reg.test/v2/app/tags/list?n=2&last=d>; rel=\"next\"\r\n",
         "{\"name\":\"app\",\"tags\":[\"c\",\"d\"]}", 0, 0, 0},
        {"GET", "https://reg.test/v2/app/tags/list?n=2&last=d", 200, NULL, "{\"tags\":[\"e\"]}", 0,
         0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 2, NULL), 0);
    assert_int_equal(F.nrec, 3);
    assert_int_equal(n, 5);
    const char *want[] = {"a", "b", "c", "d", "e"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(tags[i], want[i]);
    berth_strv_free(tags, n);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void tags_refuse_a_cross_origin_link(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", NULL, 200, "Link: <https://evil.test/v2/app/tags/list?last=b>; rel=\"next\"\r\n",
         "{\"tags\":[\"a\"]}", 0, 0, 0},
    };
    fake_reset(script, 1);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, &err), BERTH_EINVAL);
    assert_error(err, BERTH_EINVAL, "evil.test");
    assert_null(tags);
    berth_error_free(err);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

/* ------------------------------------------------------------------ blobs */

typedef struct collect {
    berth_buf buf;
    int calls;
} collect;

static int collect_sink(void *payload, const void *data, size_t len)
{
    collect *c = payload;
    c->calls++;
    return berth_buf_put(&c->buf, data, len);
}

static char *pattern(size_t n)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 26) % 26);
    return p;
}

static void blob_get_resumes_after_a_dropped_body(void **state)
{
    (void)state;
    const size_t len = 3000;
    char *data = pattern(len);
    char digest[72];
    core_sha256_digest(digest, data, len);
    char url[200];
    snprintf(url, sizeof(url), "https://reg.test/v2/app/blobs/%s", digest);
    canned script[] = {
        {"GET", url, 200, NULL, data, len, BERTH_ENET, 1000},
        {"GET", url, 206, "Content-Range: bytes 1000-2999/3000\r\n", data + 1000, len - 1000, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    collect col = {BERTH_BUF_INIT, 0};
    berth_error *err = NULL;
    assert_int_equal(berth_oci_blob_get(c, &r, digest, (int64_t)len, collect_sink, &col, &err), 0);
    assert_null(err);
    assert_int_equal(col.buf.len, len);
    assert_memory_equal(col.buf.ptr, data, len);
    assert_false(has_header_named(0, "Range"));
    assert_true(has_header(1, "Range: bytes=1000-"));
    assert_int_equal(F.ndelays, 1);
    berth_buf_dispose(&col.buf);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
    free(data);
}

static void blob_get_resume_skips_bytes_when_range_is_ignored(void **state)
{
    (void)state;
    const size_t len = 2048;
    char *data = pattern(len);
    char digest[72];
    core_sha256_digest(digest, data, len);
    canned script[] = {
        {"GET", NULL, 200, NULL, data, len, BERTH_ENET, 700},
        {"GET", NULL, 200, NULL, data, len, BERTH_ENET, 1500},
        {"GET", NULL, 200, NULL, data, len, 0, 0}, /* the server ignores Range */
    };
    fake_reset(script, 3);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    collect col = {BERTH_BUF_INIT, 0};
    assert_int_equal(berth_oci_blob_get(c, &r, digest, -1, collect_sink, &col, NULL), 0);
    assert_int_equal(col.buf.len, len);
    assert_memory_equal(col.buf.ptr, data, len);
    assert_true(has_header(1, "Range: bytes=700-"));
    assert_true(has_header(2, "Range: bytes=1500-"));
    berth_buf_dispose(&col.buf);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
    free(data);
}

static void blob_get_reports_a_digest_mismatch(void **state)
{
    (void)state;
    const char *digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const canned script[] = {
        {"GET", NULL, 200, NULL, "[]", 0, 0, 0},
        {"GET", NULL, 200, NULL, "{}xx", 0, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_buf out;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_blob_get_mem(&out, c, &r, digest, 1024, &err), BERTH_EVERIFY);
    assert_error(err, BERTH_EVERIFY,
                 "blob sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a "
                 "of \"reg.test/app\": digest mismatch: got sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5"
                 "ed12ab4d8e11ba873c2f11161202b945");
    berth_error_free(err);
    err = NULL;
    collect col = {BERTH_BUF_INIT, 0};
    assert_int_equal(berth_oci_blob_get(c, &r, digest, 2, collect_sink, &col, &err), BERTH_EVERIFY);
    assert_error(err, BERTH_EVERIFY, "size mismatch");
    berth_error_free(err);
    berth_buf_dispose(&col.buf);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void blob_exists_treats_404_as_absent(void **state)
{
    (void)state;
    const canned script[] = {
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},
        {"HEAD", NULL, 403, NULL, NULL, 0, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    bool ex = true;
    berth_error *err = NULL;
    const char *d = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert_int_equal(berth_oci_blob_exists(&ex, c, &r, d, NULL), 0);
    assert_false(ex);
    assert_int_equal(berth_oci_blob_exists(&ex, c, &r, d, &err), BERTH_EDENIED);
    assert_error(err, BERTH_EDENIED, "403");
    berth_error_free(err);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void push_monolithic_keeps_relative_location_query(void **state)
{
    (void)state;
    const char *data = "hello, registry";
    char digest[72], put_url[300];
    core_sha256_digest(digest, data, strlen(data));
    snprintf(put_url, sizeof(put_url),
             "https://reg.test/v2/app/blobs/uploads/u-1?_state=abc%%3D&digest=sha256%%3A%s",
             digest + 7);
    const canned script[] = {
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},
        {"POST", "https://reg.test/v2/app/blobs/uploads/", 202,
         "Location: /v2/app/blobs/uploads/u-1?_state=abc%3D\r\n", NULL, 0, 0, 0},
        {"PUT", put_url, 201, NULL, NULL, 0, 0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_upload up = {digest, (int64_t)strlen(data), data, NULL, NULL};
    size_t skipped = 9;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_blobs_push(c, &r, &up, 1, &skipped, &err), 0);
    assert_null(err);
    assert_int_equal(skipped, 0);
    assert_int_equal(F.nrec, 3);
    assert_int_equal(F.rec[2].body_len, strlen(data));
    assert_memory_equal(F.rec[2].body, data, strlen(data));
    assert_true(has_header(2, "Content-Type: application/octet-stream"));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void push_absolute_location_on_another_host_gets_no_credentials(void **state)
{
    (void)state;
    const char *data = "xyz";
    char digest[72], put_url[300];
    core_sha256_digest(digest, data, 3);
    snprintf(put_url, sizeof(put_url), "https://storage.test/up/1?digest=sha256%%3A%s", digest + 7);
    const canned script[] = {
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},
        {"POST", NULL, 202, "Location: https://storage.test/up/1\r\n", NULL, 0, 0, 0},
        {"PUT", put_url, 201, NULL, NULL, 0, 0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.creds = "static-token";
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_upload up = {digest, 3, data, NULL, NULL};
    assert_int_equal(berth_oci_blobs_push(c, &r, &up, 1, NULL, NULL), 0);
    assert_true(has_header(1, "Authorization: Bearer static-token"));
    assert_false(has_header_named(2, "Authorization"));
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void push_runs_blobs_in_parallel_after_one_head(void **state)
{
    (void)state;
    const char *a = "blob-a", *b = "blob-b", *cc = "blob-c";
    char da[72], db[72], dc[72];
    core_sha256_digest(da, a, 6);
    core_sha256_digest(db, b, 6);
    core_sha256_digest(dc, cc, 6);
    const canned script[] = {
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},                      /* a alone */
        {"POST", NULL, 202, "Location: /up/a\r\n", NULL, 0, 0, 0},     /* a */
        {"HEAD", NULL, 200, NULL, NULL, 0, 0, 0},                      /* b exists */
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},                      /* c */
        {"PUT", NULL, 201, NULL, NULL, 0, 0, 0},                       /* a */
        {"POST", NULL, 202, "Location: /up/c?x=1\r\n", NULL, 0, 0, 0}, /* c */
        {"PUT", NULL, 201, NULL, NULL, 0, 0, 0},                       /* c */
    };
    fake_reset(script, 7);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_upload up[3] = {
        {da, 6, a, NULL, NULL}, {db, 6, b, NULL, NULL}, {dc, 6, cc, NULL, NULL}};
    size_t skipped = 0;
    assert_int_equal(berth_oci_blobs_push(c, &r, up, 3, &skipped, NULL), 0);
    assert_int_equal(skipped, 1);
    assert_int_equal(F.runs, 4);
    assert_int_equal(F.batch[0], 1);
    assert_int_equal(F.batch[1], 3);
    assert_int_equal(F.batch[2], 2);
    assert_int_equal(F.batch[3], 1);
    assert_true(strncmp(F.rec[4].url, "https://reg.test/up/a?digest=sha256%3A", 38) == 0);
    assert_true(strncmp(F.rec[6].url, "https://reg.test/up/c?x=1&digest=sha256%3A", 42) == 0);
    assert_memory_equal(F.rec[6].body, cc, 6);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void push_chunked_follows_the_newest_location(void **state)
{
    (void)state;
    const char *data = "0123456789";
    char digest[72], close_url[200];
    core_sha256_digest(digest, data, 10);
    snprintf(close_url, sizeof(close_url), "https://reg.test/s/3?digest=sha256%%3A%s", digest + 7);
    const canned script[] = {
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},
        {"POST", NULL, 202, "Location: /s/0\r\n", NULL, 0, 0, 0},
        {"PATCH", "https://reg.test/s/0", 202, "Location: /s/1\r\nRange: 0-3\r\n", NULL, 0, 0, 0},
        {"PATCH", "https://reg.test/s/1", 202, "Location: /s/2\r\nRange: 0-7\r\n", NULL, 0, 0, 0},
        {"PATCH", "https://reg.test/s/2", 202, "Location: https://reg.test/s/3\r\n", NULL, 0, 0, 0},
        {"PUT", close_url, 201, NULL, NULL, 0, 0, 0},
    };
    fake_reset(script, 6);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.chunk_size = 4;
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_upload up = {digest, 10, data, NULL, NULL};
    assert_int_equal(berth_oci_blobs_push(c, &r, &up, 1, NULL, NULL), 0);
    assert_true(has_header(2, "Content-Range: 0-3"));
    assert_true(has_header(3, "Content-Range: 4-7"));
    assert_true(has_header(4, "Content-Range: 8-9"));
    assert_memory_equal(F.rec[3].body, "4567", 4);
    assert_memory_equal(F.rec[4].body, "89", 2);
    assert_int_equal(F.rec[5].body_len, 0);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void push_restarts_the_session_after_a_failed_put(void **state)
{
    (void)state;
    char path[] = "/tmp/berth-client-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *data = "file contents for the blob";
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
    char digest[72];
    core_sha256_digest(digest, data, strlen(data));
    const canned script[] = {
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},
        {"POST", NULL, 202, "Location: /up/1\r\n", NULL, 0, 0, 0},
        {"PUT", NULL, 500, NULL, NULL, 0, 0, 0},
        {"POST", NULL, 202, "Location: /up/2\r\n", NULL, 0, 0, 0},
        {"PUT", NULL, 0, NULL, NULL, 0, BERTH_ENET, 0},
        {"POST", NULL, 202, "Location: /up/3\r\n", NULL, 0, 0, 0},
        {"PUT", NULL, 201, NULL, NULL, 0, 0, 0},
    };
    fake_reset(script, 7);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_upload up = {digest, (int64_t)strlen(data), NULL, path, NULL};
    assert_int_equal(berth_oci_blobs_push(c, &r, &up, 1, NULL, NULL), 0);
    assert_int_equal(F.nrec, 7);
    assert_true(strncmp(F.rec[6].url, "https://reg.test/up/3?", 22) == 0);
    assert_int_equal(F.rec[6].body_len, strlen(data));
    assert_memory_equal(F.rec[6].body, data, strlen(data));
    assert_int_equal(F.ndelays, 2);
    unlink(path);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void push_mounts_from_another_repository(void **state)
{
    (void)state;
    const char *data = "shared";
    char digest[72], post_url[300];
    core_sha256_digest(digest, data, 6);
    snprintf(post_url, sizeof(post_url),
             "https://reg.test/v2/app/blobs/uploads/?mount=sha256%%3A%s&from=base%%2Fimg",
             digest + 7);
    const canned script[] = {
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},
        {"POST", post_url, 201, NULL, NULL, 0, 0, 0},
        /* second push: mount refused, plain upload */
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},
        {"POST", post_url, 404, NULL, NULL, 0, 0, 0},
        {"POST", "https://reg.test/v2/app/blobs/uploads/", 202, "Location: /u\r\n", NULL, 0, 0, 0},
        {"PUT", NULL, 201, NULL, NULL, 0, 0, 0},
    };
    fake_reset(script, 6);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_upload up = {digest, 6, data, NULL, "base/img"};
    assert_int_equal(berth_oci_blobs_push(c, &r, &up, 1, NULL, NULL), 0);
    assert_int_equal(F.nrec, 2);
    assert_int_equal(berth_oci_blobs_push(c, &r, &up, 1, NULL, NULL), 0);
    assert_int_equal(F.nrec, 6);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void push_failure_names_the_blob(void **state)
{
    (void)state;
    const char *data = "bad";
    char digest[72];
    core_sha256_digest(digest, data, 3);
    const canned script[] = {
        {"HEAD", NULL, 404, NULL, NULL, 0, 0, 0},
        {"POST", NULL, 202, "Location: /u\r\n", NULL, 0, 0, 0},
        {"PUT", NULL, 400, NULL,
         "{\"errors\":[{\"code\":\"DIGEST_INVALID\",\"message\":\"provided digest did not match "
         "uploaded content\"}]}",
         0, 0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_upload up = {digest, 3, data, NULL, NULL};
    berth_error *err = NULL;
    assert_int_equal(berth_oci_blobs_push(c, &r, &up, 1, NULL, &err), BERTH_EINVAL);
    assert_error(err, BERTH_EINVAL, "DIGEST_INVALID");
    char *text = berth_error_text(err);
    assert_non_null(strstr(text, digest));
    free(text);
    berth_error_free(err);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

/* ------------------------------------------------------------------ referrers */

#define SUBJECT "sha256:5555555555555555555555555555555555555555555555555555555555555555"
#define REFERRER_INDEX                                                                             \
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","              \
    "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","                \
    "\"digest\":\"sha256:6666666666666666666666666666666666666666666666666666666666666666\","      \
    "\"size\":10,\"artifactType\":\"application/vnd.sig\"},"                                       \
    "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","                               \
    "\"digest\":\"sha256:7777777777777777777777777777777777777777777777777777777777777777\","      \
    "\"size\":11,\"artifactType\":\"application/vnd.sbom\"}]}"

static void referrers_fall_back_to_the_tag_on_404(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", "https://reg.test/v2/app/referrers/" SUBJECT "?artifactType=application%2Fvnd.sig",
         404, "Content-Type: text/plain\r\n", "404 page not found", 0, 0, 0},
        {"GET",
         "https://reg.test/v2/app/manifests/"
         "sha256-5555555555555555555555555555555555555555555555555555555555555555",
         200, "Content-Type: application/vnd.oci.image.index.v1+json\r\n", REFERRER_INDEX, 0, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_desc *d = NULL;
    size_t n = 0;
    bool fb = false;
    assert_int_equal(berth_oci_referrers(&d, &n, &fb, c, &r, SUBJECT, "application/vnd.sig", NULL),
                     0);
    assert_true(fb);
    assert_int_equal(n, 1); /* filtered on our side */
    assert_string_equal(d[0].digest,
                        "sha256:6666666666666666666666666666666666666666666666666666666666666666");
    assert_int_equal(d[0].size, 10);
    for (size_t i = 0; i < n; i++)
        berth_oci_desc_dispose(&d[i]);
    free(d);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void referrers_use_the_api_and_its_filter(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", NULL, 200,
         "Content-Type: application/vnd.oci.image.index.v1+json\r\n"
         "OCI-Filters-Applied: artifactType\r\n",
         REFERRER_INDEX, 0, 0, 0},
        {"GET", NULL, 404, NULL,
         "{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"repository name not known\"}]}", 0,
         0, 0},
        {"GET", NULL, 404, NULL, "404 page not found", 0, 0, 0},
        {"GET", NULL, 404, NULL,
         "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}", 0, 0,
         0},
    };
    fake_reset(script, 4);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_oci_desc *d = NULL;
    size_t n = 0;
    bool fb = true;
    /* the server says it filtered: both kept even though one is not application/vnd.sig */
    assert_int_equal(berth_oci_referrers(&d, &n, &fb, c, &r, SUBJECT, "application/vnd.sig", NULL),
                     0);
    assert_false(fb);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        berth_oci_desc_dispose(&d[i]);
    free(d);
    berth_error *err = NULL;
    assert_int_equal(berth_oci_referrers(&d, &n, &fb, c, &r, SUBJECT, NULL, &err), BERTH_ENOTFOUND);
    assert_error(err, BERTH_ENOTFOUND, "NAME_UNKNOWN");
    berth_error_free(err);
    /* no API and no tag: no referrers */
    assert_int_equal(berth_oci_referrers(&d, &n, &fb, c, &r, SUBJECT, NULL, NULL), 0);
    assert_true(fb);
    assert_int_equal(n, 0);
    free(d);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void referrers_tag_add_creates_then_skips_duplicates(void **state)
{
    (void)state;
    const char *tagurl = "https://reg.test/v2/app/manifests/"
                         "sha256-5555555555555555555555555555555555555555555555555555555555555555";
    const canned script[] = {
        {"GET", tagurl, 404, NULL,
         "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}", 0, 0,
         0},
        {"PUT", tagurl, 201, NULL, NULL, 0, 0, 0},
        {"GET", tagurl, 200, "Content-Type: application/vnd.oci.image.index.v1+json\r\n",
         REFERRER_INDEX, 0, 0, 0},
    };
    fake_reset(script, 3);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("reg.test/app");
    berth_kv ann = {(char *)(uintptr_t) "org.opencontainers.image.created",
                    (char *)(uintptr_t) "2025-01-01T00:00:00Z"};
    berth_oci_desc d = {0};
    d.media_type = (char *)(uintptr_t)BERTH_MT_OCI_MANIFEST;
    d.digest =
        (char *)(uintptr_t) "sha256:"
                            "6666666666666666666666666666666666666666666666666666666666666666";
    d.size = 10;
    d.artifact_type = (char *)(uintptr_t) "application/vnd.sig";
    d.annotations = &ann;
    d.annotations_len = 1;
    assert_int_equal(berth_oci_referrers_tag_add(c, &r, SUBJECT, &d, NULL), 0);
    assert_int_equal(F.nrec, 2);
    assert_true(has_header(1, "Content-Type: " BERTH_MT_OCI_INDEX));
    /* what was pushed parses back as an index holding the descriptor */
    berth_oci_manifest m;
    assert_int_equal(
        berth_oci_manifest_parse(&m, F.rec[1].body, F.rec[1].body_len, BERTH_MT_OCI_INDEX, NULL),
        0);
    assert_true(m.is_index);
    assert_int_equal(m.layers_len, 1);
    assert_string_equal(m.layers[0].digest, d.digest);
    assert_string_equal(m.layers[0].artifact_type, "application/vnd.sig");
    assert_string_equal(berth_kv_get(m.layers[0].annotations, m.layers[0].annotations_len,
                                     "org.opencontainers.image.created"),
                        "2025-01-01T00:00:00Z");
    berth_oci_manifest_dispose(&m);
    /* already listed: nothing is pushed */
    assert_int_equal(berth_oci_referrers_tag_add(c, &r, SUBJECT, &d, NULL), 0);
    assert_int_equal(F.nrec, 3);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void referrers_tag_replaces_the_colon(void **state)
{
    (void)state;
    char *t = berth_oci_referrers_tag(SUBJECT);
    assert_string_equal(t,
                        "sha256-5555555555555555555555555555555555555555555555555555555555555555");
    free(t);
    t = berth_oci_referrers_tag("sha512+x:ab=c");
    assert_string_equal(t, "sha512-x-ab-c");
    free(t);
    assert_null(berth_oci_referrers_tag("nocolon"));
}

/* ------------------------------------------------------------------ scheme */

static void loopback_falls_back_to_http_and_remembers_it(void **state)
{
    (void)state;
    const canned script[] = {
        /* what core/http reports for a TLS handshake with a plain-http server */
        {"GET", "https://127.0.0.1:5000/v2/app/tags/list?n=1000", 0, NULL, NULL, 0, BERTH_ERROR, 0},
        {"GET", "http://127.0.0.1:5000/v2/app/tags/list?n=1000", 200, NULL, "{\"tags\":[]}", 0, 0,
         0},
        {"GET", "http://127.0.0.1:5000/v2/app/tags/list?n=1000", 200, NULL, "{\"tags\":[]}", 0, 0,
         0},
    };
    fake_reset(script, 3);
    berth_oci_client *c = make_client(NULL);
    berth_oci_ref r = ref_of("127.0.0.1:5000/app");
    char **tags = NULL;
    size_t n = 0;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    berth_strv_free(tags, n);
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, NULL), 0);
    berth_strv_free(tags, n);
    assert_int_equal(F.nrec, 3); /* the second listing went straight to http */
    assert_int_equal(F.ndelays, 0);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void loopback_reports_the_https_error_when_http_fails_too(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", "https://localhost:5000/v2/app/tags/list?n=1000", 0, NULL, NULL, 0, BERTH_ENET, 0},
        {"GET", "http://localhost:5000/v2/app/tags/list?n=1000", 400, NULL,
         "Client sent an HTTP request to an HTTPS server.", 0, 0, 0},
    };
    fake_reset(script, 2);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.max_retries = -1; /* no retries */
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("localhost:5000/app");
    char **tags = NULL;
    size_t n = 0;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, &err), BERTH_ENET);
    assert_error(err, BERTH_ENET, "https://localhost:5000");
    berth_error_free(err);
    assert_int_equal(F.nrec, 2);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void remote_hosts_never_fall_back_to_http(void **state)
{
    (void)state;
    const canned script[] = {
        {"GET", "https://reg.test/v2/app/tags/list?n=1000", 0, NULL, NULL, 0, BERTH_ENET, 0},
        {"GET", "https://reg.test/v2/app/tags/list?n=1000", 0, NULL, NULL, 0, BERTH_ENET, 0},
    };
    fake_reset(script, 2);
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.max_retries = 1;
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    char **tags = NULL;
    size_t n = 0;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_tags_list(&tags, &n, c, &r, 0, &err), BERTH_ENET);
    assert_error(err, BERTH_ENET, "connection reset");
    berth_error_free(err);
    assert_int_equal(F.nrec, 2);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
}

static void loopback_hosts_are_recognised(void **state)
{
    (void)state;
    assert_true(oci_host_is_loopback("localhost"));
    assert_true(oci_host_is_loopback("LOCALHOST:5000"));
    assert_true(oci_host_is_loopback("127.0.0.1"));
    assert_true(oci_host_is_loopback("127.1.2.3:80"));
    assert_true(oci_host_is_loopback("[::1]:5000"));
    assert_true(oci_host_is_loopback("::1"));
    assert_false(oci_host_is_loopback("127.0.0.1.evil.test"));
    assert_false(oci_host_is_loopback("localhost.evil.test:5000"));
    assert_false(oci_host_is_loopback("10.0.0.1:5000"));
    assert_false(oci_host_is_loopback("128.0.0.1"));
    assert_false(oci_host_is_loopback("127.0.0.256"));
}

/* ------------------------------------------------------------------ progress */

typedef struct prog_log {
    int calls;
    int64_t last_done;
    int64_t total;
    char what[32];
} prog_log;

static void on_progress(void *payload, const char *what, int64_t done, int64_t total)
{
    prog_log *p = payload;
    p->calls++;
    p->last_done = done;
    p->total = total;
    snprintf(p->what, sizeof(p->what), "%s", what);
}

static void progress_reports_the_final_byte_count(void **state)
{
    (void)state;
    const size_t len = 5000;
    char *data = pattern(len);
    char digest[72];
    core_sha256_digest(digest, data, len);
    canned script[] = {{"GET", NULL, 200, NULL, data, len, 0, 0}};
    fake_reset(script, 1);
    prog_log pl = {0, 0, 0, ""};
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    o.progress = on_progress;
    o.progress_payload = &pl;
    berth_oci_client *c = make_client(&o);
    berth_oci_ref r = ref_of("reg.test/app");
    collect col = {BERTH_BUF_INIT, 0};
    assert_int_equal(berth_oci_blob_get(c, &r, digest, (int64_t)len, collect_sink, &col, NULL), 0);
    assert_true(pl.calls >= 1 && pl.calls <= 2); /* throttled: two sink calls, one report */
    assert_int_equal(pl.last_done, (int64_t)len);
    assert_int_equal(pl.total, (int64_t)len);
    assert_int_equal(strlen(pl.what), 12);
    assert_memory_equal(pl.what, digest + 7, 12);
    berth_buf_dispose(&col.buf);
    berth_oci_ref_dispose(&r);
    berth_oci_client_free(c);
    free(data);
}

static int teardown(void **state)
{
    (void)state;
    fake_reset(NULL, 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(bearer_token_is_fetched_once_and_reused, teardown),
        cmocka_unit_test_teardown(bearer_token_request_uses_basic_creds_and_new_scopes, teardown),
        cmocka_unit_test_teardown(insufficient_scope_requests_the_union_once, teardown),
        cmocka_unit_test_teardown(endless_new_challenges_stop_after_four_rounds, teardown),
        cmocka_unit_test_teardown(basic_auth_rejected_names_the_registry_host, teardown),
        cmocka_unit_test_teardown(expired_token_is_replaced_before_the_request, teardown),
        cmocka_unit_test_teardown(identity_token_uses_the_oauth2_refresh_grant, teardown),
        cmocka_unit_test_teardown(basic_challenge_without_creds_is_eauth, teardown),
        cmocka_unit_test_teardown(lone_creds_value_is_sent_as_bearer_token, teardown),
        cmocka_unit_test_teardown(server_errors_are_retried_with_backoff, teardown),
        cmocka_unit_test_teardown(server_errors_exhaust_retries_as_enet, teardown),
        cmocka_unit_test_teardown(time_budget_bounds_transfers_and_stops_retries, teardown),
        cmocka_unit_test_teardown(restarted_budget_lets_a_kept_client_work_again, teardown),
        cmocka_unit_test_teardown(too_many_requests_honours_retry_after, teardown),
        cmocka_unit_test(retry_after_reads_seconds_and_http_dates),
        cmocka_unit_test_teardown(get_is_retried_after_a_network_error_and_null_tags_are_empty,
                                  teardown),
        cmocka_unit_test_teardown(missing_manifest_is_enotfound_naming_the_reference, teardown),
        cmocka_unit_test_teardown(manifest_by_digest_must_hash_to_it, teardown),
        cmocka_unit_test_teardown(manifest_by_tag_checks_docker_content_digest, teardown),
        cmocka_unit_test_teardown(manifest_head_falls_back_to_get_without_digest_header, teardown),
        cmocka_unit_test_teardown(manifest_put_rejects_a_different_stored_digest, teardown),
        cmocka_unit_test_teardown(tags_follow_link_pagination_across_three_pages, teardown),
        cmocka_unit_test_teardown(tags_refuse_a_cross_origin_link, teardown),
        cmocka_unit_test_teardown(blob_get_resumes_after_a_dropped_body, teardown),
        cmocka_unit_test_teardown(blob_get_resume_skips_bytes_when_range_is_ignored, teardown),
        cmocka_unit_test_teardown(blob_get_reports_a_digest_mismatch, teardown),
        cmocka_unit_test_teardown(blob_exists_treats_404_as_absent, teardown),
        cmocka_unit_test_teardown(push_monolithic_keeps_relative_location_query, teardown),
        cmocka_unit_test_teardown(push_absolute_location_on_another_host_gets_no_credentials,
                                  teardown),
        cmocka_unit_test_teardown(push_runs_blobs_in_parallel_after_one_head, teardown),
        cmocka_unit_test_teardown(push_chunked_follows_the_newest_location, teardown),
        cmocka_unit_test_teardown(push_restarts_the_session_after_a_failed_put, teardown),
        cmocka_unit_test_teardown(push_mounts_from_another_repository, teardown),
        cmocka_unit_test_teardown(push_failure_names_the_blob, teardown),
        cmocka_unit_test_teardown(referrers_fall_back_to_the_tag_on_404, teardown),
        cmocka_unit_test_teardown(referrers_use_the_api_and_its_filter, teardown),
        cmocka_unit_test_teardown(referrers_tag_add_creates_then_skips_duplicates, teardown),
        cmocka_unit_test(referrers_tag_replaces_the_colon),
        cmocka_unit_test_teardown(loopback_falls_back_to_http_and_remembers_it, teardown),
        cmocka_unit_test_teardown(loopback_reports_the_https_error_when_http_fails_too, teardown),
        cmocka_unit_test_teardown(remote_hosts_never_fall_back_to_http, teardown),
        cmocka_unit_test(loopback_hosts_are_recognised),
        cmocka_unit_test_teardown(progress_reports_the_final_byte_count, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
