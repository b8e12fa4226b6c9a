/*
 * engine/loop.c: berth_engine_run, the engine's loop (issue 4): one loop thread that owns the
 * config, the schedule and every decision, and a pool of workers that run reconciles.
 *
 * Design (design.md "Reconcilers and the loop", style.md 2.7):
 *   - The loop thread alone touches the schedule (engine/sched.h), the current config and the
 *     control socket. It waits in poll(2) on the control socket and the pool's wake pipe, with a
 *     timeout up to the next due object (at most 1 s, so the stop and reload flags that signal
 *     handlers set are seen even when a signal lands between the check and the poll).
 *   - A job is a whole reconcile (or a garbage collection) of one object: the registry client is
 *     synchronous, so a worker runs the object's network exchanges, extraction, build and writes
 *     itself. Each worker keeps its own target and registry clients (engine/clients.c); what
 *     workers share is the state directory, whose files are per object and written atomically,
 *     and events.jsonl, appended under a mutex (engine/state.c).
 *   - A job borrows its object's spec from a config that the loop keeps alive (reference
 *     counted on the loop thread) until the job comes back, so a reload never frees a spec in use.
 *   - Completions come back through the pool's done queue; the loop reschedules the object
 *     (interval ±5% jitter after success; after a failure an OCIRepository backs off 1 s, 2 s,
 *     4 s ... up to its interval, a Kustomization waits retryInterval), and a new artifact or
 *     applied revision, or an object that is Ready again after a failure, makes its consumers
 *     (Kustomizations of a source, dependents of a Kustomization) due at once.
 *   - Reload: SIGHUP (opts->reload) or a change of the config path's files (names, sizes,
 *     mtimes, polled every opts->config_poll_ms, default 2 s). A config that loads completely
 *     replaces the current one: new and changed objects are due at once, objects gone from it
 *     are garbage-collected (engine/gc.c). A config with a file that failed as a whole
 *     (cfg->incomplete) is refused: the loop keeps the previous config, so nothing of the
 *     broken file is taken as removed; the errors are logged. At start-up the same GC covers
 *     state left from a previous config (unless that config is incomplete).
 *   - Stop: once *opts->stop is set no job starts; in-flight jobs finish, then the loop returns.
 *   - once: every object is reconciled once (same rules, same pool), then the loop returns.
 *     once with only_*: the named object (and its source) is reconciled on the calling thread.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"
#include "engine/kube.h"
#include "engine/kube_store.h"
#include "engine/pool.h"
#include "engine/sched.h"
#include "images/reconcile.h"

#define DEFAULT_WORKERS 4
#define MAX_WORKERS 64
#define DEFAULT_CONFIG_POLL_MS 2000
#define MAX_SLEEP_MS 1000
#define GC_RETRY_MAX_MS (5 * 60 * 1000)

/* A config shared by the loop and the jobs that borrow its specs (loop thread only). */
typedef struct cfg_ref {
    eng_config *cfg;
    unsigned int refs;
} cfg_ref;

static void cfg_release(cfg_ref *r)
{
    if (r && --r->refs == 0) {
        eng_config_free(r->cfg);
        core_free(r);
    }
}

/* What one worker thread owns. */
typedef struct worker {
    eng_state *state; /* shared */
    eng_target *target;
    eng_clients *clients;
    eng_remotes *remotes; /* spec.kubeConfig targets of this worker (engine/remote.c) */
    bool debug;
} worker;

/* One reconcile or GC of one object. */
typedef struct job {
    eng_job base; /* first */
    eng_item *item;
    cfg_ref *cfg;
    const eng_config *config;     /* cfg->cfg */
    const eng_ocirepo *repo;      /* the spec reconciled, or */
    const eng_kustomization *ks;  /* this one, or */
    const void *img;              /* an image kind's; all NULL: garbage collection */
    eng_item *src;                /* KS, automation: the source item whose consumers_in_flight
                                     was raised */
    const char *kind, *ns, *name; /* borrowed from item (immutable while it lives) */
    /* results */
    int rc;
    bool ready;
    bool changed;
    int64_t interval_ms; /* images: the object's interval */
    berth_error *err;
} job;

