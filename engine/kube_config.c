/*
 * engine/kube_config.c: where the Kubernetes API server is and how to authenticate, from a
 * kubeconfig (kubectl's format, spec/engine.md §5.7) or from the pod berth runs in.
 *
 * Design: the kubeconfig is read with the build stage's YAML reader into JSON; several files
 * ($KUBECONFIG list) are searched in order, the first file that defines a named entry winning,
 * which is what kubectl's merge gives for the one context in use. Only the entries of that
 * context are resolved; relative file paths are anchored at the file that holds them. Inline
 * *-data fields are decoded here and handed to the transport as memory, never written to disk.
 */
#include "engine/kube.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/yaml.h"

#define MAX_KUBECONFIG_BYTES (4u * 1024u * 1024u)
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

void eng_kube_config_free(eng_kube_config *c)
{
    if (!c)
        return;
    core_free(c->source);
    core_free(c->server);
    core_free(c->ca_file);
    core_free(c->ca_pem);
    core_free(c->token);
    core_free(c->token_file);
    core_free(c->cert_file);
    core_free(c->cert_pem);
    core_free(c->key_file);
    core_free(c->key_pem);
    core_free(c->username);
    core_free(c->password);
    core_free(c->impersonate);
    core_free(c->ns);
    core_free(c->exec_command);
    for (size_t i = 0; c->exec_args && c->exec_args[i]; i++)
        core_free(c->exec_args[i]);
    core_free(c->exec_args);
    for (size_t i = 0; c->exec_env && c->exec_env[i]; i++)
        core_free(c->exec_env[i]);
    core_free(c->exec_env);
    core_free(c->exec_api_version);
    core_free(c);
}

/* One parsed file: its path and its document. */
typedef struct kfile {
    const char *path;
    json_t *doc;
} kfile;

static const char *str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The entry of section ("clusters", "users", "contexts") named name, and the file holding it. */
static const json_t *find_named(const kfile **file_out, const kfile *files, size_t n,
                                const char *section, const char *name)
{
    for (size_t f = 0; f < n; f++) {
        const json_t *list = json_object_get(files[f].doc, section), *e;
        size_t i;
        json_array_foreach(list, i, e)
        {
            const char *en = str_of(e, "name");
            if (en && strcmp(en, name) == 0) {
                *file_out = &files[f];
                return e;
            }
        }
    }
    return NULL;
}

/* A path from a kubeconfig, relative to the file's directory. */
static int abs_path(char **out, const char *p, const char *file, berth_error **err)
{
    const char *slash = file ? strrchr(file, '/') : NULL;
    if (p[0] == '/' || !slash)
        *out = core_strdup(p);
    else
        *out = core_sprintf("%.*s/%s", (int)(slash - file), file, p);
    return *out ? 0 : core_error_set(err, BERTH_ENOMEM, "out of memory");
}

