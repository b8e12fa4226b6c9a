/*
 * Registry authentication: the parsers for what registries and token servers send us, where
 * credentials come from, and the per-client cache of bearer tokens (oci-artifacts.md 3.10-3.11).
 *
 * Design: the client asks oci_auth_header() before every request and calls oci_auth_challenge()
 * on a 401. Per API host we remember the scheme of the last challenge (Basic or Bearer with its
 * realm and service), the host's credentials (loaded once, lazily: --creds, else the docker
 * config file and credential helpers) and bearer tokens keyed by their scope set. A token is
 * reused for any request whose scopes it covers, until 5 s before it expires. Once a host is
 * known to want Bearer, tokens for new scope sets are fetched before the request is sent, which
 * saves a 401 round trip per repository and action. Secrets are wiped before they are freed.
 * Not thread-safe: the state belongs to one client.
 */
#include "oci/auth.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#define TOKEN_MARGIN_MS 5000 /* refresh tokens this long before they expire */
#define TOKENS_MAX 32        /* cached scope sets per host */
#define CONFIG_MAX (1024u * 1024u)
#define HUB_KEY "https://index.docker.io/v1/"

/* ------------------------------------------------------------------ small helpers */

static void secret_free(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        core_free(s);
    }
}

static bool str_ieq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && core_strncasecmp(a, b, la) == 0;
}

static char *lowercase_dup(const char *s, size_t n)
{
    char *p = core_strndup(s, n);
    if (p)
        for (char *q = p; *q; q++)
            *q = (char)tolower((unsigned char)*q);
    return p;
}

/* Wipe every string value of a parsed JSON document (config files and token replies hold
 * secrets, and jansson keeps its own copies). */
static void json_wipe_strings(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_string(j)) {
        sodium_memzero((void *)(uintptr_t)json_string_value(j), json_string_length(j));
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v)
        {
            json_wipe_strings(v);
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            json_wipe_strings(v);
        }
    }
}

/* ------------------------------------------------------------------ WWW-Authenticate */

