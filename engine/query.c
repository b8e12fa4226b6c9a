/*
 * engine/query.c: the readers behind `berth events` and `berth tree`: the events the
 * reconcilers appended to STATE/events.jsonl (and its rotated files) and the inventory of a
 * Kustomization (STATE/inventory/<ns>/<name>.json). Like berth_engine_status_list they take no
 * lock, so they work while `berth run` is running: events are whole lines (a torn last line is
 * skipped) and inventories are replaced atomically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <berth/engine.h>

#include "core/core.h"
#include "engine/internal.h"

#define EVENTS_ROTATED_MAX 16     /* events.jsonl.1 .. .16 are looked at */
#define EVENTS_LINE_MAX (1 << 20) /* longer lines are skipped */
#define INVENTORY_MAX (256 << 20) /* the inventory file size ceiling */

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

static void event_dispose(berth_engine_event *e)
{
    core_free(e->timestamp);
    core_free(e->severity);
    core_free(e->kind);
    core_free(e->ns);
    core_free(e->name);
    core_free(e->reason);
    core_free(e->message);
    core_free(e->json);
}

void berth_engine_events_free(berth_engine_event *ev, size_t n)
{
    if (!ev)
        return;
    for (size_t i = 0; i < n; i++)
        event_dispose(&ev[i]);
    core_free(ev);
}

static char *dup_str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return core_strdup(v ? v : "");
}

/* Parse one line into *e; 1 when it is an event that passes the filter, 0 to skip it. */
static int event_parse(berth_engine_event *e, const char *line, const char *kind, const char *name)
{
    json_error_t je;
    json_t *o = json_loads(line, 0, &je), *inv;
    const char *k, *n;
    int rc = 0;

    memset(e, 0, sizeof(*e));
    inv = o ? json_object_get(o, "involvedObject") : NULL;
    k = json_string_value(json_object_get(inv, "kind"));
    n = json_string_value(json_object_get(inv, "name"));
    if (!json_is_object(o) || !k || !n || (kind && !eq_nocase(k, kind)) ||
        (name && strcmp(n, name) != 0))
        goto out;
    e->timestamp = dup_str(o, "timestamp");
    e->severity = dup_str(o, "severity");
    e->kind = core_strdup(k);
    e->ns = dup_str(inv, "namespace");
    e->name = core_strdup(n);
    e->reason = dup_str(o, "reason");
    e->message = dup_str(o, "message");
    e->json = core_strdup(line);
    rc = e->timestamp && e->severity && e->kind && e->ns && e->name && e->reason && e->message &&
                 e->json
             ? 1
             : BERTH_ENOMEM;
    if (rc < 0)
        event_dispose(e);
out:
    json_decref(o);
    return rc;
}

