/*
 * engine/gc.c: the state of objects that left the config (issue 4, "status GC"): which objects
 * the state directory holds, and the garbage-collection job that removes an object's state, as
 * Flux's controllers do when an object is deleted (its finalizer, spec/engine.md §1.9).
 *
 * Design: the loop decides what is collected (engine/sched.c: an object neither in the config
 * nor named by one of its errors, and never while the config is incomplete); this file only
 * carries it out, on a worker. A Kustomization's objects are deleted from the target only when
 * the inventory file records prune on (written by each apply from deletionPolicy and
 * spec.prune) and the last status is not suspended. The inventory and status go last, so a
 * deletion that fails leaves the object listed by `berth get` with what is left to delete, and
 * the loop retries.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <berth/buf.h>
#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"
#include "images/reconcile.h"

bool eng_ks_prune_on_removal(const eng_kustomization *ks)
{
    switch (ks->deletion_policy) {
    case ENG_DELETION_DELETE:
    case ENG_DELETION_WAIT_FOR_TERMINATION:
        return true;
    case ENG_DELETION_ORPHAN:
        return false;
    case ENG_DELETION_MIRROR_PRUNE:
    default:
        return ks->prune;
    }
}

/* ---------------------------------------------------------------- listing the state */

void eng_keylist_dispose(eng_keylist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_owned; i++)
        core_free(l->owned[i]);
    core_free(l->owned);
    core_free(l->keys);
    memset(l, 0, sizeof(*l));
}

static bool has_key(const eng_keylist *l, const char *kind, const char *ns, const char *name)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->keys[i].kind, kind) == 0 && strcmp(l->keys[i].ns, ns) == 0 &&
            strcmp(l->keys[i].name, name) == 0)
            return true;
    return false;
}

static int add_key(eng_keylist *l, size_t *cap, const char *kind, const char *ns, const char *name,
                   size_t name_len)
{
    char *n = NULL, *s = NULL;

    if (l->len == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        eng_objkey *k = core_realloc(l->keys, nc * sizeof(*k));
        char **o;
        if (!k)
            return BERTH_ENOMEM;
        l->keys = k;
        if (!(o = core_realloc(l->owned, 2 * nc * sizeof(*o))))
            return BERTH_ENOMEM;
        l->owned = o;
        *cap = nc;
    }
    if (!(s = core_strdup(ns)) || !(n = core_strndup(name, name_len))) {
        core_free(s);
        return BERTH_ENOMEM;
    }
    if (has_key(l, kind, s, n)) {
        core_free(s);
        core_free(n);
        return 0;
    }
    l->owned[l->n_owned++] = s;
    l->owned[l->n_owned++] = n;
    l->keys[l->len++] = (eng_objkey){.kind = kind, .ns = s, .name = n};
    return 0;
}

/* Add kind/<ns>/<name>.json for every file under dir (dir/<ns>/<name>.json). */
static int scan(eng_keylist *l, size_t *cap, const char *dir, const char *kind, berth_error **err)
{
    DIR *d = opendir(dir), *nd;
    struct dirent *de, *fe;
    int rc = 0;

    if (!d)
        return 0; /* no such area yet */
    while (rc == 0 && (de = readdir(d))) {
        char *sub;
        if (de->d_name[0] == '.')
            continue;
        if (!(sub = core_sprintf("%s/%s", dir, de->d_name))) {
            rc = BERTH_ENOMEM;
            break;
        }
        if ((nd = opendir(sub))) {
            while (rc == 0 && (fe = readdir(nd))) {
                size_t len = strlen(fe->d_name);
                if (fe->d_name[0] == '.' || len <= 5 || strcmp(fe->d_name + len - 5, ".json") != 0)
                    continue;
                rc = add_key(l, cap, kind, de->d_name, fe->d_name, len - 5);
            }
            closedir(nd);
        }
        core_free(sub);
    }
    closedir(d);
    if (rc < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory listing \"%s\"", dir);
    return 0;
}