/* Copy a string field (or leave NULL). */
static int dup_field(char **out, const json_t *o, const char *key, berth_error **err)
{
    const char *s = str_of(o, key);
    if (!s || !s[0])
        return 0;
    if (!(*out = core_strdup(s)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

static int path_field(char **out, const json_t *o, const char *key, const kfile *f,
                      berth_error **err)
{
    const char *s = str_of(o, key);
    return s && s[0] ? abs_path(out, s, f->path, err) : 0;
}

/* Decode a *-data field into a NUL-terminated heap string. */
static int data_field(char **out, const json_t *o, const char *key, const kfile *f,
                      const char *entry, berth_error **err)
{
    berth_buf b = BERTH_BUF_INIT;
    const char *s = str_of(o, key);
    int rc;
    if (!s || !s[0])
        return 0;
    if ((rc = core_base64_decode(&b, s, strlen(s), false, err)) < 0) {
        core_error_wrap(err, "%s: %s of \"%s\" is not base64", f->path, key, entry);
        return rc;
    }
    if (!(*out = core_strndup(b.ptr ? b.ptr : "", b.len)))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    berth_buf_dispose(&b);
    return rc;
}

static int strv_dup(char ***out, const json_t *arr, bool env, berth_error **err)
{
    size_t n = json_array_size(arr), i;
    json_t *v;
    char **l = core_calloc(n + 1, sizeof(*l));
    if (!l)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    *out = l;
    json_array_foreach(arr, i, v)
    {
        if (env) {
            const char *name = str_of(v, "name"), *val = str_of(v, "value");
            l[i] = core_sprintf("%s=%s", name ? name : "", val ? val : "");
        } else {
            l[i] = core_strdup(json_string_value(v) ? json_string_value(v) : "");
        }
        if (!l[i])
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    return 0;
}

static int read_user(eng_kube_config *c, const json_t *u, const kfile *f, const char *name,
                     berth_error **err)
{
    const json_t *ex = json_object_get(u, "exec");
    int rc;
    if ((rc = dup_field(&c->token, u, "token", err)) < 0 ||
        (rc = path_field(&c->token_file, u, "tokenFile", f, err)) < 0 ||
        (rc = path_field(&c->cert_file, u, "client-certificate", f, err)) < 0 ||
        (rc = data_field(&c->cert_pem, u, "client-certificate-data", f, name, err)) < 0 ||
        (rc = path_field(&c->key_file, u, "client-key", f, err)) < 0 ||
        (rc = data_field(&c->key_pem, u, "client-key-data", f, name, err)) < 0 ||
        (rc = dup_field(&c->username, u, "username", err)) < 0 ||
        (rc = dup_field(&c->password, u, "password", err)) < 0 ||
        (rc = dup_field(&c->impersonate, u, "as", err)) < 0)
        return rc;
    if (json_object_get(u, "auth-provider"))
        return core_error_set(err, BERTH_EINVAL,
                              "%s: user \"%s\" uses an auth-provider, which berth does not "
                              "support (use an exec credential plugin)",
                              f->path, name);
    if (!json_is_object(ex))
        return 0;
    if ((rc = dup_field(&c->exec_command, ex, "command", err)) < 0 ||
        (rc = dup_field(&c->exec_api_version, ex, "apiVersion", err)) < 0 ||
        (rc = strv_dup(&c->exec_args, json_object_get(ex, "args"), false, err)) < 0 ||
        (rc = strv_dup(&c->exec_env, json_object_get(ex, "env"), true, err)) < 0)
        return rc;
    if (!c->exec_command)
        return core_error_set(err, BERTH_EINVAL, "%s: user \"%s\": exec has no command", f->path,
                              name);
    return 0;
}

/* Resolve context (NULL: current-context) over the files. */
static int resolve(eng_kube_config **out, const kfile *files, size_t n, const char *context,
                   berth_error **err)
{
    eng_kube_config *c = NULL;
    const kfile *cf = NULL, *kf = NULL, *uf = NULL;
    const json_t *ctx, *cl, *us = NULL, *cc, *uc;
    const char *cname = NULL, *uname, *server;
    int rc = 0;

    for (size_t f = 0; f < n && !context; f++)
        if (str_of(files[f].doc, "current-context") && str_of(files[f].doc, "current-context")[0])
            context = str_of(files[f].doc, "current-context");
    if (!context)
        return core_error_set(err, BERTH_EINVAL, "%s: no current-context (give --context)",
                              files[0].path);
    if (!(ctx = find_named(&cf, files, n, "contexts", context)))
        return core_error_set(err, BERTH_EINVAL, "%s: context \"%s\" is not defined", files[0].path,
                              context);
    cc = json_object_get(ctx, "context");
    cname = str_of(cc, "cluster");
    uname = str_of(cc, "user");
    if (!cname || !(cl = find_named(&kf, files, n, "clusters", cname)))
        return core_error_set(err, BERTH_EINVAL,
                              "%s: cluster \"%s\" of context \"%s\" is not defined", cf->path,
                              cname ? cname : "", context);
    if (uname && uname[0] && !(us = find_named(&uf, files, n, "users", uname)))
        return core_error_set(err, BERTH_EINVAL, "%s: user \"%s\" of context \"%s\" is not defined",
                              cf->path, uname, context);
    cl = json_object_get(cl, "cluster");
    server = str_of(cl, "server");
    if (!server || !server[0])
        return core_error_set(err, BERTH_EINVAL, "%s: cluster \"%s\" has no server", kf->path,
                              cname);
    if (!(c = core_calloc(1, sizeof(*c)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    c->insecure = json_is_true(json_object_get(cl, "insecure-skip-tls-verify"));
    if (!(c->source = core_sprintf("kubeconfig %s (context %s)", cf->path, context)) ||
        !(c->server = core_strdup(server)) ||
        !(c->ns = core_strdup(str_of(cc, "namespace") && str_of(cc, "namespace")[0]
                                  ? str_of(cc, "namespace")
                                  : "default"))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    while (strlen(c->server) > 1 && c->server[strlen(c->server) - 1] == '/')
        c->server[strlen(c->server) - 1] = '\0';
    if ((rc = path_field(&c->ca_file, cl, "certificate-authority", kf, err)) < 0 ||
        (rc = data_field(&c->ca_pem, cl, "certificate-authority-data", kf, cname, err)) < 0)
        goto out;
    uc = json_object_get(us, "user");
    if (uc && (rc = read_user(c, uc, uf, uname, err)) < 0)
        goto out;
out:
    if (rc < 0)
        eng_kube_config_free(c);
    else
        *out = c;
    return rc;
}

static int parse_doc(json_t **out, const char *data, size_t len, const char *path,
                     berth_error **err)
{
    json_t *docs = NULL;
    int rc = eng_yaml_parse(&docs, data, len, 0, path, err);
    if (rc < 0)
        return rc;
    if (json_array_size(docs) == 0 || !json_is_object(json_array_get(docs, 0)))
        rc = core_error_set(err, BERTH_EINVAL, "%s: not a kubeconfig (no YAML mapping)", path);
    else
        *out = json_incref(json_array_get(docs, 0));
    json_decref(docs);
    return rc;
}

int eng_kube_config_parse(eng_kube_config **out, const char *data, size_t len, const char *path,
                          const char *context, berth_error **err)
{
    kfile f = {.path = path ? path : "kubeconfig"};
    int rc;
    BERTH_ARG_CHECK(out && data);
    *out = NULL;
    if ((rc = parse_doc(&f.doc, data, len, f.path, err)) < 0)
        return rc;
    rc = resolve(out, &f, 1, context, err);
    json_decref(f.doc);
    return rc;
}

/* Load the files of a ':' list (missing ones are skipped, as kubectl does), or one file. */
static int load_files(eng_kube_config **out, const char *list, bool is_list, const char *context,
                      berth_error **err)
{
    char *copy = core_strdup(list), *p, *next;
    kfile files[16];
    size_t n = 0;
    int rc = 0;
    if (!copy)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (p = copy; p && rc == 0; p = next) {
        berth_buf b = BERTH_BUF_INIT;
        if (is_list && (next = strchr(p, ':')))
            *next++ = '\0';
        else if (!is_list)
            next = NULL;
        if (!p[0] || n == sizeof(files) / sizeof(files[0]) || !core_fs_exists(p))
            continue;
        if ((rc = core_fs_read_file(&b, p, MAX_KUBECONFIG_BYTES, err)) == 0) {
            files[n].path = p;
            rc = parse_doc(&files[n].doc, b.ptr ? b.ptr : "", b.len, p, err);
            n += rc == 0;
        }
        berth_buf_dispose(&b);
    }
    if (rc == 0 && n == 0)
        rc = core_error_set(err, BERTH_ENOTFOUND, "kubeconfig \"%s\" does not exist", list);
    if (rc == 0)
        rc = resolve(out, files, n, context, err);
    for (size_t i = 0; i < n; i++)
        json_decref(files[i].doc);
    core_free(copy);
    return rc;
}

int eng_kube_config_in_cluster(eng_kube_config **out, const char *sa_dir, berth_error **err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    eng_kube_config *c;
    berth_buf ns = BERTH_BUF_INIT;
    char *nsfile = NULL;
    int rc = 0;
    BERTH_ARG_CHECK(out);
    *out = NULL;
    if (!sa_dir)
        sa_dir = SA_DIR;
    if (!host || !host[0] || !port || !port[0])
        return core_error_set(err, BERTH_ENOTFOUND,
                              "not running in a pod (KUBERNETES_SERVICE_HOST/PORT unset)");
    if (!(c = core_calloc(1, sizeof(*c))))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    c->server = strchr(host, ':') ? core_sprintf("https://[%s]:%s", host, port)
                                  : core_sprintf("https://%s:%s", host, port);
    c->source = core_strdup("in-cluster configuration");
    c->token_file = core_sprintf("%s/token", sa_dir);
    c->ca_file = core_sprintf("%s/ca.crt", sa_dir);
    nsfile = core_sprintf("%s/namespace", sa_dir);
    if (!c->server || !c->source || !c->token_file || !c->ca_file || !nsfile) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if (core_fs_exists(nsfile) && core_fs_read_file(&ns, nsfile, 256, NULL) == 0 && ns.len > 0)
        c->ns = core_strndup(ns.ptr, strcspn(ns.ptr, "\r\n"));
    else
        c->ns = core_strdup("default");
    if (!c->ns)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
out:
    berth_buf_dispose(&ns);
    core_free(nsfile);
    if (rc < 0)
        eng_kube_config_free(c);
    else
        *out = c;
    return rc;
}

int eng_kube_config_load(eng_kube_config **out, const char *path, const char *context,
                         berth_error **err)
{
    const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
    char *def;
    int rc;
    BERTH_ARG_CHECK(out);
    *out = NULL;
    if (path && path[0]) {
        if (!core_fs_exists(path))
            return core_error_set(err, BERTH_ENOTFOUND, "kubeconfig \"%s\" does not exist", path);
        return load_files(out, path, false, context, err);
    }
    if (env && env[0])
        return load_files(out, env, true, context, err);
    if (getenv("KUBERNETES_SERVICE_HOST") && !context)
        return eng_kube_config_in_cluster(out, NULL, err);
    if (!home || !(def = core_sprintf("%s/.kube/config", home)))
        return core_error_set(err, BERTH_ENOTFOUND,
                              "no Kubernetes configuration: give --kubeconfig or set KUBECONFIG");
    if (!core_fs_exists(def))
        rc = core_error_set(err, BERTH_ENOTFOUND,
                            "no Kubernetes configuration: give --kubeconfig, set KUBECONFIG or "
                            "create %s",
                            def);
    else
        rc = load_files(out, def, false, context, err);
    core_free(def);
    return rc;
}

/* What a kubeconfig from a Secret may not do without the operator's consent (see kube.h). */
static int secret_policy(const eng_kube_config *c, const char *what,
                         const eng_kube_secret_policy *p, berth_error **err)
{
    const char *file = c->token_file  ? "tokenFile"
                       : c->cert_file ? "client-certificate"
                       : c->key_file  ? "client-key"
                       : c->ca_file   ? "certificate-authority"
                                      : NULL;
    if (file)
        return core_error_set(err, BERTH_EDENIED,
                              "%s: the kubeconfig names a local file (%s): a kubeconfig from a "
                              "Secret must carry its credentials inline (token, *-data)",
                              what, file);
    if (c->exec_command && !p->allow_exec)
        return core_error_set(err, BERTH_EDENIED,
                              "%s: the kubeconfig runs an exec credential plugin (\"%s\"), which "
                              "is refused unless berth runs with --insecure-kubeconfig-exec",
                              what, c->exec_command);
    if (c->insecure && !p->allow_insecure_tls)
        return core_error_set(err, BERTH_EDENIED,
                              "%s: the kubeconfig disables TLS verification "
                              "(insecure-skip-tls-verify), which is refused unless berth runs "
                              "with --insecure-kubeconfig-tls",
                              what);
    return 0;
}

int eng_kube_config_from_secret(eng_kube_config **out, const char *data, size_t len,
                                const char *what, const eng_kube_secret_policy *policy,
                                berth_error **err)
{
    eng_kube_secret_policy none = {.allow_exec = false};
    int rc;
    BERTH_ARG_CHECK(out && data && what);
    *out = NULL;
    if ((rc = eng_kube_config_parse(out, data, len, what, NULL, err)) < 0)
        return rc;
    if ((rc = secret_policy(*out, what, policy ? policy : &none, err)) < 0) {
        eng_kube_config_free(*out);
        *out = NULL;
    }
    return rc;
}
