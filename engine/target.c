/*
 * engine/target.c: the parts of the target interface (engine/target.h) every target shares:
 * plans and change sets, health results, and the calls through the vtable.
 */
#include "engine/target.h"

#include <string.h>

#include "core/core.h"

void eng_plan_init(eng_plan *p)
{
    if (p)
        memset(p, 0, sizeof(*p));
}

static void change_dispose(eng_change *c)
{
    core_free(c->id);
    core_free(c->version);
    core_free(c->subject);
    core_free(c->digest);
    json_decref(c->object);
}

void eng_plan_dispose(eng_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->len; i++)
        change_dispose(&p->changes[i]);
    core_free(p->changes);
    memset(p, 0, sizeof(*p));
}

const char *eng_change_action_name(eng_change_action a)
{
    switch (a) {
    case ENG_CHANGE_CREATE:
        return "created";
    case ENG_CHANGE_UPDATE:
        return "configured";
    case ENG_CHANGE_UNCHANGED:
        return "unchanged";
    case ENG_CHANGE_DELETE:
        return "deleted";
    case ENG_CHANGE_SKIPPED:
        return "skipped";
    case ENG_CHANGE_UNKNOWN:
        return "unknown";
    }
    return "unknown";
}

bool eng_plan_has_changes(const eng_plan *p)
{
    for (size_t i = 0; p && i < p->len; i++)
        if (p->changes[i].action != ENG_CHANGE_UNCHANGED)
            return true;
    return false;
}

size_t eng_plan_drift_count(const eng_plan *p)
{
    size_t n = 0;
    for (size_t i = 0; p && i < p->len; i++)
        n += p->changes[i].drift != ENG_DRIFT_NONE;
    return n;
}

int eng_plan_render(berth_buf *out, const eng_plan *p)
{
    for (size_t i = 0; p && i < p->len; i++) {
        const eng_change *c = &p->changes[i];
        if (c->action == ENG_CHANGE_UNCHANGED)
            continue;
        if (berth_buf_printf(out, "%s %s\n", c->subject, eng_change_action_name(c->action)) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

int eng_plan_add(eng_plan *p, eng_change_action action, eng_drift drift, const char *id,
                 const char *version, const char *subject, const char *digest, json_t *object,
                 berth_error **err)
{
    eng_change *c;
    BERTH_ARG_CHECK(p && id && subject);
    if (p->len == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        eng_change *n = core_realloc(p->changes, ncap * sizeof(*n));
        if (!n)
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        p->changes = n;
        p->cap = ncap;
    }
    c = &p->changes[p->len];
    memset(c, 0, sizeof(*c));
    c->action = action;
    c->drift = drift;
    c->id = core_strdup(id);
    c->version = core_strdup(version ? version : "");
    c->subject = core_strdup(subject);
    c->digest = digest ? core_strdup(digest) : NULL;
    if (!c->id || !c->version || !c->subject || (digest && !c->digest)) {
        change_dispose(c);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    c->object = json_incref(object);
    p->len++;
    return 0;
}

void eng_health_dispose(eng_health *h)
{
    if (!h)
        return;
    core_free(h->message);
    h->message = NULL;
}

int eng_target_plan(eng_target *t, eng_plan *out, const json_t *objects, const eng_inventory *inv,
                    berth_error **err)
{
    BERTH_ARG_CHECK(t && t->plan && out);
    return t->plan(t, out, objects, inv, err);
}

int eng_target_apply(eng_target *t, eng_inventory *inv_out, const eng_plan *plan, berth_error **err)
{
    BERTH_ARG_CHECK(t && t->apply && inv_out && plan);
    return t->apply(t, inv_out, plan, err);
}

int eng_target_prune(eng_target *t, eng_plan *out, const eng_inventory *entries, berth_error **err)
{
    BERTH_ARG_CHECK(t && t->prune && out && entries);
    return t->prune(t, out, entries, err);
}

int eng_target_wait_gone(eng_target *t, const eng_plan *pruned, int64_t deadline_ms,
                         berth_error **err)
{
    BERTH_ARG_CHECK(t && pruned);
    return t->wait_gone ? t->wait_gone(t, pruned, deadline_ms, err) : 0;
}

int eng_target_health(eng_target *t, eng_health *out, const json_t *objects, berth_error **err)
{
    BERTH_ARG_CHECK(t && t->health && out);
    return t->health(t, out, objects, err);
}

void eng_target_free(eng_target *t)
{
    if (t && t->free)
        t->free(t);
}

int eng_target_set_scope(eng_target *t, const eng_target_scope *s, berth_error **err)
{
    BERTH_ARG_CHECK(t && s);
    return t->scope ? t->scope(t, s, err) : 0;
}