int eng_keylist_from_state(eng_keylist *out, eng_state *st, berth_error **err)
{
    const char *root = eng_state_path(st);
    char *a = core_sprintf("%s/status/ocirepository", root);
    char *b = core_sprintf("%s/status/kustomization", root);
    char *c = core_sprintf("%s/inventory", root);
    static const char *const img_kinds[] = {IMG_KIND_REPO, IMG_KIND_POLICY, IMG_KIND_UPDATE};
    static const char *const img_dirs[] = {"imagerepository", "imagepolicy",
                                           "imageupdateautomation"};
    size_t cap = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (!a || !b || !c)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < 3; i++) { /* images: their status files */
        char *d = core_sprintf("%s/status/%s", root, img_dirs[i]);
        rc = d ? scan(out, &cap, d, img_kinds[i], err)
               : core_error_set(err, BERTH_ENOMEM, "out of memory");
        core_free(d);
    }
    if (rc == 0)
        rc = scan(out, &cap, a, ENG_KIND_OCIREPO, err);
    if (rc == 0)
        rc = scan(out, &cap, b, ENG_KIND_KS, err);
    if (rc == 0)
        rc = scan(out, &cap, c, ENG_KIND_KS, err);
    if (rc < 0)
        eng_keylist_dispose(out);
    core_free(a);
    core_free(b);
    core_free(c);
    return rc;
}

/* ---------------------------------------------------------------- the GC job */

static void log_error(const char *kind, const char *ns, const char *name, const berth_error *e)
{
    char *t = berth_error_text(e);
    eng_log("error", "gc-failed", kind, ns, name, "%s", t ? t : "garbage collection failed");
    free(t);
}

static int forget(eng_ctx *ctx, const char *kind, const char *ns, const char *name,
                  berth_error **err)
{
    int rc;

    if (strcmp(kind, ENG_KIND_KS) == 0 &&
        (rc = eng_state_inventory_remove(ctx->state, ns, name, err)) < 0)
        return rc;
    if ((rc = berth_engine_suspend_set(eng_state_path(ctx->state), kind, ns, name, false, err)) < 0)
        return rc;
    return eng_state_status_remove(ctx->state, kind, ns, name, err);
}

static int gc_source(eng_ctx *ctx, const char *ns, const char *name, berth_error **err)
{
    char *dir =
        core_sprintf("%s/artifacts/ocirepository/%s/%s", eng_state_path(ctx->state), ns, name);
    int rc;

    if (!dir)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    rc = core_fs_remove_all(dir, err);
    core_free(dir);
    if (rc == 0)
        rc = forget(ctx, ENG_KIND_OCIREPO, ns, name, err);
    if (rc == 0) {
        eng_log("info", "garbage-collected", ENG_KIND_OCIREPO, ns, name,
                "removed from the config: status and stored artifacts deleted");
        eng_emit(ctx, "info", ENG_KIND_OCIREPO, ns, name, "GarbageCollected",
                 "removed from the config: status and stored artifacts deleted");
    }
    return rc;
}

