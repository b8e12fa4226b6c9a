/*
 * engine/engine.c: berth_engine_run, the loop over the reconcilers, and berth_engine_status_list,
 * the reader behind `berth get`. Also the pieces the reconcilers share (engine/internal.h):
 * logfmt logging, events, and the status writer.
 *
 * Design (first slice): one thread. A pass loads nothing new: the config is loaded once at start;
 * invalid objects get a Stalled status with the loader's file:line message. Sources are
 * reconciled before Kustomizations, and Kustomizations in dependency order (a dependency first;
 * a cycle falls back to name order and the dependency check reports it). With `once` the pass
 * runs once; otherwise each object has a due time (interval ±5% jitter after success; after a
 * failure retryInterval for a Kustomization, exponential backoff from 1 s up to the interval for
 * a source) and the loop sleeps in short slices until the next one is due
 * or the stop flag is set. In loop mode the sleep is a poll on the control socket
 * (engine/control.c): `berth reconcile|suspend|resume` make an object due at once.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"
#include "engine/kube.h"

/* ---------------------------------------------------------------- shared helpers */

static void logfmt_value(FILE *f, const char *v)
{
    bool quote = !v[0] || strpbrk(v, " =\"\\\t\n") != NULL;

    if (!quote) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"' || *v == '\\') {
            fputc('\\', f);
            fputc(*v, f);
        } else if (*v == '\n')
            fputs("\\n", f);
        else if (*v == '\t')
            fputs("\\t", f);
        else
            fputc(*v, f);
    }
    fputc('"', f);
}

void eng_log(const char *level, const char *event, const char *kind, const char *ns,
             const char *name, const char *fmt, ...)
{
    char ts[32], msg[1024], obj[512];
    va_list ap;

    if (strcmp(level, "debug") == 0 && !getenv("BERTH_DEBUG"))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    core_time_rfc3339(ts, core_wall_now() / 1000);
    fprintf(stderr, "ts=%s level=%s event=", ts, level);
    logfmt_value(stderr, event);
    if (kind) {
        fputs(" kind=", stderr);
        logfmt_value(stderr, kind);
    }
    if (name) {
        snprintf(obj, sizeof(obj), "%s/%s", ns ? ns : "", name);
        fputs(" name=", stderr);
        logfmt_value(stderr, obj);
    }
    fputs(" msg=", stderr);
    logfmt_value(stderr, msg);
    fputc('\n', stderr);
    fflush(stderr);
}

int eng_cond(json_t *status, const char *type, const char *st, const char *reason,
             const char *message, int64_t now_ms, berth_error **err)
{
    eng_condition c = {
        .type = type, .status = st, .reason = reason, .message = message, .observed_generation = 1};
    return eng_status_set_condition(status, &c, now_ms, err);
}