static bool is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_t68char(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("-._~+/", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static void challenge_dispose(oci_challenge *c)
{
    core_free(c->scheme);
    core_free(c->token68);
    for (size_t i = 0; i < c->params_len; i++) {
        core_free(c->params[i].name);
        core_free(c->params[i].value);
    }
    core_free(c->params);
}

void oci_challenges_free(oci_challenge *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        challenge_dispose(&v[i]);
    core_free(v);
}

const char *oci_challenge_param(const oci_challenge *c, const char *name)
{
    for (size_t i = 0; i < c->params_len; i++)
        if (str_ieq(c->params[i].name, name))
            return c->params[i].value;
    return NULL;
}

/* Parse a quoted-string at p (pointing at the opening quote). */
static int parse_quoted(char **out, const char **pp)
{
    const char *p = *pp + 1;
    berth_buf b = BERTH_BUF_INIT;
    int rc = 0;
    for (;;) {
        if (*p == '\0') {
            rc = BERTH_EINVAL;
            goto out;
        }
        if (*p == '"')
            break;
        if (*p == '\\') {
            p++;
            if (*p == '\0') {
                rc = BERTH_EINVAL;
                goto out;
            }
        }
        if ((unsigned char)*p < 0x20 && *p != '\t') {
            rc = BERTH_EINVAL;
            goto out;
        }
        if ((rc = berth_buf_put(&b, p, 1)) < 0)
            goto out;
        p++;
    }
    *out = b.ptr ? berth_buf_detach(&b) : core_strdup("");
    if (!*out)
        rc = BERTH_ENOMEM;
    *pp = p + 1;
out:
    berth_buf_dispose(&b);
    return rc;
}

static int add_param(oci_challenge *c, const char *name, size_t name_len, char *value)
{
    if (c->params_len >= OCI_AUTH_PARAMS_MAX) {
        core_free(value);
        return BERTH_EINVAL;
    }
    oci_auth_param *np = core_realloc(c->params, (c->params_len + 1) * sizeof(*np));
    if (!np) {
        core_free(value);
        return BERTH_ENOMEM;
    }
    c->params = np;
    char *n = lowercase_dup(name, name_len);
    if (!n) {
        core_free(value);
        return BERTH_ENOMEM;
    }
    c->params[c->params_len].name = n;
    c->params[c->params_len].value = value;
    c->params_len++;
    return 0;
}

int oci_wwwauth_parse(oci_challenge **out, size_t *n_out, const char *header, berth_error **err)
{
    oci_challenge *v = NULL;
    size_t n = 0;
    int rc = 0;
    const char *p = header;

    *out = NULL;
    *n_out = 0;
    if (!header || strlen(header) > OCI_WWWAUTH_MAX) {
        rc = BERTH_EINVAL;
        goto out;
    }
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *tok = p;
        while (is_tchar(*p))
            p++;
        size_t tok_len = (size_t)(p - tok);
        if (tok_len == 0) {
            rc = BERTH_EINVAL;
            goto out;
        }
        const char *after = skip_ows(p);
        if (n > 0 && *after == '=') {
            /* an auth-param of the current challenge */
            const char *q = skip_ows(after + 1);
            char *value = NULL;
            if (*q == '"') {
                if ((rc = parse_quoted(&value, &q)) < 0)
                    goto out;
            } else {
                const char *vs = q;
                while (is_tchar(*q))
                    q++;
                if (q == vs) {
                    rc = BERTH_EINVAL;
                    goto out;
                }
                if (!(value = core_strndup(vs, (size_t)(q - vs)))) {
                    rc = BERTH_ENOMEM;
                    goto out;
                }
            }
            if ((rc = add_param(&v[n - 1], tok, tok_len, value)) < 0)
                goto out;
            p = skip_ows(q);
            if (*p != ',' && *p != '\0' && !is_tchar(*p)) {
                rc = BERTH_EINVAL;
                goto out;
            }
            continue;
        }
        /* a new challenge: auth-scheme [ 1*SP ( token68 / #auth-param ) ] */
        if (n >= OCI_CHALLENGES_MAX) {
            rc = BERTH_EINVAL;
            goto out;
        }
        oci_challenge *nv = core_realloc(v, (n + 1) * sizeof(*nv));
        if (!nv) {
            rc = BERTH_ENOMEM;
            goto out;
        }
        v = nv;
        memset(&v[n], 0, sizeof(v[n]));
        n++;
        if (!(v[n - 1].scheme = lowercase_dup(tok, tok_len))) {
            rc = BERTH_ENOMEM;
            goto out;
        }
        if (*after == '\0' || *after == ',') {
            p = after;
            continue;
        }
        if (after == p) { /* no space between the scheme and what follows */
            rc = BERTH_EINVAL;
            goto out;
        }
        const char *t = after;
        while (is_t68char(*t))
            t++;
        const char *t_end = t;
        while (*t == '=')
            t++;
        const char *t_after = skip_ows(t);
        if (t_end > after && (*t_after == '\0' || *t_after == ',')) {
            if (!(v[n - 1].token68 = core_strndup(after, (size_t)(t - after)))) {
                rc = BERTH_ENOMEM;
                goto out;
            }
            p = t_after;
            continue;
        }
        p = after; /* params follow; the loop reads them */
    }
    if (n == 0)
        rc = BERTH_EINVAL;
out:
    if (rc < 0) {
        oci_challenges_free(v, n);
        if (rc == BERTH_ENOMEM)
            return core_error_set(err, rc, "out of memory");
        return core_error_set(err, rc, "malformed WWW-Authenticate header \"%.80s\"",
                              header ? header : "");
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* ------------------------------------------------------------------ token replies */

void oci_token_dispose(oci_token *t)
{
    if (!t)
        return;
    secret_free(t->token);
    secret_free(t->refresh_token);
    t->token = NULL;
    t->refresh_token = NULL;
}

int oci_token_parse(oci_token *out, const void *data, size_t len, berth_unix_ms now,
                    berth_error **err)
{
    json_t *root = NULL;
    json_error_t jerr;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (len > OCI_TOKEN_REPLY_MAX) {
        rc = core_error_set(err, BERTH_EINVAL, "token reply is larger than %u bytes",
                            OCI_TOKEN_REPLY_MAX);
        goto out;
    }
    root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        rc = core_error_set(err, BERTH_EINVAL, "token reply is not a JSON object");
        goto out;
    }
    json_t *chosen = NULL;
    json_t *at = json_object_get(root, "access_token");
    json_t *t = json_object_get(root, "token");
    if (json_is_string(at) && json_string_length(at) > 0)
        chosen = at;
    else if (json_is_string(t) && json_string_length(t) > 0)
        chosen = t;
    if (!chosen) {
        rc = core_error_set(err, BERTH_EINVAL, "token reply has no token");
        goto out;
    }
    const char *tok = json_string_value(chosen);
    if (strlen(tok) != json_string_length(chosen)) {
        rc = core_error_set(err, BERTH_EINVAL, "token reply has a token with a NUL byte");
        goto out;
    }
    int64_t expires_in = 60;
    json_t *ei = json_object_get(root, "expires_in");
    if (json_is_integer(ei))
        expires_in = (int64_t)json_integer_value(ei);
    else if (json_is_real(ei)) {
        double v = json_real_value(ei); /* clamp before converting: 1e300 does not fit */
        expires_in = !(v >= 60.0) ? 60 : v > 366.0 * 86400 ? 366LL * 86400 : (int64_t)v;
    }
    if (expires_in < 60)
        expires_in = 60;
    if (expires_in > 366LL * 86400)
        expires_in = 366LL * 86400;
    berth_unix_ms start = now;
    json_t *ia = json_object_get(root, "issued_at");
    int64_t issued_s;
    if (json_is_string(ia) && core_time_parse_rfc3339(&issued_s, json_string_value(ia)) == 0 &&
        issued_s <= now / 1000 && now / 1000 - issued_s < expires_in)
        start = issued_s * 1000;
    out->expires_in_s = expires_in;
    out->expires_at = start + expires_in * 1000;
    if (!(out->token = core_strdup(tok))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    json_t *rt = json_object_get(root, "refresh_token");
    if (json_is_string(rt) && json_string_length(rt) > 0 &&
        !(out->refresh_token = core_strdup(json_string_value(rt)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
out:
    json_wipe_strings(root);
    json_decref(root);
    if (rc < 0)
        oci_token_dispose(out);
    return rc;
}

/* ------------------------------------------------------------------ credentials */

void oci_creds_dispose(oci_creds *c)
{
    if (!c)
        return;
    secret_free(c->username);
    secret_free(c->password);
    secret_free(c->identity_token);
    secret_free(c->registry_token);
    memset(c, 0, sizeof(*c));
}

bool oci_creds_is_empty(const oci_creds *c)
{
    return !c->username && !c->password && !c->identity_token && !c->registry_token;
}

static int split_userpass(oci_creds *out, const char *s, size_t len, berth_error **err)
{
    const char *colon = memchr(s, ':', len);
    if (!colon)
        return core_error_set(err, BERTH_EINVAL, "credentials must be \"user:password\"");
    out->username = core_strndup(s, (size_t)(colon - s));
    out->password = core_strndup(colon + 1, len - (size_t)(colon - s) - 1);
    if (!out->username || !out->password) {
        oci_creds_dispose(out);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

int oci_creds_from_string(oci_creds *out, const char *s, berth_error **err)
{
    memset(out, 0, sizeof(*out));
    if (!s || !*s)
        return 0;
    if (strchr(s, ':'))
        return split_userpass(out, s, strlen(s), err);
    if (!(out->registry_token = core_strdup(s)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

static bool is_hub(const char *host, size_t len)
{
    static const char *const names[] = {"docker.io", "index.docker.io", "registry-1.docker.io",
                                        "registry.hub.docker.com"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && core_strncasecmp(host, names[i], len) == 0)
            return true;
    return false;
}

const char *oci_creds_server_url(const char *host)
{
    return is_hub(host, strlen(host)) ? HUB_KEY : host;
}

/* Does a docker config key ("https://host/v1/", "host", "host/path") name host? */
static bool key_matches(const char *key, const char *host)
{
    if (core_str_has_prefix(key, "https://"))
        key += 8;
    else if (core_str_has_prefix(key, "http://"))
        key += 7;
    size_t kl = strcspn(key, "/");
    size_t hl = strlen(host);
    if (is_hub(key, kl) && is_hub(host, hl))
        return true;
    return kl == hl && core_strncasecmp(key, host, kl) == 0;
}

static json_t *find_host_entry(json_t *obj, const char *host)
{
    const char *key;
    json_t *val;
    if (!json_is_object(obj))
        return NULL;
    json_object_foreach(obj, key, val)
    {
        if (key_matches(key, host))
            return val;
    }
    return NULL;
}

static char *dup_json_str(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return NULL;
    return core_strdup(json_string_value(v));
}

static int creds_from_auths_entry(oci_creds *out, json_t *entry, const char *path,
                                  berth_error **err)
{
    berth_buf dec = BERTH_BUF_INIT;
    int rc = 0;
    if (!json_is_object(entry))
        return 0;
    json_t *auth = json_object_get(entry, "auth");
    if (json_is_string(auth) && json_string_length(auth) > 0) {
        if (core_base64_decode(&dec, json_string_value(auth), json_string_length(auth), false,
                               NULL) < 0 ||
            !memchr(dec.ptr, ':', dec.len)) {
            rc =
                core_error_set(err, BERTH_EINVAL,
                               "docker config \"%s\": invalid \"auth\" entry for a registry", path);
            goto out;
        }
        if ((rc = split_userpass(out, dec.ptr, dec.len, err)) < 0)
            goto out;
    } else {
        out->username = dup_json_str(entry, "username");
        out->password = dup_json_str(entry, "password");
    }
    out->identity_token = dup_json_str(entry, "identitytoken");
    out->registry_token = dup_json_str(entry, "registrytoken");
    if (!out->password) {
        /* a username alone is not a credential */
        secret_free(out->username);
        out->username = NULL;
    }
out:
    if (dec.ptr)
        sodium_memzero(dec.ptr, dec.len);
    berth_buf_dispose(&dec);
    return rc;
}

static int first_existing_config(char **out)
{
    const char *env;
    *out = NULL;
    if ((env = getenv("DOCKER_CONFIG")) && *env) {
        char *p = core_sprintf("%s/config.json", env);
        if (!p)
            return BERTH_ENOMEM;
        if (core_fs_exists(p)) {
            *out = p;
            return 0;
        }
        core_free(p);
    }
    if ((env = getenv("HOME")) && *env) {
        char *p = core_sprintf("%s/.docker/config.json", env);
        if (!p)
            return BERTH_ENOMEM;
        if (core_fs_exists(p)) {
            *out = p;
            return 0;
        }
        core_free(p);
    }
    if ((env = getenv("REGISTRY_AUTH_FILE")) && *env && core_fs_exists(env))
        return (*out = core_strdup(env)) ? 0 : BERTH_ENOMEM;
    if ((env = getenv("XDG_RUNTIME_DIR")) && *env) {
        char *p = core_sprintf("%s/containers/auth.json", env);
        if (!p)
            return BERTH_ENOMEM;
        if (core_fs_exists(p)) {
            *out = p;
            return 0;
        }
        core_free(p);
    }
    return 0;
}

int oci_creds_lookup(oci_creds *out, const char *config_path, const char *host, berth_error **err)
{
    char *path = NULL;
    berth_buf text = BERTH_BUF_INIT;
    json_t *root = NULL;
    json_error_t jerr;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (config_path) {
        if (!(path = core_strdup(config_path))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        if (!core_fs_exists(path))
            goto out; /* named but absent: anonymous, like docker */
    } else {
        if ((rc = first_existing_config(&path)) < 0) {
            rc = core_error_set(err, rc, "out of memory");
            goto out;
        }
        if (!path)
            goto out;
    }
    if ((rc = core_fs_read_file(&text, path, CONFIG_MAX, err)) < 0) {
        rc = core_error_wrap(err, "reading docker config \"%s\"", path);
        goto out;
    }
    root = json_loadb(text.ptr ? text.ptr : "", text.len, 0, &jerr);
    if (!json_is_object(root)) {
        rc = core_error_set(err, BERTH_EINVAL, "docker config \"%s\": invalid JSON at line %d",
                            path, jerr.line);
        goto out;
    }
    const char *server = oci_creds_server_url(host);
    json_t *helper = find_host_entry(json_object_get(root, "credHelpers"), host);
    if (json_is_string(helper) && json_string_length(helper) > 0) {
        rc = oci_credhelper_get(out, json_string_value(helper), server, err);
        goto out;
    }
    json_t *store = json_object_get(root, "credsStore");
    if (json_is_string(store) && json_string_length(store) > 0) {
        if ((rc = oci_credhelper_get(out, json_string_value(store), server, err)) < 0)
            goto out;
        if (!oci_creds_is_empty(out))
            goto out;
    }
    rc = creds_from_auths_entry(out, find_host_entry(json_object_get(root, "auths"), host), path,
                                err);
out:
    if (text.ptr)
        sodium_memzero(text.ptr, text.len);
    berth_buf_dispose(&text);
    json_wipe_strings(root);
    json_decref(root);
    core_free(path);
    if (rc < 0)
        oci_creds_dispose(out);
    return rc;
}

/* ------------------------------------------------------------------ scope sets */

void oci_scopes_dispose(oci_scopes *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        core_free(s->v[i]);
    core_free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int add_atom(oci_scopes *s, const char *atom, size_t len)
{
    size_t lo = 0, hi = s->n;
    char *a = core_strndup(atom, len);
    if (!a)
        return BERTH_ENOMEM;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->v[mid], a);
        if (c == 0) {
            core_free(a);
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    char **nv = core_realloc(s->v, (s->n + 1) * sizeof(*nv));
    if (!nv) {
        core_free(a);
        return BERTH_ENOMEM;
    }
    s->v = nv;
    memmove(&s->v[lo + 1], &s->v[lo], (s->n - lo) * sizeof(*nv));
    s->v[lo] = a;
    s->n++;
    return 0;
}

int oci_scopes_add(oci_scopes *s, const char *scope)
{
    /* "type:name:actions"; the name may hold ':' (host:port/), so split on the last ':' */
    const char *last = strrchr(scope, ':');
    if (!last || last == scope)
        return 0; /* not a resource scope: ignore */
    size_t res_len = (size_t)(last - scope);
    const char *a = last + 1;
    while (*a) {
        size_t al = strcspn(a, ",");
        if (al > 0) {
            char *atom = core_sprintf("%.*s:%.*s", (int)res_len, scope, (int)al, a);
            if (!atom)
                return BERTH_ENOMEM;
            int rc = add_atom(s, atom, strlen(atom));
            core_free(atom);
            if (rc < 0)
                return rc;
        }
        a += al;
        if (*a == ',')
            a++;
    }
    return 0;
}

int oci_scopes_merge(oci_scopes *s, const oci_scopes *src)
{
    for (size_t i = 0; i < src->n; i++) {
        int rc = add_atom(s, src->v[i], strlen(src->v[i]));
        if (rc < 0)
            return rc;
    }
    return 0;
}

int oci_scopes_add_for_method(oci_scopes *s, const char *repository, const char *method)
{
    const char *actions = "pull";
    if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
        actions = "pull,push";
    else if (strcmp(method, "DELETE") == 0)
        actions = "delete";
    char *scope = core_sprintf("repository:%s:%s", repository, actions);
    if (!scope)
        return BERTH_ENOMEM;
    int rc = oci_scopes_add(s, scope);
    core_free(scope);
    return rc;
}

bool oci_scopes_contains(const oci_scopes *have, const oci_scopes *want)
{
    size_t i = 0;
    for (size_t j = 0; j < want->n; j++) {
        while (i < have->n && strcmp(have->v[i], want->v[j]) < 0)
            i++;
        if (i >= have->n || strcmp(have->v[i], want->v[j]) != 0)
            return false;
    }
    return true;
}

int oci_scopes_grouped(char ***out, size_t *n_out, const oci_scopes *s)
{
    char **v = NULL;
    size_t n = 0;
    berth_buf b = BERTH_BUF_INIT;
    int rc = 0;

    *out = NULL;
    *n_out = 0;
    for (size_t i = 0; i < s->n;) {
        const char *last = strrchr(s->v[i], ':');
        size_t res_len = (size_t)(last - s->v[i]);
        berth_buf_clear(&b);
        if ((rc = berth_buf_put(&b, s->v[i], res_len + 1)) < 0)
            goto out;
        /* atoms are sorted, so one resource's atoms are adjacent */
        size_t j = i;
        while (j < s->n) {
            const char *lj = strrchr(s->v[j], ':');
            if ((size_t)(lj - s->v[j]) != res_len || memcmp(s->v[j], s->v[i], res_len) != 0)
                break;
            if (j > i && (rc = berth_buf_puts(&b, ",")) < 0)
                goto out;
            if ((rc = berth_buf_puts(&b, lj + 1)) < 0)
                goto out;
            j++;
        }
        i = j;
        char **nv = core_realloc(v, (n + 1) * sizeof(*nv));
        if (!nv) {
            rc = BERTH_ENOMEM;
            goto out;
        }
        v = nv;
        if (!(v[n] = core_strdup(b.ptr))) {
            rc = BERTH_ENOMEM;
            goto out;
        }
        n++;
    }
out:
    berth_buf_dispose(&b);
    if (rc < 0) {
        for (size_t k = 0; k < n; k++)
            core_free(v[k]);
        core_free(v);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

/* ------------------------------------------------------------------ auth state */

typedef enum { KIND_UNKNOWN = 0, KIND_BASIC, KIND_BEARER } auth_kind;

typedef struct auth_token {
    oci_scopes scopes;
    char *token; /* secret */
    berth_unix_ms expires_at;
} auth_token;

typedef struct auth_host {
    char *host;
    auth_kind kind;
    char *realm;
    char *service;
    bool creds_loaded;
    oci_creds creds;
    char *refresh_token; /* from the token server (offline token), secret */
    auth_token *tokens;
    size_t tokens_len;
} auth_host;

struct oci_auth {
    char *creds_text; /* opts.creds, secret */
    char *docker_config;
    auth_host **hosts;
    size_t hosts_len;
};

static void token_free(auth_token *t)
{
    oci_scopes_dispose(&t->scopes);
    secret_free(t->token);
    t->token = NULL;
}

static void host_free(auth_host *ah)
{
    if (!ah)
        return;
    core_free(ah->host);
    core_free(ah->realm);
    core_free(ah->service);
    oci_creds_dispose(&ah->creds);
    secret_free(ah->refresh_token);
    for (size_t i = 0; i < ah->tokens_len; i++)
        token_free(&ah->tokens[i]);
    core_free(ah->tokens);
    core_free(ah);
}

int oci_auth_new(oci_auth **out, const char *creds, const char *docker_config, berth_error **err)
{
    oci_auth *a = core_calloc(1, sizeof(*a));
    *out = NULL;
    if (!a)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((creds && !(a->creds_text = core_strdup(creds))) ||
        (docker_config && !(a->docker_config = core_strdup(docker_config)))) {
        oci_auth_free(a);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    *out = a;
    return 0;
}

void oci_auth_free(oci_auth *a)
{
    if (!a)
        return;
    secret_free(a->creds_text);
    core_free(a->docker_config);
    for (size_t i = 0; i < a->hosts_len; i++)
        host_free(a->hosts[i]);
    core_free(a->hosts);
    core_free(a);
}

static auth_host *get_host(oci_auth *a, const char *host)
{
    for (size_t i = 0; i < a->hosts_len; i++)
        if (str_ieq(a->hosts[i]->host, host))
            return a->hosts[i];
    auth_host **nh = core_realloc(a->hosts, (a->hosts_len + 1) * sizeof(*nh));
    if (!nh)
        return NULL;
    a->hosts = nh;
    auth_host *ah = core_calloc(1, sizeof(*ah));
    if (!ah)
        return NULL;
    if (!(ah->host = core_strdup(host))) {
        core_free(ah);
        return NULL;
    }
    a->hosts[a->hosts_len++] = ah;
    return ah;
}

static int ensure_creds(oci_auth *a, auth_host *ah, berth_error **err)
{
    int rc;
    if (ah->creds_loaded)
        return 0;
    if (a->creds_text)
        rc = oci_creds_from_string(&ah->creds, a->creds_text, err);
    else
        rc = oci_creds_lookup(&ah->creds, a->docker_config, ah->host, err);
    if (rc < 0)
        return core_error_wrap(err, "credentials for registry \"%s\"", ah->host);
    ah->creds_loaded = true;
    return 0;
}

bool oci_auth_has_creds(oci_auth *a, const char *host)
{
    for (size_t i = 0; i < a->hosts_len; i++)
        if (str_ieq(a->hosts[i]->host, host))
            return a->hosts[i]->creds_loaded && !oci_creds_is_empty(&a->hosts[i]->creds);
    return false;
}

static char *basic_header(const oci_creds *c)
{
    char *up = core_sprintf("%s:%s", c->username, c->password);
    if (!up)
        return NULL;
    char *b64 = core_base64_encode(up, strlen(up));
    secret_free(up);
    if (!b64)
        return NULL;
    char *h = core_sprintf("Authorization: Basic %s", b64);
    secret_free(b64);
    return h;
}

static int append_query(berth_buf *b, bool *first, const char *name, const char *value)
{
    char *esc = core_url_escape(value);
    if (!esc)
        return BERTH_ENOMEM;
    int rc = berth_buf_printf(b, "%s%s=%s", *first ? "" : "&", name, esc);
    secret_free(esc);
    *first = false;
    return rc;
}

/* Drop expired tokens, and the oldest ones beyond TOKENS_MAX, keeping the order. */
static void prune_tokens(auth_host *ah, berth_unix_ms now)
{
    size_t k = 0;
    for (size_t i = 0; i < ah->tokens_len; i++) {
        if (now >= ah->tokens[i].expires_at - TOKEN_MARGIN_MS ||
            ah->tokens_len - i > TOKENS_MAX - 1) {
            token_free(&ah->tokens[i]);
            continue;
        }
        ah->tokens[k++] = ah->tokens[i];
    }
    ah->tokens_len = k;
}

/* Fetch a bearer token for scopes from the host's realm and cache it. */
static int fetch_token(auth_host *ah, core_http *h, const oci_scopes *scopes, berth_unix_ms now,
                       berth_error **err)
{
    char **groups = NULL;
    size_t ngroups = 0;
    berth_buf url = BERTH_BUF_INIT;
    berth_buf form = BERTH_BUF_INIT;
    char *auth_line = NULL;
    const char *headers[3] = {NULL, NULL, NULL};
    core_http_xfer x;
    oci_token tok = {0};
    oci_scopes copy = {0};
    int rc = 0;
    bool first = true;
    bool oauth = ah->creds.identity_token != NULL || ah->refresh_token != NULL;

    memset(&x, 0, sizeof(x));
    if ((rc = oci_scopes_grouped(&groups, &ngroups, scopes)) < 0)
        goto oom;
    if ((rc = berth_buf_puts(&url, ah->realm)) < 0)
        goto oom;
    if (oauth) {
        /* OAuth2 refresh-token grant (docker token-auth spec, oauth.md) */
        const char *refresh = ah->refresh_token ? ah->refresh_token : ah->creds.identity_token;
        berth_buf joined = BERTH_BUF_INIT;
        for (size_t i = 0; i < ngroups && rc == 0; i++)
            rc = berth_buf_printf(&joined, "%s%s", i ? " " : "", groups[i]);
        if (rc == 0)
            rc = append_query(&form, &first, "grant_type", "refresh_token");
        if (rc == 0)
            rc = append_query(&form, &first, "refresh_token", refresh);
        if (rc == 0 && ah->service)
            rc = append_query(&form, &first, "service", ah->service);
        if (rc == 0 && joined.len)
            rc = append_query(&form, &first, "scope", joined.ptr);
        if (rc == 0)
            rc = append_query(&form, &first, "client_id", "berth");
        berth_buf_dispose(&joined);
        if (rc < 0)
            goto oom;
        headers[0] = "Content-Type: application/x-www-form-urlencoded";
        x.req.method = "POST";
        x.req.body = form.ptr;
        x.req.body_len = form.len;
    } else {
        first = strchr(ah->realm, '?') == NULL;
        if (rc == 0 && first)
            rc = berth_buf_puts(&url, "?");
        if (rc == 0 && ah->service)
            rc = append_query(&url, &first, "service", ah->service);
        for (size_t i = 0; i < ngroups && rc == 0; i++)
            rc = append_query(&url, &first, "scope", groups[i]);
        if (rc < 0)
            goto oom;
        if (ah->creds.username && ah->creds.password) {
            if (!(auth_line = basic_header(&ah->creds)))
                goto oom;
            headers[0] = auth_line;
        }
        x.req.method = "GET";
    }
    x.req.url = url.ptr;
    x.req.headers = headers;
    x.req.max_body = OCI_TOKEN_REPLY_MAX;
    x.req.follow_redirects = true;
    if (core_http_run(h, &x, 1) < 0 && x.rc == 0)
        x.rc = BERTH_ENET;
    if (x.rc < 0) {
        if (err && !*err && x.err) {
            *err = x.err;
            x.err = NULL;
            rc = core_error_wrap(err, "registry \"%s\": token request to \"%s\"", ah->host,
                                 ah->realm);
        } else {
            rc = core_error_set(err, x.rc, "registry \"%s\": token request to \"%s\" failed",
                                ah->host, ah->realm);
        }
        goto out;
    }
    if (x.resp.status == 401 || x.resp.status == 403) {
        bool have = !oci_creds_is_empty(&ah->creds);
        rc = core_error_set(err, BERTH_EAUTH, "registry \"%s\": %s: %ld %s", ah->host,
                            have ? "authentication failed" : "authentication required",
                            x.resp.status, core_http_reason(x.resp.status));
        goto out;
    }
    if (x.resp.status != 200) {
        int code = (x.resp.status >= 500 || x.resp.status == 429 || x.resp.status == 408)
                       ? BERTH_ENET
                       : BERTH_EAUTH;
        rc = core_error_set(err, code, "registry \"%s\": token request to \"%s\": %ld %s", ah->host,
                            ah->realm, x.resp.status, core_http_reason(x.resp.status));
        goto out;
    }
    if ((rc = oci_token_parse(&tok, x.resp.body.ptr ? x.resp.body.ptr : "", x.resp.body.len, now,
                              err)) < 0) {
        rc = core_error_wrap(err, "registry \"%s\": token from \"%s\"", ah->host, ah->realm);
        goto out;
    }
    if (tok.refresh_token) {
        secret_free(ah->refresh_token);
        ah->refresh_token = tok.refresh_token;
        tok.refresh_token = NULL;
    }
    if ((rc = oci_scopes_merge(&copy, scopes)) < 0)
        goto oom;
    prune_tokens(ah, now);
    /* replace an entry with the same scope set, else append */
    size_t slot = ah->tokens_len;
    for (size_t i = 0; i < ah->tokens_len; i++)
        if (oci_scopes_contains(&ah->tokens[i].scopes, &copy) &&
            oci_scopes_contains(&copy, &ah->tokens[i].scopes))
            slot = i;
    if (slot == ah->tokens_len) {
        auth_token *nt = core_realloc(ah->tokens, (ah->tokens_len + 1) * sizeof(*nt));
        if (!nt)
            goto oom;
        ah->tokens = nt;
        memset(&ah->tokens[slot], 0, sizeof(ah->tokens[slot]));
        ah->tokens_len++;
    } else {
        token_free(&ah->tokens[slot]);
    }
    ah->tokens[slot].scopes = copy;
    ah->tokens[slot].token = tok.token;
    ah->tokens[slot].expires_at = tok.expires_at;
    memset(&copy, 0, sizeof(copy));
    tok.token = NULL;
    goto out;
oom:
    rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    for (size_t i = 0; i < ngroups; i++)
        core_free(groups[i]);
    core_free(groups);
    if (url.ptr)
        sodium_memzero(url.ptr, url.len);
    berth_buf_dispose(&url);
    if (form.ptr)
        sodium_memzero(form.ptr, form.len);
    berth_buf_dispose(&form);
    secret_free(auth_line);
    if (x.resp.body.ptr)
        sodium_memzero(x.resp.body.ptr, x.resp.body.len);
    core_http_xfer_dispose(&x);
    oci_token_dispose(&tok);
    oci_scopes_dispose(&copy);
    return rc;
}

static const auth_token *find_token(const auth_host *ah, const oci_scopes *scopes,
                                    berth_unix_ms now)
{
    /* newest first: after an insufficient_scope upgrade the wider token wins */
    for (size_t i = ah->tokens_len; i-- > 0;)
        if (now < ah->tokens[i].expires_at - TOKEN_MARGIN_MS &&
            oci_scopes_contains(&ah->tokens[i].scopes, scopes))
            return &ah->tokens[i];
    return NULL;
}

int oci_auth_header(char **out, oci_auth *a, core_http *h, const char *host,
                    const oci_scopes *scopes, berth_unix_ms now, berth_error **err)
{
    auth_host *ah = get_host(a, host);
    int rc;
    *out = NULL;
    if (!ah)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = ensure_creds(a, ah, err)) < 0)
        return rc;
    if (ah->creds.registry_token) {
        *out = core_sprintf("Authorization: Bearer %s", ah->creds.registry_token);
    } else if (ah->kind == KIND_BASIC) {
        *out = basic_header(&ah->creds);
    } else if (ah->kind == KIND_BEARER) {
        const auth_token *t = find_token(ah, scopes, now);
        if (!t) {
            if ((rc = fetch_token(ah, h, scopes, now, err)) < 0)
                return rc;
            t = find_token(ah, scopes, now);
        }
        if (!t)
            return 0; /* a token that expires at once: send anonymously, the 401 tells */
        *out = core_sprintf("Authorization: Bearer %s", t->token);
    } else {
        return 0;
    }
    return *out ? 0 : core_error_set(err, BERTH_ENOMEM, "out of memory");
}

int oci_auth_challenge(oci_auth *a, core_http *h, const char *host, const char *www_auth,
                       const oci_scopes *scopes, berth_unix_ms now, berth_error **err)
{
    oci_challenge *ch = NULL;
    size_t nch = 0;
    oci_scopes want = {0};
    auth_host *ah = get_host(a, host);
    int rc = 0;

    if (!ah)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = ensure_creds(a, ah, err)) < 0)
        return rc;
    if (!www_auth) {
        rc = core_error_set(err, BERTH_EAUTH,
                            "registry \"%s\": 401 unauthorized without a WWW-Authenticate header",
                            host);
        goto out;
    }
    if ((rc = oci_wwwauth_parse(&ch, &nch, www_auth, NULL)) < 0) {
        if (rc == BERTH_ENOMEM)
            rc = core_error_set(err, rc, "out of memory");
        else
            rc = core_error_set(err, BERTH_EAUTH,
                                "registry \"%s\": malformed WWW-Authenticate header \"%.80s\"",
                                host, www_auth);
        goto out;
    }
    const oci_challenge *bearer = NULL, *basic = NULL;
    for (size_t i = 0; i < nch; i++) {
        if (!bearer && strcmp(ch[i].scheme, "bearer") == 0)
            bearer = &ch[i];
        if (!basic && strcmp(ch[i].scheme, "basic") == 0)
            basic = &ch[i];
    }
    if (ah->creds.registry_token) {
        rc = core_error_set(err, BERTH_EAUTH,
                            "registry \"%s\": authentication failed: 401 unauthorized", host);
        goto out;
    }
    if (bearer) {
        const char *realm = oci_challenge_param(bearer, "realm");
        const char *service = oci_challenge_param(bearer, "service");
        const char *scope = oci_challenge_param(bearer, "scope");
        if (!realm || !*realm) {
            rc = core_error_set(err, BERTH_EAUTH,
                                "registry \"%s\": bearer challenge without a realm", host);
            goto out;
        }
        if (!core_str_has_prefix(realm, "https://") && !core_str_has_prefix(realm, "http://")) {
            rc = core_error_set(err, BERTH_EAUTH,
                                "registry \"%s\": bearer realm \"%.80s\" is not an http(s) URL",
                                host, realm);
            goto out;
        }
        char *nr = core_strdup(realm);
        char *ns = service ? core_strdup(service) : NULL;
        if (!nr || (service && !ns)) {
            core_free(nr);
            core_free(ns);
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        core_free(ah->realm);
        core_free(ah->service);
        ah->realm = nr;
        ah->service = ns;
        ah->kind = KIND_BEARER;
        if ((rc = oci_scopes_merge(&want, scopes)) < 0)
            goto oom;
        if (scope) {
            /* space-separated scopes */
            const char *p = scope;
            while (*p) {
                size_t l = strcspn(p, " ");
                if (l > 0) {
                    char *one = core_strndup(p, l);
                    if (!one)
                        goto oom;
                    rc = oci_scopes_add(&want, one);
                    core_free(one);
                    if (rc < 0)
                        goto oom;
                }
                p += l;
                while (*p == ' ')
                    p++;
            }
        }
        const char *error = oci_challenge_param(bearer, "error");
        if (error && strcmp(error, "insufficient_scope") == 0) {
            /* keep what the rejected token had: ask for the union */
            const auth_token *had = find_token(ah, scopes, now);
            if (had && (rc = oci_scopes_merge(&want, &had->scopes)) < 0)
                goto oom;
        }
        rc = fetch_token(ah, h, &want, now, err);
        goto out;
    }
    if (basic) {
        if (!ah->creds.username || !ah->creds.password) {
            rc = core_error_set(err, BERTH_EAUTH, "registry \"%s\": authentication required", host);
            goto out;
        }
        ah->kind = KIND_BASIC;
        goto out;
    }
    rc = core_error_set(err, BERTH_EAUTH,
                        "registry \"%s\": unsupported authentication scheme \"%s\"", host,
                        ch[0].scheme);
    goto out;
oom:
    rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    oci_challenges_free(ch, nch);
    oci_scopes_dispose(&want);
    return rc;
}