static int gc_kustomization(eng_ctx *ctx, const char *ns, const char *name, berth_error **err)
{
    eng_inventory inv = ENG_INVENTORY_INIT, left = ENG_INVENTORY_INIT;
    berth_buf text = BERTH_BUF_INIT;
    json_t *st = NULL;
    eng_plan pruned;
    eng_ks_target kt = {0};
    const char *why = NULL;
    char *msg = NULL;
    size_t deleted = 0;
    bool still = false; /* WaitForTermination timed out: the deleted objects are still there */
    int rc, prc = 0;

    eng_plan_init(&pruned);
    if ((rc = eng_state_status_read(&st, ctx->state, ENG_KIND_KS, ns, name, err)) < 0 ||
        (rc = eng_state_inventory_read(&inv, ctx->state, ns, name, err)) < 0)
        goto out;
    if (inv.len == 0)
        why = "no inventory";
    else if (json_is_true(json_object_get(st, "suspended")))
        why = "suspended: objects kept";
    else if (inv.prune == ENG_INV_PRUNE_OFF)
        why = "prune disabled: objects kept";
    else if (inv.prune == ENG_INV_PRUNE_UNKNOWN)
        why = "prune not recorded by the last apply: objects kept";
    if (!why) {
        /* the Kubernetes target deletes only objects carrying this Kustomization's owner labels;
         * objects applied through spec.kubeConfig are deleted from that cluster */
        eng_target_scope scope = {.ks_ns = ns, .ks_name = name};
        if ((rc = eng_ks_target_stored(&kt, ctx, ns, name, &inv, err)) < 0 ||
            (rc = eng_target_set_scope(kt.target, &scope, err)) < 0) {
            core_error_wrap(err, "deleting the objects of removed Kustomization \"%s/%s\"", ns,
                            name);
            goto out;
        }
        prc = eng_target_prune(kt.target, &pruned, &inv, err);
        if (prc == 0 && inv.wait_ms > 0) /* deletionPolicy WaitForTermination */
            still = (prc = eng_target_wait_gone(kt.target, &pruned, core_mono_now() + inv.wait_ms,
                                                err)) < 0;
        if (prc < 0 && kt.where)
            core_error_wrap(err, "%s", kt.where);
        for (size_t i = 0; i < pruned.len && rc == 0; i++) {
            const eng_change *c = &pruned.changes[i];
            if (berth_buf_printf(&text, "%s %s\n", c->subject, eng_change_action_name(c->action)) <
                0)
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            else if (c->action == ENG_CHANGE_UNKNOWN || (still && c->action == ENG_CHANGE_DELETE))
                rc = eng_inventory_add(&left, c->id, c->version, NULL, err);
            else if (c->action == ENG_CHANGE_DELETE)
                deleted++; /* not the skipped ones (the kube target keeps foreign objects) */
        }
        if (rc == 0 && (prc < 0 || left.len > 0)) {
            /* keep what is left to delete, so the retry (and `berth get`) sees it */
            left.prune = inv.prune;
            left.wait_ms = inv.wait_ms;
            if (inv.cluster && !(left.cluster = core_strdup(inv.cluster)))
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
        if (rc == 0 && (prc < 0 || left.len > 0)) {
            if ((rc = eng_state_inventory_write(ctx->state, ns, name, &left, err)) == 0)
                rc = prc < 0
                         ? prc
                         : core_error_set(err, BERTH_EIO, "%zu object(s) not deleted", left.len);
        }
        if (rc < 0) {
            core_error_wrap(err, "deleting the objects of removed Kustomization \"%s/%s\"", ns,
                            name);
            goto out;
        }
    }
    if ((rc = forget(ctx, ENG_KIND_KS, ns, name, err)) < 0)
        goto out;
    if (why)
        msg = core_sprintf("removed from the config: status and inventory deleted (%s)", why);
    else
        msg = core_sprintf("removed from the config: %zu object(s) deleted\n%.*s", deleted,
                           (int)text.len, text.ptr ? text.ptr : "");
    eng_log("info", "garbage-collected", ENG_KIND_KS, ns, name, "%s", msg ? msg : "collected");
    eng_emit(ctx, "info", ENG_KIND_KS, ns, name, "GarbageCollected", msg ? msg : "collected");
out:
    eng_ks_target_dispose(&kt);
    core_free(msg);
    berth_buf_dispose(&text);
    eng_plan_dispose(&pruned);
    eng_inventory_dispose(&inv);
    eng_inventory_dispose(&left);
    json_decref(st);
    return rc;
}

/* An image object: its status (and suspend override); an ImageRepository's stored tag list,
 * an automation's work directory. */
static int gc_image(eng_ctx *ctx, const char *kind, const char *ns, const char *name,
                    berth_error **err)
{
    const char *root = eng_state_path(ctx->state);
    char *dir = NULL;
    int rc = 0;

    if (strcmp(kind, IMG_KIND_REPO) == 0)
        dir = core_sprintf("%s/images/%s/%s", root, ns, name);
    else if (strcmp(kind, IMG_KIND_UPDATE) == 0)
        dir = core_sprintf("%s/images/automation/%s/%s", root, ns, name);
    if (strcmp(kind, IMG_KIND_POLICY) != 0 && !dir)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (dir)
        rc = core_fs_remove_all(dir, err);
    core_free(dir);
    if (rc == 0)
        rc = forget(ctx, kind, ns, name, err);
    if (rc == 0) {
        const char *msg = strcmp(kind, IMG_KIND_REPO) == 0
                              ? "removed from the config: status and stored tags deleted"
                              : "removed from the config: status deleted";
        eng_log("info", "garbage-collected", kind, ns, name, "%s", msg);
        eng_emit(ctx, "info", kind, ns, name, "GarbageCollected", msg);
    }
    return rc;
}

int eng_gc_object(eng_ctx *ctx, const char *kind, const char *ns, const char *name,
                  berth_error **err)
{
    int rc = strcmp(kind, ENG_KIND_OCIREPO) == 0 ? gc_source(ctx, ns, name, err)
             : strcmp(kind, ENG_KIND_KS) == 0    ? gc_kustomization(ctx, ns, name, err)
                                                 : gc_image(ctx, kind, ns, name, err);
    if (rc < 0)
        log_error(kind, ns, name, err ? *err : NULL);
    return rc;
}
