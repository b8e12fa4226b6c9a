/*
 * engine/sched.c: the loop's schedule and its decisions (engine/sched.h). Loop thread only; no
 * I/O, no clock: "now" is an argument.
 */
#include "engine/sched.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/internal.h"

void eng_sched_init(eng_sched *s)
{
    memset(s, 0, sizeof(*s));
}

static void item_free(eng_item *it)
{
    if (!it)
        return;
    core_free(it->ns);
    core_free(it->name);
    core_free(it->deps);
    core_free(it);
}

void eng_sched_dispose(eng_sched *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->len; i++)
        item_free(s->items[i]);
    core_free(s->items);
    memset(s, 0, sizeof(*s));
}

static int key_cmp(const char *ka, const char *na, const char *a, const char *kb, const char *nb,
                   const char *b)
{
    int c = strcmp(ka, kb);
    if (c == 0)
        c = strcmp(na, nb);
    return c ? c : strcmp(a, b);
}

static int item_ptr_cmp(const void *a, const void *b)
{
    const eng_item *x = *(eng_item *const *)a, *y = *(eng_item *const *)b;
    return key_cmp(x->kind, x->ns, x->name, y->kind, y->ns, y->name);
}

/* The item of the key in sorted (n items sorted by item_ptr_cmp), or NULL. */
static eng_item *sorted_find(eng_item **sorted, size_t n, const char *kind, const char *ns,
                             const char *name, size_t *idx_out)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const eng_item *m = sorted[mid];
        int c = key_cmp(kind, ns, name, m->kind, m->ns, m->name);
        if (c == 0) {
            *idx_out = mid;
            return sorted[mid];
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

eng_item *eng_sched_find(const eng_sched *s, const char *kind, const char *ns, const char *name)
{
    for (size_t i = 0; s && i < s->len; i++) {
        eng_item *it = s->items[i];
        if (strcmp(it->kind, kind) == 0 && strcmp(it->ns, ns) == 0 && strcmp(it->name, name) == 0)
            return it;
    }
    return NULL;
}

size_t eng_sched_pos(const eng_sched *s, const eng_item *item)
{
    for (size_t i = 0; s && i < s->len; i++)
        if (s->items[i] == item)
            return i;
    return ENG_SCHED_NONE;
}

/* Order Kustomizations so that dependencies come first (stable; cycles keep name order). */
static int order_kustomizations(size_t *out, const eng_config *cfg, berth_error **err)
{
    size_t n = cfg->kustomizations_len, done = 0;
    bool *placed = core_calloc(n + 1, sizeof(bool));

    if (!placed)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
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
                out[done++] = i;
                progress = true;
            }
        }
        if (!progress) { /* a cycle: the rest in name order */
            for (size_t i = 0; i < n; i++) {
                if (!placed[i]) {
                    placed[i] = true;
                    out[done++] = i;
                }
            }
        }
    }
    core_free(placed);
    return 0;
}

static eng_item *item_new(const char *kind, const char *ns, const char *name)
{
    eng_item *it = core_calloc(1, sizeof(*it));

    if (!it)
        return NULL;
    it->kind = kind;
    it->ns = core_strdup(ns);
    it->name = core_strdup(name);
    it->source = ENG_SCHED_NONE;
    it->due_ms = ENG_SCHED_NEVER;
    if (!it->ns || !it->name) {
        item_free(it);
        return NULL;
    }
    return it;
}

static bool in_config(const eng_config *cfg, const char *kind, const char *ns, const char *name)
{
    if (strcmp(kind, ENG_KIND_OCIREPO) == 0 && eng_config_find_ocirepo(cfg, ns, name))
        return true;
    if (strcmp(kind, ENG_KIND_KS) == 0 && eng_config_find_kustomization(cfg, ns, name))
        return true;
    return eng_config_find_error(cfg, kind, ns, name) != NULL;
}

/* Take the old item of meta (marking it taken) or make a new one; point it at the spec. */
static eng_item *claim(eng_item **sorted, bool *taken, size_t n_old, const char *kind,
                       const eng_meta *m, int64_t now)
{
    size_t idx = 0;
    eng_item *it = sorted_find(sorted, n_old, kind, m->ns, m->name, &idx);

    if (it && !taken[idx]) {
        taken[idx] = true;
        if (it->removed || strcmp(it->digest, m->content_digest) != 0) {
            /* new or changed spec (or back after removal): reconcile now, fresh backoff */
            it->removed = false;
            it->failures = 0;
            it->due_ms = now;
        }
    } else if (!(it = item_new(kind, m->ns, m->name))) {
        return NULL;
    } else {
        it->due_ms = now;
    }
    memcpy(it->digest, m->content_digest, sizeof(it->digest));
    it->digest[sizeof(it->digest) - 1] = '\0';
    return it;
}

