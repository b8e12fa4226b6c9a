/*
 * engine/engine.c: berth_engine_status_list, the reader behind `berth get`, and the pieces the
 * reconcilers share (engine/internal.h): events and the status writer. The loop itself
 * (berth_engine_run) is engine/loop.c, logging engine/log.c.
 *
 * Threading: the reconcilers run on the loop's workers, so everything here may be called from
 * several threads at once: a log record reaches the sink as one whole line (engine/log.c),
 * events are appended under the state's mutex.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"
#include "images/reconcile.h"

/* ---------------------------------------------------------------- shared helpers */

int eng_cond(json_t *status, const char *type, const char *st, const char *reason,
             const char *message, int64_t now_ms, berth_error **err)
{
    eng_condition c = {
        .type = type, .status = st, .reason = reason, .message = message, .observed_generation = 1};
    return eng_status_set_condition(status, &c, now_ms, err);
}

static eng_reconcile_hook_fn reconcile_hook; /* set while no worker runs */
static void *reconcile_hook_payload;

void eng_reconcile_hook_set(eng_reconcile_hook_fn fn, void *payload)
{
    reconcile_hook = fn;
    reconcile_hook_payload = payload;
}

void eng_reconcile_mark(const char *kind, const char *ns, const char *name, bool ended)
{
    if (reconcile_hook)
        reconcile_hook(reconcile_hook_payload, kind, ns, name, ended);
}

int eng_status_commit(eng_ctx *ctx, const char *kind, const char *ns, const char *name,
                      const json_t *old, const json_t *status, berth_error **err)
{
    int rc = 0;
    if (!old || !json_equal(old, status))
        rc = eng_state_status_write(ctx->state, kind, ns, name, status, err);
    if (rc == 0)
        eng_reconcile_mark(kind, ns, name, true);
    return rc;
}

void eng_emit(eng_ctx *ctx, const char *severity, const char *kind, const char *ns,
              const char *name, const char *reason, const char *message)
{
    eng_event ev = {.time_ms = ctx->now_ms,
                    .severity = severity,
                    .kind = kind,
                    .ns = ns,
                    .name = name,
                    .reason = reason,
                    .message = message};
    berth_error *e = NULL;

    if (eng_state_event_append(ctx->state, &ev, &e) < 0) {
        char *t = berth_error_text(e);
        eng_log("error", "event-failed", kind, ns, name, "%s", t ? t : "event not recorded");
        free(t);
    }
    berth_error_free(e);
}

bool eng_status_is_ready(const json_t *status)
{
    json_t *c = status ? eng_status_condition(status, "Ready") : NULL;
    const char *s = c ? json_string_value(json_object_get(c, "status")) : NULL;
    return s && strcmp(s, "True") == 0;
}

const char *eng_status_str(const json_t *status, const char *k1, const char *k2)
{
    json_t *v;

    if (!status || !(v = json_object_get(status, k1)))
        return NULL;
    if (k2)
        v = json_object_get(v, k2);
    return json_string_value(v);
}

/* ---------------------------------------------------------------- reading status */

static void row_dispose(berth_engine_row *r)
{
    core_free(r->kind);
    core_free(r->ns);
    core_free(r->name);
    core_free(r->revision);
    core_free(r->ready);
    core_free(r->reason);
    core_free(r->message);
    free(r->status_json);
}

void berth_engine_rows_free(berth_engine_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        row_dispose(&rows[i]);
    core_free(rows);
}

static char *dup_or_empty(const char *s)
{
    return core_strdup(s ? s : "");
}

static int row_fill(berth_engine_row *r, const char *kind, const char *ns, const char *name,
                    const json_t *st)
{
    json_t *c = eng_status_condition(st, "Ready");
    const char *rev = strcmp(kind, ENG_KIND_KS) == 0
                          ? eng_status_str(st, "lastAppliedRevision", NULL)
                          : eng_status_str(st, "artifact", "revision");
    char img_rev[512]; /* images: the scan, the latest reference, the last publication */
    if (strcmp(kind, IMG_KIND_REPO) == 0) {
        json_t *tc = json_object_get(json_object_get(st, "lastScanResult"), "tagCount");
        snprintf(img_rev, sizeof(img_rev), "%lld tags",
                 json_is_integer(tc) ? (long long)json_integer_value(tc) : 0LL);
        rev = tc ? img_rev : NULL;
    } else if (strcmp(kind, IMG_KIND_POLICY) == 0) {
        const char *nm = eng_status_str(st, "latestRef", "name");
        const char *tg = eng_status_str(st, "latestRef", "tag");
        snprintf(img_rev, sizeof(img_rev), "%s:%s", nm ? nm : "", tg ? tg : "");
        rev = tg ? img_rev : NULL;
    } else if (strcmp(kind, IMG_KIND_UPDATE) == 0) {
        rev = eng_status_str(st, "lastPublishedRevision", NULL);
    }
    const char *cs = c ? json_string_value(json_object_get(c, "status")) : NULL;

    r->kind = core_strdup(kind);
    r->ns = core_strdup(ns);
    r->name = core_strdup(name);
    r->revision = dup_or_empty(rev);
    r->suspended = json_is_true(json_object_get(st, "suspended"));
    r->ready = core_strdup(cs ? cs : "Unknown");
    r->reason = dup_or_empty(c ? json_string_value(json_object_get(c, "reason")) : NULL);
    r->message = dup_or_empty(c ? json_string_value(json_object_get(c, "message")) : NULL);
    r->status_json = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    return r->kind && r->ns && r->name && r->revision && r->ready && r->reason && r->message &&
                   r->status_json
               ? 0
               : BERTH_ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted entry names of dir (without "." and ".."); *n_out 0 when dir is absent. */
static int list_dir(char ***out, size_t *n_out, const char *dir, berth_error **err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL;
    size_t n = 0, cap = 0;

    *out = NULL;
    *n_out = 0;
    if (!d)
        return 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **nv = core_realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
            if (!nv)
                goto oom;
            v = nv;
        }
        if (!(v[n] = core_strdup(de->d_name)))
            goto oom;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(*v), cmp_str);
    *out = v;
    *n_out = n;
    return 0;