typedef struct loop {
    const berth_engine_opts *opts;
    eng_state *state;
    cfg_ref *cur; /* the current config */
    eng_sched sched;
    eng_pool *pool;
    eng_control *control;
    size_t n_workers;
    size_t running; /* jobs out on the pool */
    bool stopping;
    bool gc_failed;
    int rc; /* a fatal job error (state dir unwritable): stop and return it */
    berth_error *err;
    char fingerprint[72];
    int64_t next_config_poll;
    bool worked; /* a job finished since memory was last given back (engine/mem.c) */
} loop;

/* ---------------------------------------------------------------- helpers */

static int64_t jitter(int64_t ms)
{
    int64_t span = ms / 10; /* ±5% */
    if (span <= 0)
        return ms;
    return ms - span / 2 +
           (int64_t)randombytes_uniform((uint32_t)(span > 0x7fffffff ? 0x7fffffff : span));
}

static void log_chain(const char *level, const char *event, const char *kind, const char *ns,
                      const char *name, const berth_error *e)
{
    char *t = berth_error_text(e);
    eng_log(level, event, kind, ns, name, "%s", t ? t : "unknown error");
    free(t);
}

static int parse_target(eng_target **out, const berth_engine_opts *opts, berth_error **err)
{
    const char *spec = opts->target;
    char *dir;
    int rc;

    if (!spec) {
        if (!(dir = core_sprintf("%s/target", opts->state_dir)))
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        rc = eng_target_dir_new(out, dir, err);
        core_free(dir);
        return rc;
    }
    if (strcmp(spec, "kube") == 0) /* one client and discovery cache per target, so per worker */
        return eng_target_kube_new(out, opts->kubeconfig, opts->kube_context, err);
    if (!core_str_has_prefix(spec, "dir:") || !spec[4])
        return core_error_set(err, BERTH_EINVAL,
                              "target \"%s\" is not supported (want dir:PATH or kube)", spec);
    return eng_target_dir_new(out, spec + 4, err);
}