static int read_events_file(berth_engine_event **v, size_t *n, size_t *cap, const char *path,
                            const char *kind, const char *name, berth_error **err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t len = 0;
    int rc = 0, c;

    if (!f)
        return 0;
    if (!(line = core_malloc(EVENTS_LINE_MAX + 1))) {
        fclose(f);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    while (rc == 0) {
        c = fgetc(f);
        if (c != EOF && c != '\n') {
            if (len < EVENTS_LINE_MAX)
                line[len] = (char)c;
            len++;
            continue;
        }
        if (c == '\n' && len > 0 && len <= EVENTS_LINE_MAX) { /* a torn last line has no '\n' */
            int r;
            line[len] = '\0';
            if (*n == *cap) {
                berth_engine_event *nv =
                    core_realloc(*v, (*cap = *cap ? *cap * 2 : 64) * sizeof(**v));
                if (!nv) {
                    rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
                    break;
                }
                *v = nv;
            }
            if ((r = event_parse(&(*v)[*n], line, kind, name)) < 0)
                rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            else if (r == 1)
                (*n)++;
        }
        len = 0;
        if (c == EOF)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = core_error_set(err, BERTH_EIO, "reading \"%s\" failed", path);
    fclose(f);
    core_free(line);
    return rc;
}

int berth_engine_events_list(berth_engine_event **out, size_t *n_out, const char *state_dir,
                             const char *kind, const char *name, berth_error **err)
{
    berth_engine_event *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    BERTH_ARG_CHECK(out && n_out && state_dir);
    *out = NULL;
    *n_out = 0;
    if (!core_fs_is_dir(state_dir))
        return core_error_set(err, BERTH_ENOTFOUND, "state directory \"%s\" does not exist",
                              state_dir);
    for (int i = EVENTS_ROTATED_MAX; i >= 0 && rc == 0; i--) {
        char *path = i ? core_sprintf("%s/events.jsonl.%d", state_dir, i)
                       : core_sprintf("%s/events.jsonl", state_dir);
        if (!path)
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        else
            rc = read_events_file(&v, &n, &cap, path, kind, name, err);
        core_free(path);
    }
    if (rc < 0) {
        berth_engine_events_free(v, n);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}

void berth_engine_objects_free(berth_engine_object *objs, size_t n)
{
    if (!objs)
        return;
    for (size_t i = 0; i < n; i++) {
        core_free(objs[i].group);
        core_free(objs[i].version);
        core_free(objs[i].kind);
        core_free(objs[i].ns);
        core_free(objs[i].name);
    }
    core_free(objs);
}

int berth_engine_inventory_list(berth_engine_object **out, size_t *n_out, const char *state_dir,
                                const char *ns, const char *name, berth_error **err)
{
    eng_inventory inv = ENG_INVENTORY_INIT;
    berth_engine_object *v = NULL;
    berth_buf buf = BERTH_BUF_INIT;
    json_t *j = NULL;
    json_error_t je;
    char *path = NULL;
    size_t n = 0;
    int rc = 0;

    BERTH_ARG_CHECK(out && n_out && state_dir && ns && name);
    *out = NULL;
    *n_out = 0;
    if (!ns[0] || !name[0] || strchr(ns, '/') || strchr(name, '/') || strcmp(ns, "..") == 0 ||
        strcmp(name, "..") == 0 || strcmp(ns, ".") == 0 || strcmp(name, ".") == 0)
        return core_error_set(err, BERTH_EINVAL, "Kustomization \"%s/%s\" is not a valid name", ns,
                              name);
    if (!(path = core_sprintf("%s/inventory/%s/%s.json", state_dir, ns, name)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (!core_fs_exists(path)) {
        rc = core_error_set(err, BERTH_ENOTFOUND,
                            "Kustomization \"%s/%s\" has no inventory in \"%s\"", ns, name,
                            state_dir);
        goto out;
    }
    if ((rc = core_fs_read_file(&buf, path, INVENTORY_MAX, err)) < 0)
        goto out;
    if (!(j = json_loadb(buf.ptr, buf.len, 0, &je))) {
        rc = core_error_set(err, BERTH_EINVAL, "inventory file \"%s\" is not JSON: %s", path,
                            je.text);
        goto out;
    }
    if ((rc = eng_inventory_from_json(&inv, j, path, err)) < 0)
        goto out;
    if (!(v = core_calloc(inv.len + 1, sizeof(*v)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    for (; n < inv.len; n++) {
        eng_objid id = {0};
        if ((rc = eng_objid_parse(&id, inv.entries[n].id, err)) < 0) {
            core_error_wrap(err, "inventory file \"%s\"", path);
            goto out;
        }
        v[n] = (berth_engine_object){.group = id.group,
                                     .kind = id.kind,
                                     .ns = id.ns,
                                     .name = id.name,
                                     .version = core_strdup(inv.entries[n].version)};
        if (!v[n].version) {
            n++;
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    if (rc < 0) {
        berth_engine_objects_free(v, n);
    } else {
        *out = v;
        *n_out = n;
    }
    eng_inventory_dispose(&inv);
    json_decref(j);
    berth_buf_dispose(&buf);
    core_free(path);
    return rc;
}
