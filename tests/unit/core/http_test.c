/*
 * Unit tests for core/http.h: URL and header helpers, the transport vtable, and real transfers
 * through the curl transport against a tiny HTTP/1.1 server that this file runs on 127.0.0.1.
 *
 * The server is single-threaded (one pthread), answers one connection at a time and closes each
 * connection after its response, which is enough for concurrent clients: the kernel queues the
 * other connections in the listen backlog. Routes:
 *   /ok             200 "hello world" (X-Test: final)
 *   /notfound       404 with a JSON error body
 *   /redirect       302 to /ok (X-Test: hop, body "moved")
 *   /redirect-other 302 to http://localhost:<port>/auth (another host name)
 *   /auth           200, body = the Authorization header received, or "none"
 *   /big/N          200 with N pattern bytes;  /bigerr/N: 500 with N pattern bytes
 *   /echo           200 "<METHOD> <len> <sha256> expect=<..> ct=<..> te=<..>" of the request
 *   /cut            200 announcing 1000 bytes, sends 100, closes
 *   /stall          waits 1 s, then closes without answering
 *   non-HTTP bytes  (a TLS ClientHello) answered with a plain 400
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "core/http.h"

/* ---- the test server ---- */

typedef struct server {
    int listen_fd;
    int port;
    int stop[2];
    pthread_t thread;
} server;

static server srv;

typedef struct conn {
    int fd;
    char buf[65536];
    size_t pos;
    size_t len;
} conn;

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)(i * 31u + (i >> 9));
}

static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int conn_fill(conn *c)
{
    if (c->pos < c->len)
        return 0;
    ssize_t n;
    do {
        n = recv(c->fd, c->buf, sizeof(c->buf), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    c->pos = 0;
    c->len = (size_t)n;
    return 0;
}

/* One line without CRLF into out; -1 on EOF or overflow. */
static int conn_line(conn *c, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        if (conn_fill(c) < 0)
            return -1;
        char ch = c->buf[c->pos++];
        if (ch == '\n')
            break;
        if (n + 1 >= cap)
            return -1;
        out[n++] = ch;
    }
    if (n > 0 && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    return 0;
}

static int conn_body(conn *c, size_t n, core_sha256 *h, size_t *total)
{
    while (n > 0) {
        if (conn_fill(c) < 0)
            return -1;
        size_t take = c->len - c->pos < n ? c->len - c->pos : n;
        core_sha256_update(h, c->buf + c->pos, take);
        c->pos += take;
        *total += take;
        n -= take;
    }
    return 0;
}

static void respond(int fd, const char *status, const char *extra, const void *body, size_t len,
                    bool head)
{
    char hdr[1024];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                     len, extra ? extra : "");
    if (send_all(fd, hdr, (size_t)n) < 0 || head)
        return;
    send_all(fd, body, len);
}

static void respond_pattern(int fd, const char *status, size_t len, bool head)
{
    char hdr[256];
    unsigned char chunk[65536];
    int n =
        snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status, len);
    if (send_all(fd, hdr, (size_t)n) < 0 || head)
        return;
    for (size_t off = 0; off < len;) {
        size_t take = len - off < sizeof(chunk) ? len - off : sizeof(chunk);
        for (size_t i = 0; i < take; i++)
            chunk[i] = pattern_byte(off + i);
        if (send_all(fd, chunk, take) < 0)
            return;
        off += take;
    }
}