/* Mark the objects the loader refused Stalled; *n_out = how many had an identity. */
static int stall_invalid(eng_state *state, const eng_config *cfg, size_t *n_out, berth_error **err)
{
    eng_ctx ctx = {.state = state, .cfg = cfg, .now_ms = core_wall_now()};
    int rc = 0;

    *n_out = 0;
    for (size_t i = 0; i < cfg->errors_len; i++) {
        const eng_config_error *ce = &cfg->errors[i];
        json_t *old = NULL, *st = NULL;
        bool known =
            ce->kind && ce->ns && ce->name &&
            (strcmp(ce->kind, ENG_KIND_OCIREPO) == 0 || strcmp(ce->kind, ENG_KIND_KS) == 0 ||
             strcmp(ce->kind, IMG_KIND_REPO) == 0 || strcmp(ce->kind, IMG_KIND_POLICY) == 0 ||
             strcmp(ce->kind, IMG_KIND_UPDATE) == 0);

        eng_log("error", "InvalidConfig", ce->kind, ce->ns, ce->name, "%s", ce->text);
        if (!known)
            continue;
        if (eng_config_find_error(cfg, ce->kind, ce->ns, ce->name) != ce)
            continue; /* the first error of an object wins */
        (*n_out)++;
        if ((rc = eng_state_status_read(&old, state, ce->kind, ce->ns, ce->name, err)) < 0)
            return rc;
        if (!(st = old ? json_deep_copy(old) : eng_status_new())) {
            json_decref(old);
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
        if ((rc = eng_cond(st, "Stalled", "True", "InvalidConfig", ce->text, ctx.now_ms, err)) ==
                0 &&
            (rc = eng_cond(st, "Ready", "False", "InvalidConfig", ce->text, ctx.now_ms, err)) == 0)
            rc = eng_status_commit(&ctx, ce->kind, ce->ns, ce->name, old, st, err);
        json_decref(old);
        json_decref(st);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- the config fingerprint */

/* Append "<rel> <ino> <size> <mtime>\n" for path and, for a directory, everything below it
 * (names starting with '.' skipped, as the loader does). */
static int fp_walk(berth_buf *b, const char *path, const char *rel, int depth)
{
    struct stat sb;
    DIR *d;
    struct dirent *de;
    int rc = 0;

    if (stat(path, &sb) < 0)
        return berth_buf_printf(b, "%s missing\n", rel) < 0 ? BERTH_ENOMEM : 0;
    if (berth_buf_printf(b, "%s %llu %lld %lld.%09ld\n", rel, (unsigned long long)sb.st_ino,
                         (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
                         (long)sb.st_mtim.tv_nsec) < 0)
        return BERTH_ENOMEM;
    if (!S_ISDIR(sb.st_mode) || depth > 32 || !(d = opendir(path)))
        return 0;
    while (rc == 0 && (de = readdir(d))) {
        char *p, *r;
        if (de->d_name[0] == '.')
            continue;
        p = core_sprintf("%s/%s", path, de->d_name);
        r = core_sprintf("%s/%s", rel, de->d_name);
        rc = p && r ? fp_walk(b, p, r, depth + 1) : BERTH_ENOMEM;
        core_free(p);
        core_free(r);
    }
    closedir(d);
    return rc;
}

/* The sha256 of the listing of the config path (readdir order is stable for an unchanged
 * directory; a changed order only costs a reload that finds nothing new). "" on OOM. */
static void config_fingerprint(char out[72], const char *path)
{
    berth_buf b = BERTH_BUF_INIT;

    out[0] = '\0';
    if (fp_walk(&b, path, ".", 0) == 0)
        core_sha256_digest(out, b.ptr ? b.ptr : "", b.len);
    berth_buf_dispose(&b);
}

/* ---------------------------------------------------------------- jobs */

static void run_job(eng_job *base, void *payload)
{
    job *j = (job *)base;
    worker *w = payload;
    eng_ctx ctx = {.state = w->state,
                   .cfg = j->config,
                   .target = w->target,
                   .debug = w->debug,
                   .now_ms = core_wall_now(),
                   .clients = w->clients,
                   .remotes = w->remotes};

    if (j->repo)
        j->rc = eng_source_oci_reconcile(&ctx, j->repo, &j->ready, &j->err);
    else if (j->ks)
        j->rc = eng_kustomization_reconcile(&ctx, j->ks, &j->ready, &j->err);
    else if (j->img)
        j->rc = img_reconcile(&ctx, j->kind, j->img, &j->ready, &j->interval_ms, &j->err);
    else
        j->rc = eng_gc_object(&ctx, j->kind, j->ns, j->name, &j->err);
    if (j->rc < 0 && (j->repo || j->ks || j->img))
        core_error_wrap(&j->err, "%s \"%s/%s\"", j->kind, j->ns, j->name);
    j->changed = ctx.changed;
    eng_remotes_expire(w->remotes); /* clusters no Kustomization used for a while */
}

static int dispatch(loop *L, size_t pos, berth_error **err)
{
    eng_item *it = L->sched.items[pos];
    job *j = core_calloc(1, sizeof(*j));

    if (!j)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    j->base.run = run_job;
    j->item = it;
    j->cfg = L->cur;
    j->config = L->cur->cfg;
    L->cur->refs++;
    j->kind = it->kind;
    j->ns = it->ns;
    j->name = it->name;
    if (!it->removed) {
        j->repo = it->repo;
        j->ks = it->ks;
        j->img = it->img;
    }
    if ((j->ks || j->img) && it->source != ENG_SCHED_NONE) {
        j->src = L->sched.items[it->source];
        j->src->consumers_in_flight++;
    }
    it->in_flight = true;
    it->due_ms = ENG_SCHED_NEVER; /* a reload or wake during the job sets it again */
    L->running++;
    eng_pool_submit(L->pool, &j->base);
    return 0;
}

/* Take a finished job back: reschedule its object, wake consumers, collect removed items. */
static void complete(loop *L, job *j, int64_t now)
{
    eng_item *it = j->item;
    bool once = L->opts->once, was_ready;
    int64_t next;

    L->running--;
    it->in_flight = false;
    if (j->src) {
        j->src->consumers_in_flight--;
        if (eng_sched_is_parked_idle(j->src)) /* it left the config while this job ran */
            eng_sched_drop(&L->sched, j->src);
    }
    if (!j->repo && !j->ks && !j->img) { /* garbage collection */
        if (j->rc == 0 && it->removed) {
            eng_sched_drop(&L->sched, it);
            goto out;
        }
        if (j->rc < 0) {
            L->gc_failed = true;
            it->failures++;
            if (it->due_ms == ENG_SCHED_NEVER && !once && it->removed)
                it->due_ms = now + eng_sched_backoff(it->failures, GC_RETRY_MAX_MS);
        }
        if (eng_sched_is_parked_idle(it)) /* back in the config, with an error, meanwhile */
            eng_sched_drop(&L->sched, it);
        goto out;
    }
    if (j->rc < 0) { /* the state directory failed us: stop, report */
        log_chain("error", "reconcile-failed", j->kind, j->ns, j->name, j->err);
        if (L->rc == 0) {
            L->rc = j->rc;
            L->err = j->err;
            j->err = NULL;
        }
        L->stopping = true;
        goto out;
    }
    was_ready = it->ready;
    it->ready = j->ready;
    it->ran = true;
    it->failures = j->ready ? 0 : it->failures + 1;
    if (j->repo) {
        next =
            j->ready ? j->repo->interval_ms : eng_sched_backoff(it->failures, j->repo->interval_ms);
    } else if (j->img) { /* images back off as sources do */
        next = j->ready ? j->interval_ms : eng_sched_backoff(it->failures, j->interval_ms);
    } else {
        next = j->ready
                   ? j->ks->interval_ms
                   : (j->ks->retry_interval_ms > 0 ? j->ks->retry_interval_ms : j->ks->interval_ms);
    }
    if (once || (!it->repo && !it->ks && !it->img && !it->removed))
        it->due_ms = ENG_SCHED_NEVER;
    else if (it->due_ms == ENG_SCHED_NEVER) /* else: changed or woken meanwhile: keep "now" */
        it->due_ms = now + jitter(next);
    /* a new artifact or applied revision, or Ready again (consumers that failed on it retry) */
    if ((j->changed || (j->ready && !was_ready)) && !it->removed) {
        size_t pos = eng_sched_pos(&L->sched, it);
        if (pos != ENG_SCHED_NONE)
            eng_sched_wake_consumers(&L->sched, pos, now, once);
    }
    if (eng_sched_is_parked_idle(it)) {
        /* it left the config (with an error) while in flight: its Stalled status goes back */
        size_t n = 0;
        berth_error *e = NULL;
        eng_sched_drop(&L->sched, it);
        if (stall_invalid(L->state, L->cur->cfg, &n, &e) < 0)
            log_chain("error", "status-failed", NULL, NULL, NULL, e);
        berth_error_free(e);
    }
out:
    cfg_release(j->cfg);
    berth_error_free(j->err);
    core_free(j);
}

static void take_completions(loop *L, int64_t now)
{
    eng_job *list = eng_pool_take_done(L->pool);

    while (list) {
        eng_job *next = list->next;
        L->worked = true;
        complete(L, (job *)list, now);
        list = next;
    }
}

/* ---------------------------------------------------------------- config (re)load */

static int sched_load(loop *L, const eng_config *cfg, bool keep_missing, int64_t now,
                      berth_error **err)
{
    eng_keylist disk;
    int rc;

    if ((rc = eng_keylist_from_state(&disk, L->state, err)) < 0)
        return rc;
    rc = eng_sched_build(&L->sched, cfg, disk.keys, keep_missing ? 0 : disk.len, keep_missing, now,
                         err);
    eng_keylist_dispose(&disk);
    return rc;
}

static size_t count_removed(const eng_sched *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++)
        n += s->items[i]->removed;
    return n;
}

#define CONFIG_ERROR_FILE "config-error"

/* Record why the last reload was refused in STATE/config-error (`berth get` shows it), or
 * remove the record once a reload succeeded. Best effort: the log has it too. */
static void config_error_record(const loop *L, const eng_config *cfg, const berth_error *e)
{
    char *path = core_sprintf("%s/" CONFIG_ERROR_FILE, L->opts->state_dir);
    berth_buf b = BERTH_BUF_INIT;
    char when[32];
    berth_error *ignored = NULL;

    if (!path)
        return;
    if (!cfg && !e) {
        (void)unlink(path);
        core_free(path);
        return;
    }
    core_time_rfc3339(when, core_wall_now() / 1000);
    (void)berth_buf_printf(&b, "%s\n", when);
    if (e && berth_error_render(e, &b) == 0)
        (void)berth_buf_puts(&b, "\n");
    for (size_t i = 0; cfg && i < cfg->errors_len; i++)
        if (i == 0 || strcmp(cfg->errors[i].text, cfg->errors[i - 1].text) != 0)
            (void)berth_buf_printf(&b, "%s\n", cfg->errors[i].text);
    if (b.ptr)
        (void)core_fs_write_atomic(path, b.ptr, b.len, 0644, &ignored);
    berth_error_free(ignored);
    berth_buf_dispose(&b);
    core_free(path);
}

static void reload(loop *L, int64_t now, const char *why)
{
    eng_config *cfg = NULL;
    berth_error *e = NULL;
    cfg_ref *ref;
    size_t invalid = 0;

    eng_log("info", "reload", NULL, NULL, NULL, "reloading \"%s\" (%s)", L->opts->config_path, why);
    if (eng_config_load(&cfg, L->opts->config_path, &e) < 0) {
        log_chain("error", "reload-failed", NULL, NULL, NULL, e);
        eng_log("error", "reload-failed", NULL, NULL, NULL,
                "keeping the previous configuration (nothing is removed)");
        config_error_record(L, NULL, e);
        goto out;
    }
    if (cfg->incomplete) {
        for (size_t i = 0; i < cfg->errors_len; i++)
            eng_log("error", "InvalidConfig", cfg->errors[i].kind, cfg->errors[i].ns,
                    cfg->errors[i].name, "%s", cfg->errors[i].text);
        eng_log("error", "reload-refused", NULL, NULL, NULL,
                "a file of \"%s\" failed as a whole: keeping the previous configuration, nothing "
                "is removed or pruned until it is fixed",
                L->opts->config_path);
        config_error_record(L, cfg, NULL);
        goto out;
    }
    if (!(ref = core_calloc(1, sizeof(*ref)))) {
        eng_log("error", "reload-failed", NULL, NULL, NULL, "out of memory");
        goto out;
    }
    if (sched_load(L, cfg, false, now, &e) < 0) {
        log_chain("error", "reload-failed", NULL, NULL, NULL, e);
        core_free(ref);
        goto out;
    }
    ref->cfg = cfg;
    ref->refs = 1;
    cfg = NULL;
    config_error_record(L, NULL, NULL);
    cfg_release(L->cur);
    L->cur = ref;
    if (stall_invalid(L->state, L->cur->cfg, &invalid, &e) < 0)
        log_chain("error", "status-failed", NULL, NULL, NULL, e);
    eng_log("info", "reloaded", NULL, NULL, NULL,
            "%zu OCIRepository, %zu Kustomization, %zu invalid, %zu to garbage-collect",
            L->cur->cfg->ocirepos_len, L->cur->cfg->kustomizations_len, invalid,
            count_removed(&L->sched));
out:
    berth_error_free(e);
    eng_config_free(cfg);
}

/* Reload on SIGHUP, or when the config files changed: checked every config poll, or now when
 * check_now (a control request asked for it). */
static void maybe_reload(loop *L, int64_t now, bool check_now)
{
    const berth_engine_opts *o = L->opts;
    char fp[72];
    bool hup = o->reload && *o->reload;

    if (hup)
        *o->reload = 0;
    if (!hup && !check_now && (o->config_poll_ms < 0 || now < L->next_config_poll))
        return;
    L->next_config_poll =
        now + (o->config_poll_ms > 0 ? o->config_poll_ms : DEFAULT_CONFIG_POLL_MS);
    config_fingerprint(fp, o->config_path);
    if (!hup && strcmp(fp, L->fingerprint) == 0)
        return;
    memcpy(L->fingerprint, fp, sizeof(fp));
    reload(L, now, hup ? "SIGHUP" : "the config changed");
}

/* ---------------------------------------------------------------- the control socket */

static bool control_wake(void *payload, const char *kind, const char *ns, const char *name,
                         bool with_source, bool reload_first)
{
    loop *L = payload;
    int64_t now = core_mono_now();
    eng_item *it;

    if (reload_first)
        maybe_reload(L, now, true);
    it = eng_sched_find(&L->sched, kind, ns, name);

    if (!it || (!it->repo && !it->ks && !it->img) || it->removed)
        return false;
    it->due_ms = now;
    if (with_source && it->ks && it->source != ENG_SCHED_NONE)
        L->sched.items[it->source]->due_ms = now;
    return true;
}

static size_t count_objects(const eng_sched *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->len; i++)
        n += s->items[i]->repo || s->items[i]->ks || s->items[i]->img;
    return n;
}

/* ---------------------------------------------------------------- berth reconcile (no loop) */

static int run_selected(bool *all_ready_out, const berth_engine_opts *opts, eng_state *state,
                        const eng_config *cfg, eng_target *target, berth_error **err)
{
    eng_sched s;
    eng_ctx ctx = {.state = state, .cfg = cfg, .target = target, .debug = opts->debug};
    bool found = false, all = true;
    const eng_kustomization *sel = NULL;
    int rc;

    eng_sched_init(&s);
    if ((rc = eng_remotes_new(&ctx.remotes, opts->insecure_kubeconfig_exec,
                              opts->insecure_kubeconfig_tls, err)) < 0)
        return rc;
    if (strcmp(opts->only_kind, ENG_KIND_KS) == 0)
        sel = eng_config_find_kustomization(cfg, opts->only_ns, opts->only_name);
    if ((rc = eng_sched_build(&s, cfg, NULL, 0, true, 0, err)) < 0)
        goto out;
    for (size_t i = 0; i < s.len; i++) { /* in order: the source before its Kustomization */
        eng_item *it = s.items[i];
        bool ready = false, is_src;
        int64_t interval = 0;
        if (!it->repo && !it->ks && !it->img)
            continue;
        is_src = it->repo && opts->with_source && sel &&
                 strcmp(sel->source_ref.kind, ENG_KIND_OCIREPO) == 0 &&
                 strcmp(sel->source_ref.ns, it->ns) == 0 &&
                 strcmp(sel->source_ref.name, it->name) == 0;
        if (!is_src &&
            (strcmp(it->kind, opts->only_kind) != 0 || strcmp(it->ns, opts->only_ns) != 0 ||
             strcmp(it->name, opts->only_name) != 0))
            continue;
        found = found || !is_src;
        ctx.now_ms = core_wall_now();
        ctx.changed = false;
        rc = it->repo  ? eng_source_oci_reconcile(&ctx, it->repo, &ready, err)
             : it->img ? img_reconcile(&ctx, it->kind, it->img, &ready, &interval, err)
                       : eng_kustomization_reconcile(&ctx, it->ks, &ready, err);
        if (rc < 0) {
            core_error_wrap(err, "%s \"%s/%s\"", it->kind, it->ns, it->name);
            goto out;
        }
        all = all && ready;
    }
    if (!found)
        rc = core_error_set(err, BERTH_ENOTFOUND, "%s \"%s/%s\" is not in the config \"%s\"",
                            opts->only_kind, opts->only_ns, opts->only_name, opts->config_path);
    *all_ready_out = found && all;
out:
    eng_remotes_free(ctx.remotes);
    eng_sched_dispose(&s);
    return rc;
}

/* ---------------------------------------------------------------- berth_engine_run */

static void workers_free(worker *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++) {
        eng_target_free(w[i].target);
        eng_clients_free(w[i].clients);
        eng_remotes_free(w[i].remotes);
    }
    core_free(w);
}

static int workers_new(worker **out, void ***payloads_out, size_t n, const berth_engine_opts *opts,
                       eng_state *state, berth_error **err)
{
    worker *w = core_calloc(n, sizeof(*w));
    void **p = core_calloc(n, sizeof(*p));
    int rc = 0;

    *out = w;
    *payloads_out = p;
    if (!w || !p)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        w[i].state = state;
        w[i].debug = opts->debug;
        p[i] = &w[i];
        if ((rc = parse_target(&w[i].target, opts, err)) == 0)
            rc = eng_clients_new(&w[i].clients, err);
        if (rc == 0)
            rc = eng_remotes_new(&w[i].remotes, opts->insecure_kubeconfig_exec,
                                 opts->insecure_kubeconfig_tls, err);
    }
    return rc;
}