int eng_sched_build(eng_sched *s, const eng_config *cfg, const eng_objkey *extra, size_t n_extra,
                    bool keep_missing, int64_t now, berth_error **err)
{
    size_t n_old = s->len, n_repo = cfg->ocirepos_len, n_ks = cfg->kustomizations_len;
    size_t cap = n_repo + n_ks + n_old + n_extra + 1, len = 0;
    eng_item **sorted = NULL, **nv = NULL, **fresh = NULL;
    size_t *order = NULL, *ks_pos = NULL, **newdeps = NULL, n_fresh = 0;
    bool *taken = NULL;
    int rc = 0;

    sorted = core_calloc(n_old + 1, sizeof(*sorted));
    taken = core_calloc(n_old + 1, sizeof(*taken));
    nv = core_calloc(cap, sizeof(*nv));
    fresh = core_calloc(cap, sizeof(*fresh));
    order = core_calloc(n_ks + 1, sizeof(*order));
    ks_pos = core_calloc(n_ks + 1, sizeof(*ks_pos));
    newdeps = core_calloc(cap, sizeof(*newdeps));
    if (!sorted || !taken || !nv || !fresh || !order || !ks_pos || !newdeps) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = order_kustomizations(order, cfg, err)) < 0)
        goto out;
    if (n_old)
        memcpy(sorted, s->items, n_old * sizeof(*sorted));
    if (n_old > 1)
        qsort(sorted, n_old, sizeof(*sorted), item_ptr_cmp);

    /* 1. the objects of cfg, in order */
    for (size_t i = 0; i < n_repo + n_ks; i++) {
        const eng_ocirepo *r = i < n_repo ? &cfg->ocirepos[i] : NULL;
        const eng_kustomization *k = r ? NULL : &cfg->kustomizations[order[i - n_repo]];
        const char *kind = r ? ENG_KIND_OCIREPO : ENG_KIND_KS;
        size_t idx = 0;
        bool existed = sorted_find(sorted, n_old, kind, r ? r->meta.ns : k->meta.ns,
                                   r ? r->meta.name : k->meta.name, &idx) != NULL &&
                       !taken[idx];
        eng_item *it = claim(sorted, taken, n_old, kind, r ? &r->meta : &k->meta, now);
        if (!it) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        if (!existed)
            fresh[n_fresh++] = it;
        if (k) {
            ks_pos[order[i - n_repo]] = len;
            if (!(newdeps[len] = core_calloc(k->depends_on_len + 1, sizeof(size_t)))) {
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                goto out;
            }
        }
        nv[len++] = it;
    }
    /* 2. objects that left the config */
    for (size_t i = 0; i < n_old; i++) {
        eng_item *it = sorted[i];
        if (taken[i])
            continue;
        if (keep_missing || in_config(cfg, it->kind, it->ns, it->name)) {
            /* still named (with an error) or absence proves nothing: no spec, no GC */
            it->removed = false;
            it->due_ms = ENG_SCHED_NEVER;
            if (!it->in_flight && it->consumers_in_flight == 0)
                continue; /* freed below (no job points at it) */
        } else if (!it->removed) {
            it->removed = true;
            it->failures = 0;
            it->due_ms = now;
        }
        nv[len++] = it;
    }
    /* 3. state found on disk for objects the config does not have */
    for (size_t i = 0; i < n_extra && !keep_missing; i++) {
        const eng_objkey *x = &extra[i];
        bool known = in_config(cfg, x->kind, x->ns, x->name);
        eng_item *it;
        for (size_t j = 0; j < len && !known; j++)
            known = key_cmp(x->kind, x->ns, x->name, nv[j]->kind, nv[j]->ns, nv[j]->name) == 0;
        if (known)
            continue;
        if (!(it = item_new(strcmp(x->kind, ENG_KIND_OCIREPO) == 0 ? ENG_KIND_OCIREPO : ENG_KIND_KS,
                            x->ns, x->name))) {
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        it->removed = true;
        it->due_ms = now;
        fresh[n_fresh++] = it;
        nv[len++] = it;
    }
    /* 4. specs and positions (nothing can fail from here on) */
    for (size_t i = 0; i < len; i++) {
        eng_item *it = nv[i];
        const eng_kustomization *k = NULL;
        it->repo = NULL;
        it->ks = NULL;
        it->source = ENG_SCHED_NONE;
        it->deps_len = 0;
        if (i < n_repo) {
            it->repo = &cfg->ocirepos[i];
            continue;
        }
        if (i >= n_repo + n_ks) {
            it->digest[0] = '\0';
            continue;
        }
        k = it->ks = &cfg->kustomizations[order[i - n_repo]];
        if (strcmp(k->source_ref.kind, ENG_KIND_OCIREPO) == 0) {
            const eng_ocirepo *r =
                eng_config_find_ocirepo(cfg, k->source_ref.ns, k->source_ref.name);
            if (r)
                it->source = (size_t)(r - cfg->ocirepos);
        }
        core_free(it->deps);
        it->deps = newdeps[i];
        newdeps[i] = NULL;
        for (size_t d = 0; d < k->depends_on_len; d++) {
            const eng_kustomization *dk =
                eng_config_find_kustomization(cfg, k->depends_on[d].ns, k->depends_on[d].name);
            if (dk)
                it->deps[it->deps_len++] = ks_pos[dk - cfg->kustomizations];
        }
    }
    /* 5. commit: free the items nobody keeps */
    for (size_t i = 0; i < n_old; i++) {
        bool kept = false;
        for (size_t j = n_repo + n_ks; j < len && !kept && !taken[i]; j++)
            kept = nv[j] == sorted[i];
        if (!taken[i] && !kept)
            item_free(sorted[i]);
    }
    core_free(s->items);
    s->items = nv;
    s->len = len;
    s->cap = cap;
    nv = NULL;
    n_fresh = 0;
out:
    for (size_t i = 0; i < n_fresh; i++) /* failed: the new items go, the old table stays */
        item_free(fresh[i]);
    for (size_t i = 0; newdeps && i < cap; i++)
        core_free(newdeps[i]);
    core_free(newdeps);
    core_free(nv);
    core_free(fresh);
    core_free(sorted);
    core_free(taken);
    core_free(order);
    core_free(ks_pos);
    return rc;
}

