/*
 * engine/kube_client.c: requests to the Kubernetes API over core/http, with authentication
 * (bearer token, token file re-read on rotation, exec credential plugins, basic auth, client
 * certificates), impersonation, Status error decoding, and discovery with a REST mapper.
 *
 * Design: every request is one core_http_do; answers of any status come back to the caller
 * with the Status object's reason and message decoded, because the target decides what a 404 or
 * a 409 means. Only 429 and 503 are retried here (the server asked to come back). Discovery is
 * cached per group-version as the APIResourceList's resources array (for five minutes, so kinds
 * removed from the server are forgotten); a kind missing from the cache refetches its
 * group-version once per lookup, which is how a CRD applied in the same run becomes mappable
 * once it is Established.
 */
#include "engine/kube.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "core/http.h"

#define MAX_RESPONSE_BYTES (64u * 1024u * 1024u)
#define TOKEN_REREAD_MS 60000
#define MAX_RETRIES 3
#define MAX_EXEC_OUTPUT (1u * 1024u * 1024u)
#define LIST_PAGE 500
#define DISCOVERY_TTL_MS (5 * 60 * 1000) /* kinds removed from the server are forgotten */

extern char **environ;

struct eng_kube {
    eng_kube_config *cfg;
    core_http *http;
    char *token;            /* current bearer token (static, file or exec) */
    int64_t token_read_ms;  /* monotonic time the token file was read */
    int64_t token_expiry_s; /* exec credential expiry (Unix seconds), 0: none */
    char *exec_cert_pem;    /* exec credential client certificate */
    char *exec_key_pem;
    char *impersonate;
    json_t *discovery;        /* "group/version" -> resources array */
    int64_t discovery_ms;     /* monotonic time of the first entry since the last reset */
    const atomic_int *cancel; /* eng_kube_set_cancel: ends every request in flight */
};

void eng_kube_resp_dispose(eng_kube_resp *r)
{
    if (!r)
        return;
    json_decref(r->body);
    core_free(r->reason);
    core_free(r->message);
    memset(r, 0, sizeof(*r));
}

void eng_kube_mapping_dispose(eng_kube_mapping *m)
{
    if (!m)
        return;
    core_free(m->group);
    core_free(m->version);
    core_free(m->resource);
    core_free(m->kind);
    memset(m, 0, sizeof(*m));
}

static int make_http(eng_kube *k, berth_error **err)
{
    core_http_opts o = CORE_HTTP_OPTS_INIT;
    core_http *h = NULL;
    int rc;
    o.user_agent = "berth/" BERTH_VERSION " (kubernetes)";
    o.ca_file = k->cfg->ca_file;
    o.ca_pem = k->cfg->ca_pem;
    o.cert_file = k->cfg->cert_file;
    o.key_file = k->cfg->key_file;
    o.cert_pem = k->exec_cert_pem ? k->exec_cert_pem : k->cfg->cert_pem;
    o.key_pem = k->exec_key_pem ? k->exec_key_pem : k->cfg->key_pem;
    o.tls_skip_verify = k->cfg->insecure;
    o.connect_timeout_ms = 10000;
    if ((rc = core_http_new(&h, &o, err)) < 0)
        return rc;
    core_http_free(k->http);
    k->http = h;
    return 0;
}