static void serve_control(loop *L)
{
    eng_control_serve(L->control, 0, control_wake, L, count_objects(&L->sched));
}

int berth_engine_run(bool *all_ready_out, const berth_engine_opts *opts, berth_error **err)
{
    loop L = {.opts = opts};
    eng_config *cfg = NULL;
    eng_target *check = NULL;
    worker *workers = NULL;
    void **payloads = NULL;
    eng_job *left = NULL;
    size_t invalid = 0;
    int rc;

    if (opts && opts->kube_store && opts->state_dir && all_ready_out &&
        opts->version == BERTH_ENGINE_OPTS_VERSION)
        return eng_kstore_run(all_ready_out, opts, err);
    BERTH_ARG_CHECK(all_ready_out && opts && opts->config_path && opts->state_dir);
    BERTH_ARG_CHECK(!opts->only_name || (opts->once && opts->only_kind && opts->only_ns));
    *all_ready_out = false;
    eng_sched_init(&L.sched);
    if (opts->version != BERTH_ENGINE_OPTS_VERSION)
        return core_error_set(err, BERTH_EINVAL, "unknown engine options version %u",
                              opts->version);
    L.n_workers = opts->workers ? opts->workers : DEFAULT_WORKERS;
    if (L.n_workers > MAX_WORKERS)
        return core_error_set(err, BERTH_EINVAL, "workers must be 1..%d, got %u", MAX_WORKERS,
                              opts->workers);
    eng_log_set_sink(opts->log_format, opts->log, opts->log_payload);
    if ((rc = eng_state_open(&L.state, opts->state_dir, NULL, err)) < 0)
        goto out;
    if ((rc = parse_target(&check, opts, err)) < 0)
        goto out;
    config_fingerprint(L.fingerprint, opts->config_path);
    if ((rc = eng_config_load(&cfg, opts->config_path, err)) < 0)
        goto out;
    if (!(L.cur = core_calloc(1, sizeof(*L.cur)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    L.cur->cfg = cfg;
    L.cur->refs = 1;
    cfg = NULL;
    eng_log("info", "start", NULL, NULL, NULL,
            "loaded %zu OCIRepository, %zu Kustomization from %zu file(s) of \"%s\"",
            L.cur->cfg->ocirepos_len, L.cur->cfg->kustomizations_len, L.cur->cfg->files,
            opts->config_path);
    if (L.cur->cfg->imagerepos_len + L.cur->cfg->imagepolicies_len +
        L.cur->cfg->imageupdates_len) /* images */
        eng_log("info", "start", NULL, NULL, NULL,
                "loaded %zu ImageRepository, %zu ImagePolicy, %zu ImageUpdateAutomation",
                L.cur->cfg->imagerepos_len, L.cur->cfg->imagepolicies_len,
                L.cur->cfg->imageupdates_len);
    if ((rc = stall_invalid(L.state, L.cur->cfg, &invalid, err)) < 0)
        goto out;
    if (opts->once && opts->only_name) { /* berth reconcile without a running loop */
        rc = run_selected(all_ready_out, opts, L.state, L.cur->cfg, check, err);
        goto out;
    }
    if (L.cur->cfg->incomplete)
        eng_log("error", "gc-skipped", NULL, NULL, NULL,
                "a file of \"%s\" failed as a whole: no state is garbage-collected",
                opts->config_path);
    config_error_record(&L, L.cur->cfg->incomplete ? L.cur->cfg : NULL, NULL);
    if ((rc = sched_load(&L, L.cur->cfg, L.cur->cfg->incomplete, core_mono_now(), err)) < 0)
        goto out;
    if (!opts->once) { /* the control socket; without it the loop still runs */
        berth_error *ce = NULL;
        if (eng_control_open(&L.control, opts->state_dir, &ce) < 0)
            log_chain("error", "control-failed", NULL, NULL, NULL, ce);
        berth_error_free(ce);
    }
    if ((rc = workers_new(&workers, &payloads, L.n_workers, opts, L.state, err)) < 0 ||
        (rc = eng_pool_new(&L.pool, L.n_workers, payloads, err)) < 0)
        goto out;
    L.next_config_poll = core_mono_now() +
                         (opts->config_poll_ms > 0 ? opts->config_poll_ms : DEFAULT_CONFIG_POLL_MS);

    for (;;) {
        int64_t now = core_mono_now(), next, wait;
        struct pollfd pf[2];
        nfds_t nfds = 1;

        take_completions(&L, now);
        if (opts->stop && *opts->stop && !L.stopping) {
            L.stopping = true;
            eng_log("info", "stop", NULL, NULL, NULL, "stopping: %zu job(s) in flight to finish",
                    L.running);
        }
        if (L.stopping && L.running == 0)
            break;
        if (!L.stopping && !opts->once)
            maybe_reload(&L, now, false);
        for (size_t pos = 0; !L.stopping && pos < L.sched.len && L.running < L.n_workers; pos++) {
            if (!eng_sched_can_start(&L.sched, pos, now))
                continue;
            if ((rc = dispatch(&L, pos, err)) < 0)
                goto out;
        }
        if (opts->once && L.running == 0 &&
            eng_sched_next_due(&L.sched, INT64_MIN) == ENG_SCHED_NEVER)
            break;
        next = eng_sched_next_due(&L.sched, now);
        if (!opts->once && L.worked && L.running == 0 &&
            (next == ENG_SCHED_NEVER || next - now >= ENG_IDLE_RELEASE_MS)) { /* idle RSS */
            eng_mem_idle(opts->release_idle_pages);
            L.worked = false;
        }
        wait = L.stopping || next == ENG_SCHED_NEVER ? MAX_SLEEP_MS : next - now;
        if (!opts->once && !L.stopping && L.next_config_poll - now < wait)
            wait = L.next_config_poll - now;
        if (wait > MAX_SLEEP_MS)
            wait = MAX_SLEEP_MS;
        if (wait < 0)
            wait = 0;
        pf[0] = (struct pollfd){.fd = eng_pool_fd(L.pool), .events = POLLIN};
        if (L.control && !L.stopping)
            pf[nfds++] = (struct pollfd){.fd = eng_control_fd(L.control), .events = POLLIN};
        if (poll(pf, nfds, (int)wait) > 0 && nfds > 1 && (pf[1].revents & POLLIN))
            serve_control(&L);
    }
    if (L.rc < 0) {
        rc = L.rc;
        if (err) {
            *err = L.err;
            L.err = NULL;
        }
        goto out;
    }
    if (!opts->once)
        eng_log("info", "stopped", NULL, NULL, NULL, "stopped");
    *all_ready_out = invalid == 0 && L.cur->cfg->errors_len == 0 && !L.gc_failed;
    for (size_t i = 0; i < L.sched.len; i++) {
        const eng_item *it = L.sched.items[i];
        if (it->repo || it->ks || it->img)
            *all_ready_out = *all_ready_out && it->ready;
    }
out:
    eng_pool_free(L.pool, &left);
    while (left) { /* only after a failure: the jobs' results are dropped */
        job *j = (job *)left;
        left = left->next;
        cfg_release(j->cfg);
        berth_error_free(j->err);
        core_free(j);
    }
    workers_free(workers, L.n_workers);
    core_free(payloads);
    berth_error_free(L.err);
    eng_control_free(L.control);
    eng_sched_dispose(&L.sched);
    cfg_release(L.cur);
    eng_config_free(cfg);
    eng_target_free(check);
    eng_state_free(L.state);
    eng_log_set_sink(BERTH_LOG_LOGFMT, NULL, NULL);
    return rc;
}