bool eng_sched_can_start(const eng_sched *s, size_t pos, int64_t now)
{
    const eng_item *it;

    if (pos >= s->len)
        return false;
    it = s->items[pos];
    if (it->in_flight || it->due_ms > now)
        return false;
    if (it->removed)
        return strcmp(it->kind, ENG_KIND_OCIREPO) != 0 || it->consumers_in_flight == 0;
    if (it->repo)
        return it->consumers_in_flight == 0;
    if (!it->ks)
        return false;
    if (it->source != ENG_SCHED_NONE && it->source < s->len) {
        const eng_item *src = s->items[it->source];
        if (src->in_flight || (src->repo && src->due_ms <= now))
            return false;
    }
    for (size_t d = 0; d < it->deps_len; d++) {
        const eng_item *dep = it->deps[d] < s->len ? s->items[it->deps[d]] : NULL;
        if (!dep)
            continue;
        if (dep->in_flight || (it->deps[d] < pos && dep->ks && dep->due_ms <= now))
            return false;
    }
    return true;
}

size_t eng_sched_wake_consumers(eng_sched *s, size_t pos, int64_t now, bool once)
{
    size_t woken = 0;
    const eng_item *src;

    if (pos >= s->len)
        return 0;
    src = s->items[pos];
    for (size_t i = 0; i < s->len; i++) {
        eng_item *it = s->items[i];
        bool wake = false;
        if (!it->ks || (once && it->ran))
            continue;
        if (src->repo)
            wake = it->source == pos;
        for (size_t d = 0; src->ks && d < it->deps_len && !wake; d++)
            wake = it->deps[d] == pos;
        if (wake && it->due_ms > now) {
            it->due_ms = now;
            woken++;
        }
    }
    return woken;
}

bool eng_sched_is_parked_idle(const eng_item *item)
{
    return !item->repo && !item->ks && !item->removed && !item->in_flight &&
           item->consumers_in_flight == 0;
}

void eng_sched_drop(eng_sched *s, eng_item *item)
{
    size_t pos = eng_sched_pos(s, item);

    if (pos == ENG_SCHED_NONE)
        return;
    /* removed and parked items sit after every object of the config: positions stay valid */
    memmove(&s->items[pos], &s->items[pos + 1], (s->len - pos - 1) * sizeof(*s->items));
    s->len--;
    item_free(item);
}

int64_t eng_sched_next_due(const eng_sched *s, int64_t after)
{
    int64_t next = ENG_SCHED_NEVER;

    for (size_t i = 0; i < s->len; i++) {
        const eng_item *it = s->items[i];
        if (!it->in_flight && it->due_ms > after && it->due_ms < next)
            next = it->due_ms;
    }
    return next;
}

int64_t eng_sched_backoff(unsigned int failures, int64_t cap_ms)
{
    int64_t d = 1000;

    for (unsigned int i = 1; i < failures && d < cap_ms; i++)
        d *= 2;
    return d > cap_ms ? cap_ms : d;
}