static void handle(int fd)
{
    static conn c;
    char line[8192], method[16] = "", path[4096] = "";
    char auth[1024] = "none", expect[64] = "none", ctype[128] = "none";
    size_t content_len = 0, total = 0;
    bool chunked = false;
    core_sha256 *h = NULL;
    char hex[CORE_SHA256_HEX_LEN + 1];
    char body[512];

    c.fd = fd;
    c.pos = c.len = 0;
    if (conn_fill(&c) < 0)
        return;
    if (c.buf[0] < 'A' || c.buf[0] > 'Z') { /* not HTTP (a TLS ClientHello) */
        respond(fd, "400 Bad Request", NULL, "plain http\n", 11, false);
        return;
    }
    if (conn_line(&c, line, sizeof(line)) < 0 || sscanf(line, "%15s %4095s", method, path) != 2)
        return;
    char *query = strchr(path, '?');
    if (query)
        *query = '\0'; /* routes ignore the query */
    while (conn_line(&c, line, sizeof(line)) == 0 && line[0] != '\0') {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        if (core_strncasecmp(line, "content-length", 15) == 0)
            content_len = (size_t)strtoull(v, NULL, 10);
        else if (core_strncasecmp(line, "transfer-encoding", 18) == 0)
            chunked = strstr(v, "chunked") != NULL;
        else if (core_strncasecmp(line, "authorization", 14) == 0)
            snprintf(auth, sizeof(auth), "%s", v);
        else if (core_strncasecmp(line, "expect", 7) == 0)
            snprintf(expect, sizeof(expect), "%s", v);
        else if (core_strncasecmp(line, "content-type", 13) == 0)
            snprintf(ctype, sizeof(ctype), "%s", v);
    }
    if (core_sha256_new(&h, NULL) < 0)
        return;
    if (chunked) {
        for (;;) {
            if (conn_line(&c, line, sizeof(line)) < 0)
                goto out;
            size_t n = (size_t)strtoull(line, NULL, 16);
            if (n == 0) {
                while (conn_line(&c, line, sizeof(line)) == 0 && line[0] != '\0')
                    ;
                break;
            }
            if (conn_body(&c, n, h, &total) < 0 || conn_line(&c, line, sizeof(line)) < 0)
                goto out;
        }
    } else if (conn_body(&c, content_len, h, &total) < 0) {
        goto out;
    }
    core_sha256_final_hex(h, hex);

    bool head = strcmp(method, "HEAD") == 0;
    if (strcmp(path, "/ok") == 0) {
        respond(fd, "200 OK", "X-Test: final\r\n", "hello world", 11, head);
    } else if (strcmp(path, "/notfound") == 0) {
        const char *b = "{\"errors\":[{\"code\":\"NAME_UNKNOWN\"}]}";
        respond(fd, "404 Not Found", "Content-Type: application/json\r\n", b, strlen(b), head);
    } else if (strcmp(path, "/redirect") == 0) {
        respond(fd, "302 Found", "X-Test: hop\r\nLocation: /ok\r\n", "moved", 5, head);
    } else if (strcmp(path, "/redirect-other") == 0) {
        char loc[128];
        snprintf(loc, sizeof(loc), "Location: http://localhost:%d/auth\r\n", srv.port);
        respond(fd, "302 Found", loc, "", 0, head);
    } else if (strcmp(path, "/auth") == 0) {
        respond(fd, "200 OK", NULL, auth, strlen(auth), head);
    } else if (strncmp(path, "/big/", 5) == 0) {
        respond_pattern(fd, "200 OK", (size_t)strtoull(path + 5, NULL, 10), head);
    } else if (strncmp(path, "/bigerr/", 8) == 0) {
        respond_pattern(fd, "500 Internal Server Error", (size_t)strtoull(path + 8, NULL, 10),
                        head);
    } else if (strcmp(path, "/echo") == 0) {
        int n = snprintf(body, sizeof(body), "%s %zu %s expect=%s ct=%s te=%s", method, total, hex,
                         expect, ctype, chunked ? "chunked" : "none");
        respond(fd, "200 OK", NULL, body, (size_t)n, head);
    } else if (strcmp(path, "/cut") == 0) {
        char part[100];
        memset(part, 'x', sizeof(part));
        const char *hdr = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        if (send_all(fd, hdr, strlen(hdr)) == 0)
            send_all(fd, part, sizeof(part));
    } else if (strcmp(path, "/stall") == 0) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    } else {
        respond(fd, "404 Not Found", NULL, "", 0, head);
    }
out:
    core_sha256_free(h);
}