oom:
    closedir(d);
    for (size_t i = 0; i < n; i++)
        core_free(v[i]);
    core_free(v);
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        core_free(v[i]);
    core_free(v);
}

static int list_kind(berth_engine_row **rows, size_t *n, size_t *cap, const char *state_dir,
                     const char *kind, const char *lower, berth_error **err)
{
    char *kdir = core_sprintf("%s/status/%s", state_dir, lower), **nss = NULL;
    size_t n_ns = 0;
    int rc;

    if (!kdir)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = list_dir(&nss, &n_ns, kdir, err)) < 0)
        goto out;
    for (size_t i = 0; i < n_ns && rc == 0; i++) {
        char *nsdir = core_sprintf("%s/%s", kdir, nss[i]), **files = NULL;
        size_t n_files = 0;
        if (!nsdir || (rc = list_dir(&files, &n_files, nsdir, err)) < 0) {
            if (!nsdir)
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            core_free(nsdir);
            break;
        }
        for (size_t j = 0; j < n_files && rc == 0; j++) {
            size_t len = strlen(files[j]);
            char *path, *name;
            json_t *st;
            json_error_t je;
            if (len <= 5 || strcmp(files[j] + len - 5, ".json") != 0)
                continue;
            name = core_strndup(files[j], len - 5);
            path = core_sprintf("%s/%s", nsdir, files[j]);
            if (!name || !path) {
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            } else if (!(st = json_load_file(path, 0, &je)) || !json_is_object(st)) {
                json_decref(st);
                rc = core_error_set(err, BERTH_EINVAL, "status file \"%s\" is not a JSON object",
                                    path);
            } else {
                if (*n == *cap) {
                    berth_engine_row *nr =
                        core_realloc(*rows, (*cap = *cap ? *cap * 2 : 16) * sizeof(**rows));
                    if (!nr)
                        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                    else
                        *rows = nr;
                }
                if (rc == 0) {
                    memset(&(*rows)[*n], 0, sizeof(**rows));
                    if (row_fill(&(*rows)[*n], kind, nss[i], name, st) < 0)
                        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                    (*n)++;
                }
                json_decref(st);
            }
            core_free(name);
            core_free(path);
        }
        strv_free(files, n_files);
        core_free(nsdir);
    }
out:
    strv_free(nss, n_ns);
    core_free(kdir);
    return rc;
}

int berth_engine_status_list(berth_engine_row **rows_out, size_t *n_out, const char *state_dir,
                             const char *kind, berth_error **err)
{
    berth_engine_row *rows = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    BERTH_ARG_CHECK(rows_out && n_out && state_dir);
    *rows_out = NULL;
    *n_out = 0;
    if (!core_fs_is_dir(state_dir))
        return core_error_set(err, BERTH_ENOTFOUND, "state directory \"%s\" does not exist",
                              state_dir);
    if (!kind || strcmp(kind, ENG_KIND_OCIREPO) == 0)
        rc = list_kind(&rows, &n, &cap, state_dir, ENG_KIND_OCIREPO, "ocirepository", err);
    if (rc == 0 && (!kind || strcmp(kind, ENG_KIND_KS) == 0))
        rc = list_kind(&rows, &n, &cap, state_dir, ENG_KIND_KS, "kustomization", err);
    /* images: "images" lists the three kinds */
    if (rc == 0 && (!kind || strcmp(kind, IMG_KIND_REPO) == 0 || strcmp(kind, "images") == 0))
        rc = list_kind(&rows, &n, &cap, state_dir, IMG_KIND_REPO, "imagerepository", err);
    if (rc == 0 && (!kind || strcmp(kind, IMG_KIND_POLICY) == 0 || strcmp(kind, "images") == 0))
        rc = list_kind(&rows, &n, &cap, state_dir, IMG_KIND_POLICY, "imagepolicy", err);
    if (rc == 0 && (!kind || strcmp(kind, IMG_KIND_UPDATE) == 0 || strcmp(kind, "images") == 0))
        rc = list_kind(&rows, &n, &cap, state_dir, IMG_KIND_UPDATE, "imageupdateautomation", err);
    if (rc < 0) {
        berth_engine_rows_free(rows, n);
        return rc;
    }
    *rows_out = rows;
    *n_out = n;
    return 0;
}

int berth_engine_config_error(char **text_out, const char *state_dir, berth_error **err)
{
    berth_buf b = BERTH_BUF_INIT;
    char *path;
    int rc;

    BERTH_ARG_CHECK(text_out && state_dir);
    *text_out = NULL;
    if (!(path = core_sprintf("%s/config-error", state_dir)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (access(path, F_OK) != 0 && errno == ENOENT) { /* the config loaded */
        core_free(path);
        return 0;
    }
    rc = core_fs_read_file(&b, path, 1u << 20, err);
    core_free(path);
    if (rc < 0)
        return rc;
    *text_out = berth_buf_detach(&b);
    return 0;
}
