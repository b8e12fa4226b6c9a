/*
 * engine/control.c: the local control API behind the day-2 verbs (berth reconcile, suspend,
 * resume): the loop's side (a Unix socket STATE/berth.sock it polls while it sleeps), the
 * client the CLI uses, and the suspend override kept in the state directory.
 *
 * Design: HTTP/1.1 over a Unix socket, one request per connection. The loop polls the listening
 * socket instead of sleeping; a client is accepted, one request of at most 8 KiB is read with a
 * 2 s timeout, answered with a small JSON body and the connection is closed, so a slow or
 * broken client costs the loop at most 2 s and never an error. The socket is created with mode
 * 0600 inside the 0700 state directory: only the owner can talk to it.
 *
 * The suspend override: Flux's `flux suspend` patches spec.suspend in the cluster; berth's file
 * store cannot edit the user's YAML, so `berth suspend` writes an empty file
 * STATE/suspend/<kind>/<ns>/<name> and the reconcilers treat it as spec.suspend=true (it
 * survives restarts and wins over spec.suspend=false) until `berth resume` removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"

#define CTL_SOCKET "berth.sock"
#define CTL_REQ_MAX 8192
#define CTL_RESP_MAX (64 * 1024)
#define CTL_SERVER_TIMEOUT_MS 2000
#define CTL_CLIENT_TIMEOUT_MS 60000 /* the loop answers between reconciles */

struct eng_control {
    int fd;
    char *path;
    char *state_dir;
};

/* ---------------------------------------------------------------- the suspend override */

static const char *kind_lower(const char *kind)
{
    if (kind && strcmp(kind, ENG_KIND_OCIREPO) == 0)
        return "ocirepository";
    if (kind && strcmp(kind, ENG_KIND_KS) == 0)
        return "kustomization";
    if (kind && strcmp(kind, "ImageRepository") == 0) /* images */
        return "imagerepository";
    if (kind && strcmp(kind, "ImagePolicy") == 0)
        return "imagepolicy";
    if (kind && strcmp(kind, "ImageUpdateAutomation") == 0)
        return "imageupdateautomation";
    return NULL;
}