int eng_status_commit(eng_ctx *ctx, const char *kind, const char *ns, const char *name,
                      const json_t *old, const json_t *status, berth_error **err)
{
    if (old && json_equal(old, status))
        return 0;
    return eng_state_status_write(ctx->state, kind, ns, name, status, err);
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

/* ---------------------------------------------------------------- the run loop */

/* The scheduling state of one object. */
typedef struct sched {
    const char *kind;
    const eng_ocirepo *repo;     /* or */
    const eng_kustomization *ks; /* one of them */
    int64_t due_ms;              /* monotonic */
    bool ready;
    unsigned int failures; /* consecutive failed reconciles (source backoff) */
} sched;

/* Order Kustomizations so that dependencies come first (stable; cycles keep name order). */
static void order_kustomizations(const eng_kustomization **out, const eng_config *cfg)
{
    size_t n = cfg->kustomizations_len, done = 0;
    bool *placed = core_calloc(n + 1, sizeof(bool));

    if (!placed) { /* degrade to name order */
        for (size_t i = 0; i < n; i++)
            out[i] = &cfg->kustomizations[i];
        return;
    }
    while (done < n) {
        bool progress = false;
        for (size_t i = 0; i < n; i++) {
            const eng_kustomization *k = &cfg->kustomizations[i];
            bool ok = true;
            if (placed[i])
                continue;
            for (size_t d = 0; d < k->depends_on_len && ok; d++) {
                const eng_kustomization *dk =
                    eng_config_find_kustomization(cfg, k->depends_on[d].ns, k->depends_on[d].name);
                if (dk && !placed[dk - cfg->kustomizations])
                    ok = false;
            }
            if (ok) {
                placed[i] = true;
                out[done++] = k;
                progress = true;
            }
        }
        if (!progress) { /* a cycle: the rest in name order */
            for (size_t i = 0; i < n; i++) {
                if (!placed[i]) {
                    placed[i] = true;
                    out[done++] = &cfg->kustomizations[i];
                }
            }
        }
    }
    core_free(placed);
}

/* Mark the objects the loader refused Stalled; returns how many had an identity. */
static int stall_invalid(eng_ctx *ctx, size_t *n_out, berth_error **err)
{
    int rc = 0;

    *n_out = 0;
    for (size_t i = 0; i < ctx->cfg->errors_len; i++) {
        const eng_config_error *ce = &ctx->cfg->errors[i];
        json_t *old = NULL, *st = NULL;
        bool known =
            ce->kind && ce->ns && ce->name &&
            (strcmp(ce->kind, ENG_KIND_OCIREPO) == 0 || strcmp(ce->kind, ENG_KIND_KS) == 0);

        eng_log("error", "InvalidConfig", ce->kind, ce->ns, ce->name, "%s", ce->text);
        if (!known)
            continue;
        if (eng_config_find_error(ctx->cfg, ce->kind, ce->ns, ce->name) != ce)
            continue; /* the first error of an object wins */
        (*n_out)++;
        if ((rc = eng_state_status_read(&old, ctx->state, ce->kind, ce->ns, ce->name, err)) < 0)
            return rc;
        if (!(st = old ? json_deep_copy(old) : eng_status_new())) {
            json_decref(old);
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
        if ((rc = eng_cond(st, "Stalled", "True", "InvalidConfig", ce->text, ctx->now_ms, err)) ==
                0 &&
            (rc = eng_cond(st, "Ready", "False", "InvalidConfig", ce->text, ctx->now_ms, err)) == 0)
            rc = eng_status_commit(ctx, ce->kind, ce->ns, ce->name, old, st, err);
        json_decref(old);
        json_decref(st);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int64_t jitter(int64_t ms)
{
    int64_t span = ms / 10; /* ±5% */
    if (span <= 0)
        return ms;
    return ms - span / 2 +
           (int64_t)randombytes_uniform((uint32_t)(span > 0x7fffffff ? 0x7fffffff : span));
}

static int reconcile_one(eng_ctx *ctx, sched *s, berth_error **err)
{
    const eng_meta *m = s->repo ? &s->repo->meta : &s->ks->meta;
    int64_t interval, retry;
    bool ready = false;
    int rc;

    ctx->now_ms = core_wall_now();
    ctx->changed = false;
    if (s->repo) {
        rc = eng_source_oci_reconcile(ctx, s->repo, &ready, err);
        interval = s->repo->interval_ms;
        retry = interval;
    } else {
        rc = eng_kustomization_reconcile(ctx, s->ks, &ready, err);
        interval = s->ks->interval_ms;
        retry = s->ks->retry_interval_ms > 0 ? s->ks->retry_interval_ms : interval;
    }
    if (rc < 0) {
        core_error_wrap(err, "%s \"%s/%s\"", s->kind, m->ns, m->name);
        return rc;
    }
    s->ready = ready;
    s->failures = ready ? 0 : s->failures + 1;
    if (!ready && s->repo) { /* sources back off exponentially: 1s, 2s, 4s ... up to interval */
        retry = 1000;
        for (unsigned int i = 1; i < s->failures && retry < interval; i++)
            retry *= 2;
        if (retry > interval)
            retry = interval;
    }
    s->due_ms = core_mono_now() + jitter(ready ? interval : retry);
    return 0;
}

/* A new artifact or applied revision of s makes its consumers due now: the Kustomizations of a
 * source, the dependents of a Kustomization (design.md "Reconcilers and the loop"). */
static void wake_consumers(sched *items, size_t n, const sched *s, int64_t now)
{
    const eng_meta *m = s->repo ? &s->repo->meta : &s->ks->meta;

    for (size_t i = 0; i < n; i++) {
        const eng_kustomization *k = items[i].ks;
        bool wake = false;
        if (!k)
            continue;
        if (s->repo)
            wake = strcmp(k->source_ref.kind, ENG_KIND_OCIREPO) == 0 &&
                   strcmp(k->source_ref.ns, m->ns) == 0 && strcmp(k->source_ref.name, m->name) == 0;
        for (size_t d = 0; !s->repo && d < k->depends_on_len && !wake; d++)
            wake = strcmp(k->depends_on[d].ns, m->ns) == 0 &&
                   strcmp(k->depends_on[d].name, m->name) == 0;
        if (wake && items[i].due_ms > now)
            items[i].due_ms = now;
    }
}

/* The control socket's wake-up (engine/control.c): the object named is due now. */
typedef struct wake_ctx {
    sched *items;
    size_t n;
} wake_ctx;

static bool control_wake(void *payload, const char *kind, const char *ns, const char *name,
                         bool with_source)
{
    wake_ctx *w = payload;

    for (size_t i = 0; i < w->n; i++) {
        const eng_meta *m = w->items[i].repo ? &w->items[i].repo->meta : &w->items[i].ks->meta;
        const eng_kustomization *k = w->items[i].ks;
        if (strcmp(w->items[i].kind, kind) != 0 || strcmp(m->ns, ns) != 0 ||
            strcmp(m->name, name) != 0)
            continue;
        w->items[i].due_ms = core_mono_now();
        if (with_source && k && strcmp(k->source_ref.kind, ENG_KIND_OCIREPO) == 0)
            (void)control_wake(payload, ENG_KIND_OCIREPO, k->source_ref.ns, k->source_ref.name,
                               false);
        return true;
    }
    return false;
}

/* With opts->only_*: is s the object named, or (with_source) the source it reads? */
static bool only_selected(const berth_engine_opts *opts, const eng_config *cfg, const sched *s)
{
    const eng_meta *m = s->repo ? &s->repo->meta : &s->ks->meta;
    const eng_kustomization *k;

    if (strcmp(s->kind, opts->only_kind) == 0 && strcmp(m->ns, opts->only_ns) == 0 &&
        strcmp(m->name, opts->only_name) == 0)
        return true;
    if (!s->repo || !opts->with_source || strcmp(opts->only_kind, ENG_KIND_KS) != 0)
        return false;
    k = eng_config_find_kustomization(cfg, opts->only_ns, opts->only_name);
    return k && strcmp(k->source_ref.kind, ENG_KIND_OCIREPO) == 0 &&
           strcmp(k->source_ref.ns, m->ns) == 0 && strcmp(k->source_ref.name, m->name) == 0;
}

static int parse_target(eng_target **out, const berth_engine_opts *opts, berth_error **err)
{
    const char *spec = opts->target, *state_dir = opts->state_dir;
    char *dir;
    int rc;

    if (!spec) {
        if (!(dir = core_sprintf("%s/target", state_dir)))
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        rc = eng_target_dir_new(out, dir, err);
        core_free(dir);
        return rc;
    }
    if (strcmp(spec, "kube") == 0)
        return eng_target_kube_new(out, opts->kubeconfig, opts->kube_context, err);
    if (!core_str_has_prefix(spec, "dir:") || !spec[4])
        return core_error_set(err, BERTH_EINVAL,
                              "target \"%s\" is not supported (want dir:PATH or kube)", spec);
    return eng_target_dir_new(out, spec + 4, err);
}

int berth_engine_run(bool *all_ready_out, const berth_engine_opts *opts, berth_error **err)
{
    eng_ctx ctx = {.state = NULL};
    eng_config *cfg = NULL;
    eng_target *target = NULL;
    eng_state *state = NULL;
    const eng_kustomization **order = NULL;
    sched *items = NULL;
    eng_control *control = NULL;
    size_t n = 0, invalid = 0;
    int rc;

    BERTH_ARG_CHECK(all_ready_out && opts && opts->config_path && opts->state_dir);
    BERTH_ARG_CHECK(!opts->only_name || (opts->once && opts->only_kind && opts->only_ns));
    *all_ready_out = false;
    if (opts->version != BERTH_ENGINE_OPTS_VERSION)
        return core_error_set(err, BERTH_EINVAL, "unknown engine options version %u",
                              opts->version);
    if ((rc = eng_state_open(&state, opts->state_dir, NULL, err)) < 0)
        goto out;
    if ((rc = parse_target(&target, opts, err)) < 0)
        goto out;
    if ((rc = eng_config_load(&cfg, opts->config_path, err)) < 0)
        goto out;
    ctx.state = state;
    ctx.cfg = cfg;
    ctx.target = target;
    ctx.debug = opts->debug;
    ctx.now_ms = core_wall_now();
    eng_log("info", "start", NULL, NULL, NULL,
            "loaded %zu OCIRepository, %zu Kustomization from %zu file(s) of \"%s\"",
            cfg->ocirepos_len, cfg->kustomizations_len, cfg->files, opts->config_path);
    if ((rc = stall_invalid(&ctx, &invalid, err)) < 0)
        goto out;

    n = cfg->ocirepos_len + cfg->kustomizations_len;
    items = core_calloc(n + 1, sizeof(*items));
    order = core_calloc(cfg->kustomizations_len + 1, sizeof(*order));
    if (!items || !order) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    order_kustomizations(order, cfg);
    for (size_t i = 0; i < cfg->ocirepos_len; i++)
        items[i] = (sched){.kind = ENG_KIND_OCIREPO, .repo = &cfg->ocirepos[i]};
    for (size_t i = 0; i < cfg->kustomizations_len; i++)
        items[cfg->ocirepos_len + i] = (sched){.kind = ENG_KIND_KS, .ks = order[i]};

    if (opts->once && opts->only_name) { /* berth reconcile without a running loop */
        bool found = false, all = true;
        for (size_t i = 0; i < n; i++) {
            if (!only_selected(opts, cfg, &items[i]))
                continue;
            found = found || strcmp(items[i].kind, opts->only_kind) == 0;
            if ((rc = reconcile_one(&ctx, &items[i], err)) < 0)
                goto out;
            all = all && items[i].ready;
        }
        if (!found)
            rc = core_error_set(err, BERTH_ENOTFOUND, "%s \"%s/%s\" is not in the config \"%s\"",
                                opts->only_kind, opts->only_ns, opts->only_name, opts->config_path);
        *all_ready_out = found && all;
        goto out;
    }
    if (!opts->once) { /* the control socket; without it the loop still runs */
        berth_error *ce = NULL;
        if (eng_control_open(&control, opts->state_dir, &ce) < 0) {
            char *t = berth_error_text(ce);
            eng_log("error", "control-failed", NULL, NULL, NULL, "%s", t ? t : "no socket");
            free(t);
        }
        berth_error_free(ce);
    }
    /* the first pass: everything, in order */
    for (size_t i = 0; i < n; i++) {
        if ((rc = reconcile_one(&ctx, &items[i], err)) < 0)
            goto out;
    }
    if (opts->once) {
        bool all = invalid == 0 && cfg->errors_len == 0;
        for (size_t i = 0; i < n; i++)
            all = all && items[i].ready;
        *all_ready_out = all;
        goto out;
    }
    while (!(opts->stop && *opts->stop)) {
        int64_t now = core_mono_now(), next = now + 1000;
        for (size_t i = 0; i < n && !(opts->stop && *opts->stop); i++) {
            if (items[i].due_ms <= now) {
                if ((rc = reconcile_one(&ctx, &items[i], err)) < 0)
                    goto out;
                if (ctx.changed)
                    wake_consumers(items, n, &items[i], now);
            }
            if (items[i].due_ms < next)
                next = items[i].due_ms;
        }
        now = core_mono_now();
        if (next > now && control) {
            wake_ctx w = {.items = items, .n = n};
            eng_control_serve(control, next - now < 200 ? next - now : 200, control_wake, &w, n);
        } else if (next > now) {
            core_sleep_ms(next - now < 200 ? next - now : 200);
        }
    }
    eng_log("info", "stop", NULL, NULL, NULL, "stopping");
    *all_ready_out = true;
    for (size_t i = 0; i < n; i++)
        *all_ready_out = *all_ready_out && items[i].ready;
out:
    eng_control_free(control);
    core_free(items);
    core_free(order);
    eng_config_free(cfg);
    eng_target_free(target);
    eng_state_free(state);
    return rc;
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
    if (rc < 0) {
        berth_engine_rows_free(rows, n);
        return rc;
    }
    *rows_out = rows;
    *n_out = n;
    return 0;
}