static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[2] = {{srv.listen_fd, POLLIN, 0}, {srv.stop[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        int fd = accept(srv.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        handle(fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

static int bind_loopback(int *port_out)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        close(fd);
        return -1;
    }
    *port_out = ntohs(a.sin_port);
    return fd;
}

static int server_start(void **state)
{
    (void)state;
    if ((srv.listen_fd = bind_loopback(&srv.port)) < 0 || listen(srv.listen_fd, 64) < 0)
        return -1;
    if (pipe(srv.stop) < 0)
        return -1;
    if (pthread_create(&srv.thread, NULL, serve, NULL) != 0)
        return -1;
    return 0;
}

static int server_stop(void **state)
{
    (void)state;
    if (write(srv.stop[1], "x", 1) != 1)
        return -1;
    pthread_join(srv.thread, NULL);
    close(srv.listen_fd);
    close(srv.stop[0]);
    close(srv.stop[1]);
    return 0;
}

/* ---- client helpers ---- */

/* URLs made by a test, freed by urls_free() at its end (req.url is const). */
static char *owned_urls[32];
static size_t n_owned_urls;

static const char *keep_url(char *u)
{
    assert_non_null(u);
    assert_true(n_owned_urls < sizeof(owned_urls) / sizeof(owned_urls[0]));
    owned_urls[n_owned_urls++] = u;
    return u;
}

static const char *url(const char *path)
{
    return keep_url(core_sprintf("http://127.0.0.1:%d%s", srv.port, path));
}

static void urls_free(void)
{
    while (n_owned_urls > 0)
        core_free(owned_urls[--n_owned_urls]);
}

static core_http *client(void)
{
    core_http *h = NULL;
    berth_error *err = NULL;
    assert_int_equal(core_http_new(&h, NULL, &err), 0);
    assert_null(err);
    return h;
}

static void sha_hex(char hex[CORE_SHA256_HEX_LEN + 1], const void *data, size_t len)
{
    char d[72];
    core_sha256_digest(d, data, len);
    memcpy(hex, d + 7, CORE_SHA256_HEX_LEN + 1);
}

static unsigned char *pattern(size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = pattern_byte(i);
    return p;
}

typedef struct sink_state {
    core_sha256 *h;
    size_t bytes;
    size_t calls;
    size_t fail_after; /* 0: never fail */
} sink_state;

static int hash_sink(void *payload, const void *data, size_t len)
{
    sink_state *s = payload;
    s->calls++;
    s->bytes += len;
    if (s->fail_after && s->bytes > s->fail_after)
        return BERTH_EIO;
    return core_sha256_update(s->h, data, len);
}

static void sink_init(sink_state *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(core_sha256_new(&s->h, NULL), 0);
}

typedef struct source_state {
    const unsigned char *data;
    size_t len;
    size_t off;
    bool fail;
} source_state;

static ssize_t mem_source(void *payload, void *buf, size_t cap)
{
    source_state *s = payload;
    if (s->fail && s->off > 0)
        return BERTH_EIO;
    size_t take = s->len - s->off < cap ? s->len - s->off : cap;
    if (take > 1000)
        take = 1000; /* many small reads, as a file reader might do */
    memcpy(buf, s->data + s->off, take);
    s->off += take;
    return (ssize_t)take;
}

static void assert_msg_has(const berth_error *e, const char *word)
{
    assert_non_null(e);
    const char *m = berth_error_message(e);
    if (!strstr(m, word))
        fail_msg("message \"%s\" lacks \"%s\"", m, word);
}

/* ---- URL helpers ---- */

static void url_resolve_handles_rfc3986_reference_forms(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"https://reg/v2/a/blobs/uploads/", "https://other:5000/up?x=1",
         "https://other:5000/up?x=1"},
        {"https://reg/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/uuid?_state=x",
         "https://reg/v2/a/blobs/uploads/uuid?_state=x"},
        {"https://reg/v2/a/b/c", "../x", "https://reg/v2/a/x"},
        {"https://reg/v2/a/b?x=1", "?q", "https://reg/v2/a/b?q"},
        {"https://reg/v2/a/b", "c", "https://reg/v2/a/c"},
        {"https://reg:5000/v2/", "//cdn.example/z?a=b", "https://cdn.example/z?a=b"},
        {"https://reg/a/b?x", "", "https://reg/a/b?x"},
        {"https://reg/a/b", "#f", "https://reg/a/b#f"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *r = core_url_resolve(cases[i][0], cases[i][1]);
        assert_non_null(r);
        assert_string_equal(r, cases[i][2]);
        core_free(r);
    }
    assert_null(core_url_resolve("not a url", "/x"));
}

static void url_origin_lowercases_and_drops_default_port(void **state)
{
    (void)state;
    char *o = core_url_origin("HTTPS://Reg.Example:5000/v2/x?y=1");
    assert_string_equal(o, "https://reg.example:5000");
    core_free(o);
    o = core_url_origin("https://reg:443/v2/");
    assert_string_equal(o, "https://reg");
    core_free(o);
    o = core_url_origin("http://reg:80/");
    assert_string_equal(o, "http://reg");
    core_free(o);
    o = core_url_origin("http://reg:443/");
    assert_string_equal(o, "http://reg:443");
    core_free(o);
    assert_null(core_url_origin("reg/v2"));
}

static void url_escape_keeps_only_unreserved(void **state)
{
    (void)state;
    char *e = core_url_escape("repository:a/b:pull,push ~x_y.z-");
    assert_string_equal(e, "repository%3Aa%2Fb%3Apull%2Cpush%20~x_y.z-");
    core_free(e);
    e = core_url_escape("\xc3\xa9");
    assert_string_equal(e, "%C3%A9");
    core_free(e);
}

static void resp_header_is_case_insensitive_trimmed_first_match(void **state)
{
    (void)state;
    core_http_resp r;
    memset(&r, 0, sizeof(r));
    berth_buf_init(&r.headers, 0);
    berth_buf_puts(&r.headers, "content-type: a/b \r\nDocker-Content-Digest:\t sha256:1 \r\n"
                               "docker-content-digest: sha256:2\r\nX-Empty:\r\n");
    char *v = core_http_resp_header(&r, "Content-Type");
    assert_string_equal(v, "a/b");
    core_free(v);
    v = core_http_resp_header(&r, "DOCKER-CONTENT-DIGEST");
    assert_string_equal(v, "sha256:1");
    core_free(v);
    v = core_http_resp_header(&r, "x-empty");
    assert_string_equal(v, "");
    core_free(v);
    assert_null(core_http_resp_header(&r, "content"));
    assert_null(core_http_resp_header(&r, "Location"));
    berth_buf_dispose(&r.headers);
}

/* ---- the transport vtable ---- */

typedef struct fake {
    int runs;
    int *freed;
} fake;

static int fake_run(void *self, core_http_xfer *xfers, size_t n)
{
    fake *f = self;
    f->runs++;
    for (size_t i = 0; i < n; i++) {
        if (strstr(xfers[i].req.url, "fail")) {
            core_error_set(&xfers[i].err, BERTH_ENOTFOUND, "deep cause");
            xfers[i].rc = core_error_set(&xfers[i].err, BERTH_ENET, "fake failure");
        } else {
            xfers[i].resp.status = 201;
        }
    }
    return 0;
}

static void fake_free(void *self)
{
    fake *f = self;
    (*f->freed)++;
    free(f);
}

static void transport_vtable_receives_run_and_errors_are_copied(void **state)
{
    (void)state;
    int freed = 0;
    fake *f = calloc(1, sizeof(*f));
    f->freed = &freed;
    core_http_transport t = {1, fake_run, fake_free, f};
    core_http *h = NULL;
    berth_error *err = NULL;
    assert_int_equal(core_http_new_with_transport(&h, &t, &err), 0);

    core_http_xfer x;
    memset(&x, 0, sizeof(x));
    x.req.url = "https://reg/ok";
    assert_int_equal(core_http_do(h, &x, &err), 0);
    assert_int_equal(x.resp.status, 201);
    core_http_xfer_dispose(&x);

    x.req.url = "https://reg/fail";
    assert_int_equal(core_http_do(h, &x, &err), BERTH_ENET);
    assert_int_equal(berth_error_code(err), BERTH_ENET);
    assert_msg_has(err, "fake failure");
    assert_int_equal(berth_error_code(berth_error_cause(err)), BERTH_ENOTFOUND);
    assert_non_null(x.err); /* still owned by the xfer */
    core_http_xfer_dispose(&x);
    assert_null(x.err);
    berth_error_free(err);
    assert_int_equal(f->runs, 2);
    core_http_free(h);
    assert_int_equal(freed, 1);
}

/* ---- real transfers ---- */

static void http_get_keeps_body_and_final_headers(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x;
    memset(&x, 0, sizeof(x));
    x.req.url = url("/ok");
    assert_int_equal(core_http_do(h, &x, NULL), 0);
    assert_int_equal(x.resp.status, 200);
    assert_int_equal(x.resp.body.len, 11);
    assert_memory_equal(x.resp.body.ptr, "hello world", 11);
    assert_int_equal(x.resp.body_bytes, 11);
    char *v = core_http_resp_header(&x.resp, "x-test");
    assert_string_equal(v, "final");
    core_free(v);
    assert_string_equal(x.resp.url, x.req.url);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

static void http_head_returns_headers_without_body(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x;
    memset(&x, 0, sizeof(x));
    x.req.method = "HEAD";
    x.req.url = url("/ok");
    assert_int_equal(core_http_do(h, &x, NULL), 0);
    assert_int_equal(x.resp.status, 200);
    assert_int_equal(x.resp.body.len, 0);
    char *v = core_http_resp_header(&x.resp, "Content-Length");
    assert_string_equal(v, "11");
    core_free(v);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

static void http_sink_gets_2xx_body_and_error_body_stays_in_resp(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x[2];
    sink_state s[2];
    char got[CORE_SHA256_HEX_LEN + 1], want[CORE_SHA256_HEX_LEN + 1];
    size_t len = 3 * 1024 * 1024 + 17;
    unsigned char *p = pattern(len);

    memset(x, 0, sizeof(x));
    for (int i = 0; i < 2; i++) {
        sink_init(&s[i]);
        x[i].req.sink = hash_sink;
        x[i].req.sink_payload = &s[i];
    }
    x[0].req.url = keep_url(core_sprintf("http://127.0.0.1:%d/big/%zu", srv.port, len));
    x[1].req.url = url("/notfound");
    assert_int_equal(core_http_run(h, x, 2), 0);

    assert_int_equal(x[0].rc, 0);
    assert_int_equal(x[0].resp.status, 200);
    assert_int_equal(x[0].resp.body.len, 0);
    assert_int_equal(x[0].resp.body_bytes, (int64_t)len);
    assert_int_equal(s[0].bytes, len);
    core_sha256_final_hex(s[0].h, got);
    sha_hex(want, p, len);
    assert_string_equal(got, want);

    assert_int_equal(x[1].rc, 0);
    assert_int_equal(x[1].resp.status, 404);
    assert_int_equal(s[1].calls, 0);
    assert_non_null(strstr(x[1].resp.body.ptr, "NAME_UNKNOWN"));

    for (int i = 0; i < 2; i++) {
        core_sha256_free(s[i].h);
        core_http_xfer_dispose(&x[i]);
    }
    free(p);
    core_http_free(h);
    urls_free();
}

static void http_sink_error_becomes_transfer_code(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x;
    sink_state s;
    berth_error *err = NULL;
    sink_init(&s);
    s.fail_after = 100000;
    memset(&x, 0, sizeof(x));
    x.req.url = url("/big/1000000");
    x.req.sink = hash_sink;
    x.req.sink_payload = &s;
    assert_int_equal(core_http_do(h, &x, &err), BERTH_EIO);
    assert_msg_has(err, "/big/1000000");
    assert_msg_has(err, "body");
    berth_error_free(err);
    core_sha256_free(s.h);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

static void http_redirect_keeps_only_final_headers(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x[2];
    memset(x, 0, sizeof(x));
    x[0].req.url = url("/redirect");
    x[0].req.follow_redirects = true;
    x[1].req.url = url("/redirect");
    assert_int_equal(core_http_run(h, x, 2), 0);

    assert_int_equal(x[0].rc, 0);
    assert_int_equal(x[0].resp.status, 200);
    char *v = core_http_resp_header(&x[0].resp, "X-Test");
    assert_string_equal(v, "final");
    core_free(v);
    assert_null(core_http_resp_header(&x[0].resp, "Location"));
    assert_true(core_str_has_suffix(x[0].resp.url, "/ok"));
    assert_int_equal(x[0].resp.body.len, 11);
    assert_memory_equal(x[0].resp.body.ptr, "hello world", 11);

    /* Not followed: the 302 itself is the answer, with its body. */
    assert_int_equal(x[1].rc, 0);
    assert_int_equal(x[1].resp.status, 302);
    v = core_http_resp_header(&x[1].resp, "location");
    assert_string_equal(v, "/ok");
    core_free(v);
    assert_string_equal(x[1].resp.body.ptr, "moved");

    for (int i = 0; i < 2; i++) {
        core_http_xfer_dispose(&x[i]);
    }
    core_http_free(h);
    urls_free();
}

static void http_redirect_to_other_host_drops_authorization(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x[2];
    const char *hdrs[] = {"Authorization: Bearer s3cret", NULL};
    memset(x, 0, sizeof(x));
    x[0].req.url = url("/redirect-other"); /* 127.0.0.1 -> localhost */
    x[0].req.follow_redirects = true;
    x[0].req.headers = hdrs;
    x[1].req.url = url("/auth"); /* control: sent to the same host */
    x[1].req.headers = hdrs;
    assert_int_equal(core_http_run(h, x, 2), 0);
    assert_int_equal(x[0].rc, 0);
    assert_int_equal(x[0].resp.status, 200);
    assert_true(core_str_has_prefix(x[0].resp.url, "http://localhost:"));
    assert_string_equal(x[0].resp.body.ptr, "none");
    assert_int_equal(x[1].rc, 0);
    assert_string_equal(x[1].resp.body.ptr, "Bearer s3cret");
    for (int i = 0; i < 2; i++) {
        core_http_xfer_dispose(&x[i]);
    }
    core_http_free(h);
    urls_free();
}

static void check_echo(const core_http_xfer *x, const char *method, const void *data, size_t len,
                       const char *te)
{
    char hex[CORE_SHA256_HEX_LEN + 1];
    char want[512];
    sha_hex(hex, data, len);
    snprintf(want, sizeof(want), "%s %zu %s expect=none ct=", method, len, hex);
    assert_int_equal(x->rc, 0);
    assert_int_equal(x->resp.status, 200);
    assert_non_null(x->resp.body.ptr);
    if (!core_str_has_prefix(x->resp.body.ptr, want))
        fail_msg("echo \"%s\", expected prefix \"%s\"", x->resp.body.ptr, want);
    assert_true(core_str_has_suffix(x->resp.body.ptr, te));
}

static void http_request_bodies_arrive_intact(void **state)
{
    (void)state;
    core_http *h = client();
    size_t big = 5 * 1024 * 1024 + 3;
    unsigned char *p = pattern(big);
    source_state src[2] = {{p, big, 0, false}, {p, 70000, 0, false}};
    const char *ct[] = {"Content-Type: application/octet-stream", NULL};
    core_http_xfer x[6];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < 6; i++)
        x[i].req.url = url("/echo");
    x[0].req.method = "PUT"; /* memory, large (above libcurl's 100-continue threshold) */
    x[0].req.body = p;
    x[0].req.body_len = big;
    x[0].req.headers = ct;
    x[1].req.method = "PATCH"; /* memory */
    x[1].req.body = p;
    x[1].req.body_len = 12345;
    x[2].req.method = "POST"; /* memory, no Content-Type given: none is sent */
    x[2].req.body = p;
    x[2].req.body_len = 10;
    x[3].req.method = "PUT"; /* streamed, known length */
    x[3].req.source = mem_source;
    x[3].req.source_payload = &src[0];
    x[3].req.source_len = (int64_t)big;
    x[4].req.method = "PATCH"; /* streamed, unknown length: chunked */
    x[4].req.source = mem_source;
    x[4].req.source_payload = &src[1];
    x[4].req.source_len = -1;
    x[5].req.method = "PUT"; /* empty */
    assert_int_equal(core_http_run(h, x, 6), 0);

    check_echo(&x[0], "PUT", p, big, "te=none");
    assert_non_null(strstr(x[0].resp.body.ptr, "ct=application/octet-stream"));
    check_echo(&x[1], "PATCH", p, 12345, "te=none");
    check_echo(&x[2], "POST", p, 10, "te=none");
    assert_non_null(strstr(x[2].resp.body.ptr, "ct=none"));
    check_echo(&x[3], "PUT", p, big, "te=none");
    check_echo(&x[4], "PATCH", p, 70000, "te=chunked");
    check_echo(&x[5], "PUT", "", 0, "te=none");
    for (int i = 0; i < 6; i++) {
        core_http_xfer_dispose(&x[i]);
    }
    free(p);
    core_http_free(h);
    urls_free();
}

static void http_source_error_becomes_transfer_code(void **state)
{
    (void)state;
    core_http *h = client();
    unsigned char *p = pattern(50000);
    source_state src = {p, 50000, 0, true};
    core_http_xfer x;
    berth_error *err = NULL;
    memset(&x, 0, sizeof(x));
    x.req.method = "PUT";
    x.req.url = url("/echo");
    x.req.source = mem_source;
    x.req.source_payload = &src;
    x.req.source_len = 50000;
    assert_int_equal(core_http_do(h, &x, &err), BERTH_EIO);
    assert_msg_has(err, "request body");
    berth_error_free(err);
    core_http_xfer_dispose(&x);
    free(p);
    core_http_free(h);
    urls_free();
}

static void http_body_over_max_is_einval_but_error_body_is_cut(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x[3];
    memset(x, 0, sizeof(x));
    x[0].req.url = url("/big/2000");
    x[0].req.max_body = 1000;
    x[1].req.url = url("/big/5000000"); /* default ceiling: 4 MiB */
    x[2].req.url = url("/bigerr/100000");
    assert_int_equal(core_http_run(h, x, 3), 0);

    assert_int_equal(x[0].rc, BERTH_EINVAL);
    assert_int_equal(berth_error_code(x[0].err), BERTH_EINVAL);
    assert_msg_has(x[0].err, "exceeds 1000 bytes");
    assert_int_equal(x[1].rc, BERTH_EINVAL);
    assert_msg_has(x[1].err, "exceeds 4194304 bytes");

    assert_int_equal(x[2].rc, 0);
    assert_int_equal(x[2].resp.status, 500);
    assert_int_equal(x[2].resp.body.len, 65536);
    assert_int_equal(x[2].resp.body_bytes, 100000);
    unsigned char *p = pattern(65536);
    assert_memory_equal(x[2].resp.body.ptr, p, 65536);
    free(p);
    for (int i = 0; i < 3; i++) {
        core_http_xfer_dispose(&x[i]);
    }
    core_http_free(h);
    urls_free();
}

static void http_eight_concurrent_transfers_each_get_their_own_result(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x[8];
    sink_state s[8];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < 8; i++) {
        sink_init(&s[i]);
        x[i].req.url =
            keep_url(core_sprintf("http://127.0.0.1:%d/big/%d", srv.port, 100000 * (i + 1) + i));
        x[i].req.sink = hash_sink;
        x[i].req.sink_payload = &s[i];
    }
    x[5].req.url = url("/cut"); /* one failure does not hide the others */
    assert_int_equal(core_http_run(h, x, 8), 0);
    for (int i = 0; i < 8; i++) {
        if (i == 5) {
            assert_int_equal(x[i].rc, BERTH_ENET);
            continue;
        }
        size_t len = (size_t)(100000 * (i + 1) + i);
        unsigned char *p = pattern(len);
        char got[CORE_SHA256_HEX_LEN + 1], want[CORE_SHA256_HEX_LEN + 1];
        assert_int_equal(x[i].rc, 0);
        assert_int_equal(s[i].bytes, len);
        core_sha256_final_hex(s[i].h, got);
        sha_hex(want, p, len);
        assert_string_equal(got, want);
        free(p);
    }
    for (int i = 0; i < 8; i++) {
        core_sha256_free(s[i].h);
        core_http_xfer_dispose(&x[i]);
    }
    core_http_free(h);
    urls_free();
}

static void http_connection_cut_midway_is_enet(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x;
    berth_error *err = NULL;
    memset(&x, 0, sizeof(x));
    x.req.url = url("/cut");
    assert_int_equal(core_http_do(h, &x, &err), BERTH_ENET);
    assert_int_equal(x.resp.status, 200);
    assert_int_equal(x.resp.body_bytes, 100);
    assert_msg_has(err, "GET http://127.0.0.1:");
    assert_msg_has(err, "remaining");
    assert_true(berth_error_is_transient(err));
    berth_error_free(err);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

static void http_connection_refused_is_enet_naming_url(void **state)
{
    (void)state;
    int port = 0;
    int fd = bind_loopback(&port);
    assert_true(fd >= 0);
    close(fd); /* nothing listens on that port now */
    core_http *h = client();
    core_http_xfer x;
    berth_error *err = NULL;
    memset(&x, 0, sizeof(x));
    x.req.url = keep_url(core_sprintf("http://127.0.0.1:%d/v2/x/blobs/sha256:00", port));
    assert_int_equal(core_http_do(h, &x, &err), BERTH_ENET);
    assert_int_equal(x.resp.status, 0);
    assert_msg_has(err, x.req.url);
    assert_msg_has(err, "connection refused");
    berth_error_free(err);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

static void http_timeout_is_etimeout(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x;
    berth_error *err = NULL;
    memset(&x, 0, sizeof(x));
    x.req.url = url("/stall");
    x.req.timeout_ms = 200;
    assert_int_equal(core_http_do(h, &x, &err), BERTH_ETIMEOUT);
    assert_msg_has(err, "timed out");
    berth_error_free(err);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

static void http_tls_to_plain_server_is_clear_error(void **state)
{
    (void)state;
    core_http *h = client();
    core_http_xfer x;
    berth_error *err = NULL;
    memset(&x, 0, sizeof(x));
    x.req.url = keep_url(core_sprintf("https://127.0.0.1:%d/v2/", srv.port));
    assert_int_equal(core_http_do(h, &x, &err), BERTH_ERROR);
    assert_msg_has(err, "tls: ");
    assert_msg_has(err, "plain http");
    berth_error_free(err);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

static void http_verbose_trace_redacts_secrets(void **state)
{
    (void)state;
    char path[] = "/tmp/berth-http-trace-XXXXXX";
    int tfd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    core_http_opts o = CORE_HTTP_OPTS_INIT;
    core_http *h = NULL;
    core_http_xfer x;
    const char *hdrs[] = {"Authorization: Bearer tok-SECRET1", "X-Registry-Token: SECRET2", NULL};
    berth_buf trace = BERTH_BUF_INIT;

    assert_true(tfd >= 0 && saved >= 0);
    o.verbose = true;
    assert_int_equal(core_http_new(&h, &o, NULL), 0);
    memset(&x, 0, sizeof(x));
    x.req.url =
        keep_url(core_sprintf("http://127.0.0.1:%d/ok?n=1&X-Amz-Signature=SECRET3&b=2", srv.port));
    x.req.headers = hdrs;
    fflush(stderr);
    dup2(tfd, STDERR_FILENO);
    int rc = core_http_do(h, &x, NULL);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(tfd);
    assert_int_equal(rc, 0);
    assert_int_equal(core_fs_read_file(&trace, path, 1 << 20, NULL), 0);
    unlink(path);
    assert_non_null(strstr(trace.ptr, "[0] > GET /ok?n=1&X-Amz-Signature=<redacted>&b=2"));
    assert_non_null(strstr(trace.ptr, "Authorization: Bearer <redacted>"));
    assert_non_null(strstr(trace.ptr, "[0] < X-Test: final"));
    assert_null(strstr(trace.ptr, "SECRET"));
    berth_buf_dispose(&trace);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

/* ---- cancel: a socket of its own that accepts and never answers, or answers headers and stalls */

typedef struct staller {
    int listen_fd;
    int port;
    bool send_headers; /* answer "200, chunked" headers, then stall; else never answer */
    int conn_fd;
    pthread_t thread;
} staller;

static void *stall_serve(void *arg)
{
    staller *st = arg;
    char buf[4096];
    st->conn_fd = accept(st->listen_fd, NULL, NULL);
    if (st->conn_fd >= 0 && st->send_headers) {
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n";
        (void)recv(st->conn_fd, buf, sizeof(buf), 0);
        (void)send_all(st->conn_fd, head, sizeof(head) - 1);
    }
    return NULL; /* the connection stays open, silent, until staller_stop */
}

static void staller_start(staller *st, bool send_headers)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(st, 0, sizeof(*st));
    st->send_headers = send_headers;
    st->conn_fd = -1;
    st->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(st->listen_fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(st->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(st->listen_fd, 4), 0);
    assert_int_equal(getsockname(st->listen_fd, (struct sockaddr *)&a, &al), 0);
    st->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&st->thread, NULL, stall_serve, st), 0);
}

static void staller_stop(staller *st)
{
    pthread_join(st->thread, NULL);
    if (st->conn_fd >= 0)
        close(st->conn_fd);
    close(st->listen_fd);
}

typedef struct canceller {
    atomic_int flag;
    long after_ms;     /* set the flag this long after the start */
    int64_t set_at_ms; /* monotonic time the flag was set */
    pthread_t thread;
} canceller;

static void *cancel_later(void *arg)
{
    canceller *c = arg;
    core_sleep_ms(c->after_ms);
    c->set_at_ms = core_mono_now();
    c->flag = 1;
    return NULL;
}

/* A transfer to st with a cancel hook set after 350 ms from another thread: ECANCELED, "cancel"
 * in the message, and back within 250 ms of the flag (CANCEL_POLL_MS is 100). */
static void expect_cancelled_soon(staller *st)
{
    core_http *h = client();
    core_http_xfer x;
    berth_error *err = NULL;
    canceller c = {.flag = 0, .after_ms = 350}; /* off the 100 ms wake-up grid */
    int64_t took;
    memset(&x, 0, sizeof(x));
    x.req.url = keep_url(core_sprintf("http://127.0.0.1:%d/watch", st->port));
    x.req.timeout_ms = 20000;
    x.req.low_speed_time_s = -1;
    x.req.cancel = &c.flag;
    assert_int_equal(pthread_create(&c.thread, NULL, cancel_later, &c), 0);
    assert_int_equal(core_http_do(h, &x, &err), BERTH_ECANCELED);
    took = core_mono_now() - c.set_at_ms;
    pthread_join(c.thread, NULL);
    print_message("returned %lld ms after the cancel flag was set\n", (long long)took);
    assert_true(c.set_at_ms > 0 && took >= 0 && took <= 250);
    assert_msg_has(err, "cancelled");
    berth_error_free(err);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
}

static void http_cancel_ends_a_request_never_answered(void **state)
{
    (void)state;
    staller st;
    staller_start(&st, false);
    expect_cancelled_soon(&st);
    staller_stop(&st);
}

static void http_cancel_ends_a_silent_stream_after_its_headers(void **state)
{
    (void)state;
    staller st;
    staller_start(&st, true);
    expect_cancelled_soon(&st);
    staller_stop(&st);
}

static void http_cancel_set_before_the_start_sends_nothing_long(void **state)
{
    (void)state;
    staller st;
    core_http *h = client();
    core_http_xfer x;
    berth_error *err = NULL;
    atomic_int flag = 1;
    int64_t t0 = core_mono_now();
    staller_start(&st, false);
    memset(&x, 0, sizeof(x));
    x.req.url = keep_url(core_sprintf("http://127.0.0.1:%d/watch", st.port));
    x.req.cancel = &flag;
    assert_int_equal(core_http_do(h, &x, &err), BERTH_ECANCELED);
    assert_true(core_mono_now() - t0 <= 250);
    assert_string_equal(berth_code_name(BERTH_ECANCELED), "ECANCELED");
    berth_error_free(err);
    core_http_xfer_dispose(&x);
    core_http_free(h);
    urls_free();
    /* the staller may never see a connection: wake its accept */
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)st.port);
        (void)connect(fd, (struct sockaddr *)&a, sizeof(a));
        staller_stop(&st);
        close(fd);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(url_resolve_handles_rfc3986_reference_forms),
        cmocka_unit_test(url_origin_lowercases_and_drops_default_port),
        cmocka_unit_test(url_escape_keeps_only_unreserved),
        cmocka_unit_test(resp_header_is_case_insensitive_trimmed_first_match),
        cmocka_unit_test(transport_vtable_receives_run_and_errors_are_copied),
        cmocka_unit_test(http_get_keeps_body_and_final_headers),
        cmocka_unit_test(http_head_returns_headers_without_body),
        cmocka_unit_test(http_sink_gets_2xx_body_and_error_body_stays_in_resp),
        cmocka_unit_test(http_sink_error_becomes_transfer_code),
        cmocka_unit_test(http_redirect_keeps_only_final_headers),
        cmocka_unit_test(http_redirect_to_other_host_drops_authorization),
        cmocka_unit_test(http_request_bodies_arrive_intact),
        cmocka_unit_test(http_source_error_becomes_transfer_code),
        cmocka_unit_test(http_body_over_max_is_einval_but_error_body_is_cut),
        cmocka_unit_test(http_eight_concurrent_transfers_each_get_their_own_result),
        cmocka_unit_test(http_connection_cut_midway_is_enet),
        cmocka_unit_test(http_connection_refused_is_enet_naming_url),
        cmocka_unit_test(http_timeout_is_etimeout),
        cmocka_unit_test(http_tls_to_plain_server_is_clear_error),
        cmocka_unit_test(http_verbose_trace_redacts_secrets),
        cmocka_unit_test(http_cancel_ends_a_request_never_answered),
        cmocka_unit_test(http_cancel_ends_a_silent_stream_after_its_headers),
        cmocka_unit_test(http_cancel_set_before_the_start_sends_nothing_long),
    };
    if (berth_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