static bool path_component_ok(const char *s)
{
    return s && s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static char *override_path(const char *state_dir, const char *kind, const char *ns,
                           const char *name)
{
    const char *lower = kind_lower(kind);

    if (!lower || !path_component_ok(ns) || !path_component_ok(name))
        return NULL;
    return core_sprintf("%s/suspend/%s/%s/%s", state_dir, lower, ns, name);
}

bool eng_suspend_override(const eng_state *st, const char *kind, const char *ns, const char *name)
{
    char *p = override_path(eng_state_path(st), kind, ns, name);
    bool yes = p && core_fs_exists(p);

    core_free(p);
    return yes;
}

int berth_engine_suspend_set(const char *state_dir, const char *kind, const char *ns,
                             const char *name, bool suspend, berth_error **err)
{
    char *p = NULL, *dir = NULL;
    int rc = 0;

    BERTH_ARG_CHECK(state_dir && kind && ns && name);
    if (!kind_lower(kind))
        return core_error_set(err, BERTH_EINVAL,
                              "kind \"%s\" cannot be suspended (want OCIRepository, "
                              "Kustomization, ImageRepository, ImagePolicy or "
                              "ImageUpdateAutomation)",
                              kind);
    if (!path_component_ok(ns) || !path_component_ok(name))
        return core_error_set(err, BERTH_EINVAL, "object \"%s/%s\" is not a valid name", ns, name);
    if (!(p = override_path(state_dir, kind, ns, name)) ||
        !(dir = core_strndup(p, (size_t)(strrchr(p, '/') - p)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (!suspend) {
        if (unlink(p) < 0 && errno != ENOENT)
            rc = core_error_errno(err, errno, "removing suspend override \"%s\"", p);
        goto out;
    }
    if ((rc = core_fs_mkdirs(dir, 0700, err)) < 0)
        goto out;
    rc = core_fs_write_atomic(p, "", 0, 0600, err);
out:
    core_free(p);
    core_free(dir);
    return rc;
}

/* ---------------------------------------------------------------- the loop's side */

int eng_control_open(eng_control **out, const char *state_dir, berth_error **err)
{
    struct sockaddr_un sa;
    eng_control *c = NULL;
    int rc = 0;

    *out = NULL;
    if (!(c = core_calloc(1, sizeof(*c))) ||
        !(c->path = core_sprintf("%s/%s", state_dir, CTL_SOCKET)) ||
        !(c->state_dir = core_strdup(state_dir))) {
        if (c)
            core_free(c->path);
        core_free(c);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    c->fd = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(c->path) >= sizeof(sa.sun_path)) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "control socket path \"%s\" is too long for a unix socket", c->path);
        goto out;
    }
    memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
    if (unlink(c->path) < 0 && errno != ENOENT) { /* stale: we hold the state lock */
        rc = core_error_errno(err, errno, "removing stale control socket \"%s\"", c->path);
        goto out;
    }
    if ((c->fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 || fcntl(c->fd, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0 ||
        bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = core_error_errno(err, errno, "creating control socket \"%s\"", c->path);
        goto out;
    }
    if (chmod(c->path, 0600) < 0 || listen(c->fd, 8) < 0) {
        rc = core_error_errno(err, errno, "listening on control socket \"%s\"", c->path);
        unlink(c->path);
        goto out;
    }
out:
    if (rc < 0) {
        if (c->fd >= 0)
            close(c->fd);
        core_free(c->path);
        core_free(c->state_dir);
        core_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void eng_control_free(eng_control *c)
{
    if (!c)
        return;
    if (c->fd >= 0) {
        close(c->fd);
        unlink(c->path);
    }
    core_free(c->path);
    core_free(c->state_dir);
    core_free(c);
}

/* send() all of data without SIGPIPE (the peer may have gone). Returns 0 or -1 (errno). */
static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static void respond(int fd, int status, const char *reason, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n",
                     status, reason, strlen(body));

    if (n > 0 && (size_t)n < sizeof(head) && send_all(fd, head, (size_t)n) == 0)
        (void)send_all(fd, body, strlen(body));
}

/* Read until the end of the header block; false on timeout, EOF or oversize. */
static bool read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    int64_t deadline = core_mono_now() + CTL_SERVER_TIMEOUT_MS;

    buf[0] = '\0';
    while (!strstr(buf, "\r\n\r\n")) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - core_mono_now();
        ssize_t r;
        if (left <= 0 || len + 1 >= cap || poll(&p, 1, (int)left) <= 0)
            return false;
        r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        len += (size_t)r;
        buf[len] = '\0';
    }
    return true;
}

static bool eq_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* Answer one request on the connected fd. */
/* "?a=true&b=true": whether name=true is one of the query's parameters. */
static bool query_flag(const char *query, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = query; *p;) {
        p++; /* past '?' or '&' */
        if (strncmp(p, name, n) == 0 && strncmp(p + n, "=true", 5) == 0 &&
            (p[n + 5] == '\0' || p[n + 5] == '&'))
            return true;
        while (*p && *p != '&')
            p++;
    }
    return false;
}

static void handle(const eng_control *c, int fd, eng_control_wake_fn wake, void *payload,
                   size_t n_objects)
{
    char req[CTL_REQ_MAX], method[8], path[1024], action[16], kind[64], ns[256], name[256];
    char body[1024];
    char *sp, *sp2;
    const char *canon, *query;
    bool found;
    int end = 0;

    if (!read_request(fd, req, sizeof(req))) {
        respond(fd, 400, "Bad Request", "{\"error\":\"incomplete or oversized request\"}");
        return;
    }
    sp = strchr(req, ' ');
    sp2 = sp ? strchr(sp + 1, ' ') : NULL;
    if (!sp || !sp2 || (size_t)(sp - req) >= sizeof(method) ||
        (size_t)(sp2 - sp - 1) >= sizeof(path)) {
        respond(fd, 400, "Bad Request", "{\"error\":\"malformed request line\"}");
        return;
    }
    memcpy(method, req, (size_t)(sp - req));
    method[sp - req] = '\0';
    memcpy(path, sp + 1, (size_t)(sp2 - sp - 1));
    path[sp2 - sp - 1] = '\0';
    if (strcmp(path, "/v1/status") == 0) {
        if (strcmp(method, "GET") != 0) {
            respond(fd, 405, "Method Not Allowed", "{\"error\":\"use GET\"}");
            return;
        }
        snprintf(body, sizeof(body), "{\"objects\":%zu}", n_objects);
        respond(fd, 200, "OK", body);
        return;
    }
    if (sscanf(path, "/v1/%15[a-z]/%63[A-Za-z]/%255[^/]/%255[^/?]%n", action, kind, ns, name,
               &end) != 4 ||
        (path[end] != '\0' && path[end] != '?') ||
        (strcmp(action, "reconcile") != 0 && strcmp(action, "suspend") != 0 &&
         strcmp(action, "resume") != 0)) {
        respond(fd, 404, "Not Found", "{\"error\":\"unknown path\"}");
        return;
    }
    if (strcmp(method, "POST") != 0) {
        respond(fd, 405, "Method Not Allowed", "{\"error\":\"use POST\"}");
        return;
    }
    canon = eq_nocase(kind, ENG_KIND_OCIREPO)          ? ENG_KIND_OCIREPO
            : eq_nocase(kind, ENG_KIND_KS)             ? ENG_KIND_KS
            : eq_nocase(kind, "ImageRepository")       ? "ImageRepository"
            : eq_nocase(kind, "ImagePolicy")           ? "ImagePolicy"
            : eq_nocase(kind, "ImageUpdateAutomation") ? "ImageUpdateAutomation"
                                                       : NULL;
    if (!canon || !path_component_ok(ns) || !path_component_ok(name)) {
        respond(fd, 400, "Bad Request", "{\"error\":\"unknown kind or bad name\"}");
        return;
    }
    query = path[end] == '?' ? path + end : "";
    found = wake(payload, canon, ns, name,
                 strcmp(action, "reconcile") == 0 && query_flag(query, "withSource"),
                 strcmp(action, "reconcile") == 0 && query_flag(query, "reload"));
    if (!found) {
        respond(fd, 404, "Not Found", "{\"error\":\"no such object in the loop's config\"}");
        return;
    }
    if (strcmp(action, "reconcile") != 0) {
        berth_error *e = NULL;
        if (berth_engine_suspend_set(c->state_dir, canon, ns, name, strcmp(action, "suspend") == 0,
                                     &e) < 0) {
            char *t = berth_error_text(e);
            eng_log("error", "control-failed", canon, ns, name, "%s", t ? t : action);
            free(t);
            berth_error_free(e);
            respond(fd, 500, "Internal Server Error",
                    "{\"error\":\"writing the override failed\"}");
            return;
        }
    }
    eng_log("info", "control", canon, ns, name, "%s requested", action);
    respond(fd, 202, "Accepted", "{\"accepted\":true}");
}

int eng_control_fd(const eng_control *c)
{
    return c->fd;
}

void eng_control_serve(eng_control *c, int64_t timeout_ms, eng_control_wake_fn wake, void *payload,
                       size_t n_objects)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int fd;

    if (timeout_ms < 0)
        timeout_ms = 0;
    if (poll(&p, 1, (int)timeout_ms) <= 0 || !(p.revents & POLLIN))
        return;
    if ((fd = accept(c->fd, NULL, NULL)) < 0)
        return;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    handle(c, fd, wake, payload, n_objects);
    close(fd);
}

/* ---------------------------------------------------------------- the client */

void berth_engine_free_string(char *s)
{
    core_free(s);
}

int berth_engine_control(int *status_out, char **body_out, const char *state_dir,
                         const char *method, const char *path, berth_error **err)
{
    struct sockaddr_un sa;
    char *sock = NULL, *req = NULL, *resp = NULL, *hdr_end;
    size_t len = 0;
    int fd = -1, rc = 0;
    int64_t deadline = core_mono_now() + CTL_CLIENT_TIMEOUT_MS;

    BERTH_ARG_CHECK(status_out && state_dir && method && path);
    *status_out = 0;
    if (body_out)
        *body_out = NULL;
    if (!(sock = core_sprintf("%s/%s", state_dir, CTL_SOCKET)) ||
        !(req = core_sprintf("%s %s HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n",
                             method, path)) ||
        !(resp = core_malloc(CTL_RESP_MAX + 1))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(sock) >= sizeof(sa.sun_path)) {
        rc = core_error_set(err, BERTH_ENOTFOUND,
                            "control socket path \"%s\" is too long for a unix socket", sock);
        goto out;
    }
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) {
        rc = core_error_errno(err, errno, "creating a socket");
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            rc = core_error_set(err, BERTH_ENOTFOUND, "no berth run loop is listening on \"%s\"",
                                sock);
        else
            rc = core_error_errno(err, errno, "connecting to control socket \"%s\"", sock);
        goto out;
    }
    if (send_all(fd, req, strlen(req)) < 0) {
        rc = core_error_errno(err, errno, "sending to control socket \"%s\"", sock);
        goto out;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - core_mono_now();
        ssize_t r;
        if (left <= 0 || poll(&p, 1, (int)left) == 0) {
            rc = core_error_set(err, BERTH_ETIMEOUT, "control socket \"%s\" did not answer", sock);
            goto out;
        }
        r = read(fd, resp + len, CTL_RESP_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = core_error_errno(err, errno, "reading from control socket \"%s\"", sock);
            goto out;
        }
        if (r == 0 || len + (size_t)r >= CTL_RESP_MAX) {
            len += (size_t)r;
            break;
        }
        len += (size_t)r;
    }
    resp[len] = '\0';
    if (sscanf(resp, "HTTP/1.%*d %d", status_out) != 1 || !(hdr_end = strstr(resp, "\r\n\r\n"))) {
        rc =
            core_error_set(err, BERTH_EIO, "control socket \"%s\" sent a malformed response", sock);
        goto out;
    }
    if (body_out && !(*body_out = core_strdup(hdr_end + 4)))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    if (fd >= 0)
        close(fd);
    core_free(sock);
    core_free(req);
    core_free(resp);
    return rc;
}