int eng_kube_new(eng_kube **out, eng_kube_config *cfg, berth_error **err)
{
    eng_kube *k;
    int rc;
    BERTH_ARG_CHECK(out && cfg);
    *out = NULL;
    if (!cfg->server || !cfg->server[0]) {
        eng_kube_config_free(cfg);
        return core_error_set(err, BERTH_EINVAL, "Kubernetes configuration has no server");
    }
    if (!(k = core_calloc(1, sizeof(*k))) || !(k->discovery = json_object())) {
        core_free(k);
        eng_kube_config_free(cfg);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    k->cfg = cfg;
    if (cfg->token && !(k->token = core_strdup(cfg->token))) {
        eng_kube_free(k);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    if ((rc = make_http(k, err)) < 0) {
        core_error_wrap(err, "Kubernetes client for %s", cfg->source ? cfg->source : cfg->server);
        eng_kube_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void eng_kube_free(eng_kube *k)
{
    if (!k)
        return;
    core_http_free(k->http);
    eng_kube_config_free(k->cfg);
    core_free(k->token);
    core_free(k->exec_cert_pem);
    core_free(k->exec_key_pem);
    core_free(k->impersonate);
    json_decref(k->discovery);
    core_free(k);
}

int eng_kube_impersonate(eng_kube *k, const char *user)
{
    char *u = NULL;
    BERTH_ARG_CHECK(k);
    if (user && !(u = core_strdup(user)))
        return BERTH_ENOMEM;
    core_free(k->impersonate);
    k->impersonate = u;
    return 0;
}

void eng_kube_discovery_reset(eng_kube *k)
{
    if (k)
        json_object_clear(k->discovery);
}

/* ---------------------------------------------------------------- credentials */

static int read_token_file(eng_kube *k, berth_error **err)
{
    berth_buf b = BERTH_BUF_INIT;
    int64_t now = core_mono_now();
    int rc;
    if (k->token && now - k->token_read_ms < TOKEN_REREAD_MS)
        return 0;
    if ((rc = core_fs_read_file(&b, k->cfg->token_file, 64 * 1024, err)) < 0) {
        core_error_wrap(err, "reading the Kubernetes token file");
        return rc;
    }
    core_free(k->token);
    k->token = core_strndup(b.ptr ? b.ptr : "", b.len);
    berth_buf_dispose(&b);
    if (!k->token)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    k->token[strcspn(k->token, "\r\n")] = '\0';
    k->token_read_ms = now;
    return 0;
}

/*
 * Workers spawn plugins at once (each has its own target and client): a pipe created while
 * another worker spawns would leak its write end into that child, and our read would wait for
 * that other plugin to exit. So the pipe ends are close-on-exec and pipe-to-spawn is serialised.
 */
static pthread_mutex_t spawn_lock = PTHREAD_MUTEX_INITIALIZER;

/* Run the exec plugin with stdout to a pipe; its output into out. */
static int run_plugin(berth_buf *out, eng_kube *k, berth_error **err)
{
    const eng_kube_config *c = k->cfg;
    posix_spawn_file_actions_t fa;
    size_t nenv = 0, nargs = 0, i = 0;
    char **envp = NULL, **argv = NULL, *info = NULL;
    int fds[2] = {-1, -1}, status = 0, rc = 0;
    pid_t pid;

    while (environ[nenv])
        nenv++;
    while (c->exec_args && c->exec_args[nargs])
        nargs++;
    for (size_t j = 0; c->exec_env && c->exec_env[j]; j++)
        nenv++;
    envp = core_calloc(nenv + 2, sizeof(*envp));
    argv = core_calloc(nargs + 2, sizeof(*argv));
    info =
        core_sprintf("KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
                     "\"spec\":{\"interactive\":false}}",
                     c->exec_api_version ? c->exec_api_version : "client.authentication.k8s.io/v1");
    if (!envp || !argv || !info) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t j = 0; environ[j]; j++)
        envp[i++] = environ[j];
    for (size_t j = 0; c->exec_env && c->exec_env[j]; j++)
        envp[i++] = c->exec_env[j];
    envp[i] = info;
    argv[0] = c->exec_command;
    for (size_t j = 0; j < nargs; j++)
        argv[j + 1] = c->exec_args[j];
    pthread_mutex_lock(&spawn_lock);
    if (pipe(fds) < 0 || fcntl(fds[0], F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) < 0) {
        pthread_mutex_unlock(&spawn_lock);
        rc = core_error_errno(err, errno, "exec credential plugin: pipe");
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO); /* dup2 clears close-on-exec */
    rc = posix_spawnp(&pid, c->exec_command, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    fds[1] = -1;
    pthread_mutex_unlock(&spawn_lock);
    if (rc != 0) {
        rc = core_error_errno(err, rc, "running exec credential plugin \"%s\"", c->exec_command);
        rc = rc == BERTH_ENOTFOUND ? BERTH_EAUTH : rc;
        goto out;
    }
    for (;;) {
        char buf[4096];
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out->len + (size_t)n > MAX_EXEC_OUTPUT || berth_buf_put(out, buf, (size_t)n) < 0) {
            kill(pid, SIGKILL);
            break;
        }
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = core_error_set(err, BERTH_EAUTH, "exec credential plugin \"%s\" failed (status %d)",
                            c->exec_command, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
out:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    core_free(envp);
    core_free(argv);
    core_free(info);
    return rc;
}

static int exec_credential(eng_kube *k, berth_error **err)
{
    berth_buf b = BERTH_BUF_INIT;
    json_t *j = NULL, *st;
    const char *tok, *exp, *cert, *key;
    int64_t exp_s = 0;
    int rc;
    if (k->token && (k->token_expiry_s == 0 || core_wall_now() / 1000 + 10 < k->token_expiry_s))
        return 0;
    if (!k->token && k->exec_cert_pem && k->token_expiry_s == 0)
        return 0;
    if ((rc = run_plugin(&b, k, err)) < 0)
        goto out;
    if (!(j = json_loadb(b.ptr ? b.ptr : "", b.len, 0, NULL)) ||
        !json_is_object(st = json_object_get(j, "status"))) {
        rc = core_error_set(err, BERTH_EAUTH,
                            "exec credential plugin \"%s\" did not print an ExecCredential",
                            k->cfg->exec_command);
        goto out;
    }
    tok = json_string_value(json_object_get(st, "token"));
    exp = json_string_value(json_object_get(st, "expirationTimestamp"));
    cert = json_string_value(json_object_get(st, "clientCertificateData"));
    key = json_string_value(json_object_get(st, "clientKeyData"));
    if (exp && core_time_parse_rfc3339(&exp_s, exp) < 0)
        exp_s = 0;
    if (!tok && !(cert && key)) {
        rc = core_error_set(err, BERTH_EAUTH,
                            "exec credential plugin \"%s\" gave neither a token nor a client "
                            "certificate",
                            k->cfg->exec_command);
        goto out;
    }
    core_free(k->token);
    k->token = tok ? core_strdup(tok) : NULL;
    k->token_expiry_s = exp_s;
    if (cert && key) {
        core_free(k->exec_cert_pem);
        core_free(k->exec_key_pem);
        k->exec_cert_pem = core_strdup(cert);
        k->exec_key_pem = core_strdup(key);
        if (!k->exec_cert_pem || !k->exec_key_pem || (rc = make_http(k, err)) < 0) {
            rc = rc < 0 ? rc : core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (tok && !k->token)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    json_decref(j);
    berth_buf_dispose(&b);
    return rc;
}

/* The Authorization header value (heap) or NULL for none. */
static int auth_header(char **out, eng_kube *k, berth_error **err)
{
    int rc;
    *out = NULL;
    if (k->cfg->exec_command && (rc = exec_credential(k, err)) < 0)
        return rc;
    if (!k->cfg->exec_command && k->cfg->token_file && !k->cfg->token &&
        (rc = read_token_file(k, err)) < 0)
        return rc;
    if (k->token && k->token[0]) {
        *out = core_sprintf("Authorization: Bearer %s", k->token);
    } else if (k->cfg->username) {
        char *up =
            core_sprintf("%s:%s", k->cfg->username, k->cfg->password ? k->cfg->password : "");
        char *b64 = up ? core_base64_encode(up, strlen(up)) : NULL;
        *out = b64 ? core_sprintf("Authorization: Basic %s", b64) : NULL;
        core_free(up);
        core_free(b64);
    } else {
        return 0;
    }
    return *out ? 0 : core_error_set(err, BERTH_ENOMEM, "out of memory");
}

/* ---------------------------------------------------------------- requests */

static void decode(eng_kube_resp *r, const berth_buf *body)
{
    if (body->len > 0)
        r->body = json_loadb(body->ptr, body->len, 0, NULL);
    if (r->code >= 200 && r->code < 300)
        return;
    if (json_is_object(r->body) && json_string_value(json_object_get(r->body, "kind")) &&
        strcmp(json_string_value(json_object_get(r->body, "kind")), "Status") == 0) {
        const char *reason = json_string_value(json_object_get(r->body, "reason"));
        const char *msg = json_string_value(json_object_get(r->body, "message"));
        r->reason = core_strdup(reason && reason[0] ? reason : core_http_reason(r->code));
        r->message = core_strdup(msg && msg[0] ? msg : core_http_reason(r->code));
    } else {
        r->reason = core_strdup(core_http_reason(r->code));
        r->message =
            body->len > 0 && body->len < 512
                ? core_sprintf("%s: %.*s", core_http_reason(r->code), (int)body->len, body->ptr)
                : core_strdup(core_http_reason(r->code));
    }
}

/* One request; a 2xx body goes to sink when given (watch streams). */
static int do_request(eng_kube *k, eng_kube_resp *out, const char *method, const char *path,
                      const char *ctype, const char *body, size_t body_len, core_http_sink_fn sink,
                      void *sink_payload, long timeout_ms, berth_error **err)
{
    char *url = NULL, *auth = NULL, *imp = NULL, *ct = NULL;
    const char *headers[6];
    int rc = 0;

    BERTH_ARG_CHECK(k && out && method && path);
    memset(out, 0, sizeof(*out));
    if ((rc = auth_header(&auth, k, err)) < 0)
        return rc;
    url = core_sprintf("%s%s", k->cfg->server, path);
    imp = k->impersonate ? core_sprintf("Impersonate-User: %s", k->impersonate) : NULL;
    ct = ctype ? core_sprintf("Content-Type: %s", ctype) : NULL;
    if (!url || (k->impersonate && !imp) || (ctype && !ct)) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    {
        size_t h = 0;
        headers[h++] = "Accept: application/json";
        if (auth)
            headers[h++] = auth;
        if (imp)
            headers[h++] = imp;
        if (ct)
            headers[h++] = ct;
        headers[h] = NULL;
    }
    for (int attempt = 0;; attempt++) {
        core_http_xfer x;
        char *ra;
        long wait_ms = 1000;
        memset(&x, 0, sizeof(x));
        x.req.method = method;
        x.req.url = url;
        x.req.headers = headers;
        x.req.body = body;
        x.req.body_len = body ? body_len : 0;
        x.req.max_body = MAX_RESPONSE_BYTES;
        x.req.timeout_ms = timeout_ms;
        x.req.sink = sink;
        x.req.sink_payload = sink_payload;
        x.req.cancel = k->cancel;
        /* a watch is silent between events (a real server bookmarks about once a minute); its
         * timeoutSeconds and the whole-transfer timeout end it, not the low-speed limit */
        x.req.low_speed_time_s = sink ? -1 : 0;
        if ((rc = core_http_do(k->http, &x, err)) < 0) {
            core_error_wrap(err, "%s %s", method, path);
            core_http_xfer_dispose(&x);
            goto out;
        }
        out->code = x.resp.status;
        if ((out->code == 429 || out->code == 503) && attempt < MAX_RETRIES) {
            if ((ra = core_http_resp_header(&x.resp, "Retry-After"))) {
                char *end;
                long s = strtol(ra, &end, 10);
                if (end != ra && s >= 0 && s <= 10)
                    wait_ms = s * 1000;
                core_free(ra);
            }
            core_http_xfer_dispose(&x);
            core_sleep_ms(wait_ms);
            continue;
        }
        decode(out, &x.resp.body);
        core_http_xfer_dispose(&x);
        if (out->code >= 300 && (!out->reason || !out->message))
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        break;
    }
out:
    core_free(url);
    core_free(auth);
    core_free(imp);
    core_free(ct);
    if (rc < 0)
        eng_kube_resp_dispose(out);
    return rc;
}

void eng_kube_set_cancel(eng_kube *k, const atomic_int *cancel)
{
    if (k)
        k->cancel = cancel;
}

int eng_kube_do(eng_kube *k, eng_kube_resp *out, const char *method, const char *path,
                const char *ctype, const char *body, size_t body_len, berth_error **err)
{
    return do_request(k, out, method, path, ctype, body, body_len, NULL, NULL, 60000, err);
}

int eng_kube_resp_error(berth_error **err, const eng_kube_resp *r, const char *what)
{
    int code;
    switch (r->code) {
    case 404:
    case 410:
        code = BERTH_ENOTFOUND;
        break;
    case 401:
        code = BERTH_EAUTH;
        break;
    case 403:
        code = BERTH_EDENIED;
        break;
    case 409:
        code = BERTH_ECONFLICT;
        break;
    case 400:
    case 405:
    case 415:
    case 422:
        code = BERTH_EINVAL;
        break;
    case 504:
        code = BERTH_ETIMEOUT;
        break;
    default:
        code = r->code == 429 || r->code >= 500 ? BERTH_ENET : BERTH_ERROR;
    }
    return core_error_set(err, code, "%s: %s", what,
                          r->message ? r->message : core_http_reason(r->code));
}

/* ---------------------------------------------------------------- discovery */

/* The resources of group/version, fetched when absent or when refresh. NULL: unknown gv. */
static int gv_resources(const json_t **out, eng_kube *k, const char *gv, bool refresh,
                        berth_error **err)
{
    eng_kube_resp r;
    char *path;
    const json_t *res;
    int rc;
    *out = NULL;
    if (json_object_size(k->discovery) > 0 && core_mono_now() - k->discovery_ms > DISCOVERY_TTL_MS)
        json_object_clear(k->discovery);
    if (json_object_size(k->discovery) == 0)
        k->discovery_ms = core_mono_now();
    if (!refresh && (res = json_object_get(k->discovery, gv))) {
        *out = res;
        return 0;
    }
    path = strchr(gv, '/') ? core_sprintf("/apis/%s", gv) : core_sprintf("/api/%s", gv);
    if (!path)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    rc = eng_kube_do(k, &r, "GET", path, NULL, NULL, 0, err);
    core_free(path);
    if (rc < 0)
        return rc;
    if (r.code == 404) {
        json_object_del(k->discovery, gv);
    } else if (r.code != 200 || !json_is_array(json_object_get(r.body, "resources"))) {
        rc = r.code != 200
                 ? eng_kube_resp_error(err, &r, "discovery")
                 : core_error_set(err, BERTH_EINVAL, "discovery of %s: not an APIResourceList", gv);
    } else if (json_object_set(k->discovery, gv, json_object_get(r.body, "resources")) < 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    } else {
        *out = json_object_get(k->discovery, gv);
    }
    eng_kube_resp_dispose(&r);
    return rc;
}

static const json_t *find_kind(const json_t *resources, const char *kind)
{
    size_t i;
    json_t *e;
    json_array_foreach(resources, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *k = json_string_value(json_object_get(e, "kind"));
        if (name && k && !strchr(name, '/') && strcmp(k, kind) == 0)
            return e;
    }
    return NULL;
}

int eng_kube_map(eng_kube_mapping *out, eng_kube *k, const char *api_version, const char *kind,
                 berth_error **err)
{
    const json_t *res = NULL, *e = NULL;
    const char *slash;
    int rc;
    BERTH_ARG_CHECK(out && k && api_version && kind);
    memset(out, 0, sizeof(*out));
    if ((rc = gv_resources(&res, k, api_version, false, err)) < 0)
        return rc;
    if (res && !(e = find_kind(res, kind))) {
        if ((rc = gv_resources(&res, k, api_version, true, err)) < 0)
            return rc;
        e = res ? find_kind(res, kind) : NULL;
    }
    if (!e)
        return core_error_set(err, BERTH_ENOTFOUND, "no matches for kind \"%s\" in version \"%s\"",
                              kind, api_version);
    slash = strchr(api_version, '/');
    out->group = slash ? core_strndup(api_version, (size_t)(slash - api_version)) : core_strdup("");
    out->version = core_strdup(slash ? slash + 1 : api_version);
    out->resource = core_strdup(json_string_value(json_object_get(e, "name")));
    out->kind = core_strdup(kind);
    out->namespaced = json_is_true(json_object_get(e, "namespaced"));
    if (!out->group || !out->version || !out->resource || !out->kind) {
        eng_kube_mapping_dispose(out);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

char *eng_kube_path(const eng_kube_mapping *m, const char *ns, const char *name)
{
    char *base = m->group[0] ? core_sprintf("/apis/%s/%s", m->group, m->version)
                             : core_sprintf("/api/%s", m->version);
    char *p;
    if (!base)
        return NULL;
    if (m->namespaced && ns && ns[0])
        p = name ? core_sprintf("%s/namespaces/%s/%s/%s", base, ns, m->resource, name)
                 : core_sprintf("%s/namespaces/%s/%s", base, ns, m->resource);
    else
        p = name ? core_sprintf("%s/%s/%s", base, m->resource, name)
                 : core_sprintf("%s/%s", base, m->resource);
    core_free(base);
    return p;
}

/* ---------------------------------------------------------------- list and watch */

int eng_kube_list_each(char **rv_out, eng_kube *k, const char *path, const char *selector,
                       eng_kube_item_fn fn, void *payload, berth_error **err)
{
    char *cont = NULL, *sel = selector ? core_url_escape(selector) : NULL;
    int rc = 0;

    BERTH_ARG_CHECK(rv_out && k && path && fn);
    *rv_out = NULL;
    if (selector && !sel) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        eng_kube_resp r;
        char *url =
            core_sprintf("%s?limit=%d%s%s%s%s", path, LIST_PAGE, sel ? "&labelSelector=" : "",
                         sel ? sel : "", cont ? "&continue=" : "", cont ? cont : "");
        const json_t *md;
        json_t *o;
        const char *next;
        size_t i;
        if (!url) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        rc = eng_kube_do(k, &r, "GET", url, NULL, NULL, 0, err);
        core_free(url);
        if (rc < 0)
            goto out;
        if (r.code != 200 || !json_is_array(json_object_get(r.body, "items"))) {
            rc = r.code != 200 ? eng_kube_resp_error(err, &r, path)
                               : core_error_set(err, BERTH_EINVAL, "%s: not a list", path);
            eng_kube_resp_dispose(&r);
            goto out;
        }
        md = json_object_get(r.body, "metadata");
        next = json_string_value(json_object_get(md, "continue"));
        core_free(*rv_out);
        core_free(cont);
        cont = next && next[0] ? core_url_escape(next) : NULL;
        *rv_out = core_strdup(json_string_value(json_object_get(md, "resourceVersion"))
                                  ? json_string_value(json_object_get(md, "resourceVersion"))
                                  : "");
        if (!*rv_out || (next && next[0] && !cont))
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        json_array_foreach(json_object_get(r.body, "items"), i, o)
        {
            if (rc == 0 && (rc = fn(payload, o)) < 0)
                rc = core_error_set(err, rc, "%s: the list item handler failed", path);
        }
        eng_kube_resp_dispose(&r);
        if (rc < 0 || !cont)
            break;
    }
out:
    core_free(cont);
    core_free(sel);
    if (rc < 0) {
        core_free(*rv_out);
        *rv_out = NULL;
    }
    return rc;
}

static int append_item(void *payload, json_t *o)
{
    return json_array_append(payload, o) < 0 ? BERTH_ENOMEM : 0;
}

int eng_kube_list(json_t **items_out, char **rv_out, eng_kube *k, const char *path,
                  const char *selector, berth_error **err)
{
    json_t *items = json_array();
    int rc;
    BERTH_ARG_CHECK(items_out && rv_out && k && path);
    *items_out = NULL;
    *rv_out = NULL;
    if (!items)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = eng_kube_list_each(rv_out, k, path, selector, append_item, items, err)) < 0)
        json_decref(items);
    else
        *items_out = items;
    return rc;
}

typedef struct watch_state {
    berth_buf line;
    char **rv;
    eng_kube_watch_fn fn;
    void *payload;
    bool stopped, expired;
    int fn_rc;
    berth_error *why;
} watch_state;

#define WATCH_STOP (-1000) /* the sink's code for "the callback asked to stop" */

/* Copy e (text and code) into err. */
static int adopt(berth_error **err, const berth_error *e)
{
    char *t = berth_error_text(e);
    int code = berth_error_code(e);
    core_error_set(err, code < 0 ? code : BERTH_ERROR, "%s", t ? t : "watch failed");
    free(t);
    return code < 0 ? code : BERTH_ERROR;
}

static int watch_event(watch_state *w, const char *text, size_t len)
{
    json_t *ev = json_loadb(text, len, 0, NULL), *obj;
    const char *type, *rv;
    int rc = 0;
    if (!ev)
        return core_error_set(&w->why, BERTH_EINVAL, "watch: an event is not JSON");
    type = json_string_value(json_object_get(ev, "type"));
    obj = json_object_get(ev, "object");
    if (!type || !json_is_object(obj)) {
        rc = core_error_set(&w->why, BERTH_EINVAL, "watch: an event has no type or object");
    } else if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = json_string_value(json_object_get(obj, "message"));
        w->expired = code == 410;
        rc = core_error_set(&w->why, code == 410 ? BERTH_ECONFLICT : BERTH_ERROR, "watch: %s",
                            msg ? msg : "error event");
    } else {
        rv =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        if (rv && rv[0]) {
            char *n = core_strdup(rv);
            if (!n) {
                json_decref(ev);
                return core_error_set(&w->why, BERTH_ENOMEM, "out of memory");
            }
            core_free(*w->rv);
            *w->rv = n;
        }
        if (strcmp(type, "BOOKMARK") != 0 && (w->fn_rc = w->fn(w->payload, type, obj)) != 0) {
            w->stopped = true;
            rc = w->fn_rc > 0 ? WATCH_STOP
                              : core_error_set(&w->why, w->fn_rc,
                                               "watch: the %s event handler failed", type);
        }
    }
    json_decref(ev);
    return rc;
}

static int watch_sink(void *payload, const void *data, size_t len)
{
    watch_state *w = payload;
    const char *p = data;
    for (size_t i = 0; i < len; i++) {
        int rc;
        if (p[i] != '\n') {
            if (berth_buf_put(&w->line, &p[i], 1) < 0)
                return core_error_set(&w->why, BERTH_ENOMEM, "out of memory");
            if (w->line.len > MAX_RESPONSE_BYTES)
                return core_error_set(&w->why, BERTH_EINVAL, "watch: event too large");
            continue;
        }
        if (w->line.len > 0 && (rc = watch_event(w, w->line.ptr, w->line.len)) != 0)
            return rc;
        berth_buf_clear(&w->line);
    }
    return 0;
}

int eng_kube_watch(eng_kube *k, const char *path, const char *selector, char **rv, int timeout_s,
                   eng_kube_watch_fn fn, void *payload, berth_error **err)
{
    watch_state w = {.line = BERTH_BUF_INIT, .rv = rv, .fn = fn, .payload = payload};
    eng_kube_resp r = {0};
    berth_error *e = NULL;
    char *sel = selector ? core_url_escape(selector) : NULL, *url = NULL;
    int rc;

    BERTH_ARG_CHECK(k && path && rv && fn && timeout_s > 0);
    if ((selector && !sel) ||
        !(url = core_sprintf("%s?watch=true&allowWatchBookmarks=true&timeoutSeconds=%d%s%s%s%s",
                             path, timeout_s, *rv && (*rv)[0] ? "&resourceVersion=" : "",
                             *rv && (*rv)[0] ? *rv : "", sel ? "&labelSelector=" : "",
                             sel ? sel : ""))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    rc = do_request(k, &r, "GET", url, NULL, NULL, 0, watch_sink, &w,
                    (long)timeout_s * 1000 + 10000, &e);
    if (rc == 0 && r.code < 300 && w.line.len > 0 && !w.stopped) /* a last line without '\n' */
        watch_event(&w, w.line.ptr, w.line.len);
    if (w.stopped && w.fn_rc > 0)
        rc = 0;
    else if (w.why)
        rc = adopt(err, w.why);
    else if (rc < 0)
        rc = adopt(err, e);
    else if (r.code == 410)
        rc = core_error_set(err, BERTH_ECONFLICT, "watch: %s", r.message ? r.message : "expired");
    else if (r.code >= 300)
        rc = eng_kube_resp_error(err, &r, "watch");
out:
    berth_error_free(e);
    berth_error_free(w.why);
    berth_buf_dispose(&w.line);
    eng_kube_resp_dispose(&r);
    core_free(sel);
    core_free(url);
    return rc;
}
