/*
 * engine/target_dir.c: the directory target. It renders each object as a YAML file under one
 * directory, which makes the engine usable (and testable end to end) without a cluster: a
 * config directory for an edge service, a static-pod directory, or just a place to look at.
 *
 * Design: the file layout is in engine/target.h. The content digest recorded in the inventory
 * is the sha256 of the exact bytes written, so drift detection is a hash of the file compared
 * with the record, and "would this change anything" is a hash of the rendering compared with
 * the file. The rendering is deterministic (keys in stored order, fixed quoting rules), so an
 * unchanged object never rewrites its file. YAML is emitted with libyaml directly, so this
 * file does not depend on the build stage's emitter. Every file name is derived from an
 * inventory id through one function, so prune can only ever reach files a plan could have
 * written, and only those it is given.
 */
#include "engine/target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "core/core.h"

#define MAX_FILE_BYTES (16u * 1024u * 1024u) /* larger files are drift by definition */
#define MAX_EMIT_DEPTH 200
#define CLUSTER_DIR "_cluster"

typedef struct dir_target {
    eng_target base; /* first: the vtable */
    char *dir;
} dir_target;

/* ---------------------------------------------------------------------------------------- */
/* YAML emission                                                                            */

static int write_to_buf(void *data, unsigned char *buffer, size_t size)
{
    return berth_buf_put(data, buffer, size) == 0;
}

static bool ascii_ieq(const char *a, const char *b)
{
    return strlen(a) == strlen(b) && core_strncasecmp(a, b, strlen(a)) == 0;
}

/*
 * Whether a string may be written plain. Conservative: anything that could read back as a
 * number, boolean, null or timestamp under YAML 1.2 or 1.1 (kubectl still reads 1.1) is
 * quoted; libyaml itself refuses plain for indicators and whitespace.
 */
static bool plain_ok(const char *s, size_t len)
{
    static const char *const words[] = {"true", "false", "yes",  "no", "on", "off",
                                        "y",    "n",     "null", "=",  "<<"};
    if (len == 0 || strlen(s) != len || strchr("0123456789-+.~", s[0]) || memchr(s, '\n', len))
        return false;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (ascii_ieq(s, words[i]))
            return false;
    return true;
}

static int emit_event(yaml_emitter_t *em, yaml_event_t *ev, int ok)
{
    if (!ok)
        return BERTH_ENOMEM;
    return yaml_emitter_emit(em, ev) ? 0 : BERTH_EINVAL;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, size_t len, bool typed)
{
    yaml_event_t ev;
    yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
    bool plain = typed || plain_ok(s, len);
    if (len > INT32_MAX)
        return BERTH_EINVAL;
    if (!plain)
        style = memchr(s, '\n', len) ? YAML_LITERAL_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    return emit_event(em, &ev,
                      yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)s,
                                                   (int)len, plain, !typed, style));
}

/* The shortest %g form of a double that reads back exactly, always with a '.' or exponent. */
static void format_real(char out[40], double d)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (!strpbrk(out, ".eEn"))
        strncat(out, ".0", 39 - strlen(out));
}

static int emit_value(yaml_emitter_t *em, const json_t *v, int depth);

static int emit_object(yaml_emitter_t *em, const json_t *v, int depth)
{
    yaml_event_t ev;
    const char *key;
    json_t *val;
    int rc = emit_event(
        em, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
    json_object_foreach((json_t *)(uintptr_t)v, key, val)
    {
        if (rc == 0)
            rc = emit_scalar(em, key, strlen(key), false);
        if (rc == 0)
            rc = emit_value(em, val, depth + 1);
    }
    return rc ? rc : emit_event(em, &ev, yaml_mapping_end_event_initialize(&ev));
}

static int emit_array(yaml_emitter_t *em, const json_t *v, int depth)
{
    yaml_event_t ev;
    int rc = emit_event(
        em, &ev,
        yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
    for (size_t i = 0; rc == 0 && i < json_array_size(v); i++)
        rc = emit_value(em, json_array_get(v, i), depth + 1);
    return rc ? rc : emit_event(em, &ev, yaml_sequence_end_event_initialize(&ev));
}

static int emit_value(yaml_emitter_t *em, const json_t *v, int depth)
{
    char num[40];
    if (depth > MAX_EMIT_DEPTH)
        return BERTH_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return emit_object(em, v, depth);
    case JSON_ARRAY:
        return emit_array(em, v, depth);
    case JSON_STRING:
        return emit_scalar(em, json_string_value(v), json_string_length(v), false);
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(em, num, strlen(num), true);
    case JSON_REAL:
        format_real(num, json_real_value(v));
        return emit_scalar(em, num, strlen(num), true);
    case JSON_TRUE:
        return emit_scalar(em, "true", 4, true);
    case JSON_FALSE:
        return emit_scalar(em, "false", 5, true);
    case JSON_NULL:
        return emit_scalar(em, "null", 4, true);
    }
    return BERTH_EINVAL;
}

static int emit_document(yaml_emitter_t *em, const json_t *obj)
{
    yaml_event_t ev;
    int rc;
    if ((rc = emit_event(em, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING))) ||
        (rc =
             emit_event(em, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1))) ||
        (rc = emit_value(em, obj, 0)) ||
        (rc = emit_event(em, &ev, yaml_document_end_event_initialize(&ev, 1))) ||
        (rc = emit_event(em, &ev, yaml_stream_end_event_initialize(&ev))))
        return rc;
    return yaml_emitter_flush(em) ? 0 : BERTH_EINVAL;
}

int eng_target_dir_emit(berth_buf *out, const json_t *obj, berth_error **err)
{
    yaml_emitter_t em;
    int rc;
    BERTH_ARG_CHECK(out && obj);
    if (!yaml_emitter_initialize(&em))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    yaml_emitter_set_output(&em, write_to_buf, out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_indent(&em, 2);
    rc = emit_document(&em, obj);
    if (rc < 0 && (em.error == YAML_MEMORY_ERROR || em.error == YAML_WRITER_ERROR))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory writing YAML");
    else if (rc == BERTH_ENOMEM)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory writing YAML");
    else if (rc < 0)
        rc = core_error_set(err, BERTH_EINVAL, "object can not be written as YAML: %s",
                            em.problem ? em.problem : "nested too deeply");
    yaml_emitter_delete(&em);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* file names                                                                               */

static bool name_byte_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

/* Percent-encode one path component: bytes outside [A-Za-z0-9.-] and a leading '.'. */
static int encode(berth_buf *b, const char *s)
{
    for (size_t i = 0; s[i]; i++) {
        int rc = name_byte_ok(s[i]) && !(i == 0 && s[i] == '.')
                     ? berth_buf_put(b, &s[i], 1)
                     : berth_buf_printf(b, "%%%02X", (unsigned)(unsigned char)s[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int encode_group(berth_buf *b, const char *group)
{
    if (!group[0])
        return berth_buf_puts(b, "core");
    if (strcmp(group, "core") == 0)
        return berth_buf_puts(b, "%63ore");
    return encode(b, group);
}

/* "<dir>/<ns>/<group>_<kind>_<name>.yaml" for a parsed id. */
static int id_path(char **out, const char *dir, const eng_objid *id, berth_error **err)
{
    berth_buf ns = BERTH_BUF_INIT, file = BERTH_BUF_INIT;
    int rc = id->ns[0] ? encode(&ns, id->ns) : berth_buf_puts(&ns, CLUSTER_DIR);
    if (rc == 0 && (rc = encode_group(&file, id->group)) == 0 &&
        (rc = berth_buf_puts(&file, "_")) == 0 && (rc = encode(&file, id->kind)) == 0 &&
        (rc = berth_buf_puts(&file, "_")) == 0 && (rc = encode(&file, id->name)) == 0)
        rc = berth_buf_puts(&file, ".yaml");
    if (rc < 0)
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    else if (ns.len > 255 || file.len > 255)
        rc = core_error_set(err, BERTH_EINVAL, "file name for %s \"%s\" is too long (%zu bytes)",
                            id->kind, id->name, file.len > ns.len ? file.len : ns.len);
    else if (!(*out = core_sprintf("%s/%s/%s", dir, ns.ptr, file.ptr)))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    berth_buf_dispose(&ns);
    berth_buf_dispose(&file);
    return rc;
}

int eng_target_dir_path(char **out, const char *dir, const char *id, berth_error **err)
{
    eng_objid oid;
    int rc;
    BERTH_ARG_CHECK(out && dir && id);
    if ((rc = eng_objid_parse(&oid, id, err)) < 0)
        return rc;
    rc = id_path(out, dir, &oid, err);
    eng_objid_dispose(&oid);
    return rc;
}

/* "Kind/ns/name" or "Kind/name". */
static char *subject_of(const eng_objid *id)
{
    return id->ns[0] ? core_sprintf("%s/%s/%s", id->kind, id->ns, id->name)
                     : core_sprintf("%s/%s", id->kind, id->name);
}

/* ---------------------------------------------------------------------------------------- */
/* plan                                                                                     */

/* The digest of the file at path, or exists=false. A file too big to be ours is "". */
static int file_digest(char out[72], bool *exists, const char *path, berth_error **err)
{
    berth_buf b = BERTH_BUF_INIT;
    struct stat st;
    int rc = 0;
    out[0] = '\0';
    *exists = stat(path, &st) == 0;
    if (!*exists)
        return errno == ENOENT || errno == ENOTDIR
                   ? 0
                   : core_error_errno(err, errno, "reading \"%s\"", path);
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_FILE_BYTES)
        return 0;
    if ((rc = core_fs_read_file(&b, path, MAX_FILE_BYTES, err)) == 0)
        core_sha256_digest(out, b.ptr, b.len);
    berth_buf_dispose(&b);
    return rc;
}

/* The YAML of obj and its digest. */
static int render(berth_buf *yaml, char digest[72], const json_t *obj, berth_error **err)
{
    int rc = eng_target_dir_emit(yaml, obj, err);
    if (rc == 0)
        core_sha256_digest(digest, yaml->ptr, yaml->len);
    return rc;
}

static bool plan_has(const eng_plan *p, const char *id)
{
    for (size_t i = 0; i < p->len; i++)
        if (strcmp(p->changes[i].id, id) == 0)
            return true;
    return false;
}

/* Decide create/update/unchanged and drift from the file and the inventory record. */
static void decide(eng_change_action *action, eng_drift *drift, bool exists, const char *have,
                   const char *want, const eng_inv_entry *rec)
{
    *drift = ENG_DRIFT_NONE;
    if (!exists) {
        *action = ENG_CHANGE_CREATE;
        *drift = rec ? ENG_DRIFT_MISSING : ENG_DRIFT_NONE;
    } else if (strcmp(have, want) == 0) {
        *action = ENG_CHANGE_UNCHANGED;
    } else {
        *action = ENG_CHANGE_UPDATE;
        if (rec && rec->digest && strcmp(rec->digest, have) != 0)
            *drift = ENG_DRIFT_MODIFIED;
    }
}

typedef struct planned {
    char *id, *version, *path, *subject;
    eng_objid oid;
    berth_buf yaml;
} planned;

static void planned_dispose(planned *p)
{
    core_free(p->id);
    core_free(p->version);
    core_free(p->path);
    core_free(p->subject);
    eng_objid_dispose(&p->oid);
    berth_buf_dispose(&p->yaml);
}

/* Identity, file name and rendering of the object at index. */
static int prepare(planned *p, const dir_target *t, const json_t *obj, size_t index,
                   char digest[72], berth_error **err)
{
    int rc;
    memset(p, 0, sizeof(*p));
    if ((rc = eng_object_id(&p->id, &p->version, obj, index, err)) < 0 ||
        (rc = eng_objid_parse(&p->oid, p->id, err)) < 0 ||
        (rc = id_path(&p->path, t->dir, &p->oid, err)) < 0)
        return rc;
    if (!(p->subject = subject_of(&p->oid)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = render(&p->yaml, digest, obj, err)) < 0)
        core_error_wrap(err, "object %zu (%s)", index, p->subject);
    return rc;
}

static int plan_object(const dir_target *t, eng_plan *out, json_t *obj, size_t index,
                       const eng_inventory *inv, berth_error **err)
{
    planned p;
    char want[72], have[72];
    bool exists;
    eng_change_action action;
    eng_drift drift;
    int rc;
    if ((rc = prepare(&p, t, obj, index, want, err)) < 0)
        goto out;
    if (plan_has(out, p.id)) {
        rc = core_error_set(err, BERTH_EINVAL, "object %zu (%s) appears twice", index, p.subject);
        goto out;
    }
    if ((rc = file_digest(have, &exists, p.path, err)) < 0)
        goto out;
    decide(&action, &drift, exists, have, want, eng_inventory_find(inv, p.id));
    rc = eng_plan_add(out, action, drift, p.id, p.version, p.subject, want, obj, err);
out:
    planned_dispose(&p);
    return rc;
}

static int plan_delete(eng_plan *out, const eng_inv_entry *e, berth_error **err)
{
    eng_objid oid;
    char *subject;
    int rc;
    if ((rc = eng_objid_parse(&oid, e->id, err)) < 0)
        return rc;
    if (!(subject = subject_of(&oid)))
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    else
        rc = eng_plan_add(out, ENG_CHANGE_DELETE, ENG_DRIFT_NONE, e->id, e->version, subject, NULL,
                          NULL, err);
    core_free(subject);
    eng_objid_dispose(&oid);
    return rc;
}

static int dir_plan(eng_target *base, eng_plan *out, const json_t *objects,
                    const eng_inventory *inv, berth_error **err)
{
    const dir_target *t = (const dir_target *)base;
    int rc = 0;
    eng_plan_init(out);
    if (!json_is_array(objects))
        return core_error_set(err, BERTH_EINVAL, "objects to plan are not a list");
    for (size_t i = 0; i < json_array_size(objects) && rc == 0; i++)
        rc = plan_object(t, out, json_array_get(objects, i), i, inv, err);
    for (size_t i = 0; inv && i < inv->len && rc == 0; i++)
        if (!plan_has(out, inv->entries[i].id))
            rc = plan_delete(out, &inv->entries[i], err);
    if (rc < 0)
        eng_plan_dispose(out);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* apply                                                                                    */

static int write_object(const dir_target *t, const eng_change *c, berth_error **err)
{
    planned p;
    char digest[72];
    const char *slash;
    char *nsdir = NULL;
    const char *kind = json_string_value(json_object_get(c->object, "kind"));
    int rc;
    if ((rc = prepare(&p, t, c->object, 0, digest, err)) < 0)
        goto out;
    if (strcmp(digest, c->digest) != 0) {
        rc = core_error_set(err, BERTH_EINVAL, "%s changed between plan and apply", c->subject);
        goto out;
    }
    slash = strrchr(p.path, '/');
    if (!(nsdir = core_strndup(p.path, (size_t)(slash - p.path)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = core_fs_mkdirs(nsdir, 0755, err)) == 0)
        rc = core_fs_write_atomic(p.path, p.yaml.ptr, p.yaml.len,
                                  kind && strcmp(kind, "Secret") == 0 ? 0600 : 0644, err);
out:
    if (rc < 0)
        core_error_wrap(err, "applying %s", c->subject);
    core_free(nsdir);
    planned_dispose(&p);
    return rc;
}

static int dir_apply(eng_target *base, eng_inventory *inv_out, const eng_plan *plan,
                     berth_error **err)
{
    const dir_target *t = (const dir_target *)base;
    int rc = 0;
    eng_inventory_init(inv_out);
    for (size_t i = 0; i < plan->len && rc == 0; i++) {
        const eng_change *c = &plan->changes[i];
        if (c->action == ENG_CHANGE_DELETE || c->action == ENG_CHANGE_SKIPPED ||
            c->action == ENG_CHANGE_UNKNOWN)
            continue;
        if (!c->object || !c->digest)
            rc = core_error_set(err, BERTH_EINVAL, "%s: plan entry has no object", c->subject);
        else if (c->action != ENG_CHANGE_UNCHANGED)
            rc = write_object(t, c, err);
        if (rc == 0)
            rc = eng_inventory_add(inv_out, c->id, c->version, c->digest, err);
    }
    if (rc < 0)
        eng_inventory_dispose(inv_out);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* prune                                                                                    */

/* Remove the file of one id; the namespace directory too once it is empty. */
static int remove_owned(const dir_target *t, const char *id, berth_error **err)
{
    char *path = NULL, *nsdir = NULL;
    const char *slash;
    int rc;
    if ((rc = eng_target_dir_path(&path, t->dir, id, err)) < 0)
        return rc;
    slash = strrchr(path, '/');
    if (!(nsdir = core_strndup(path, (size_t)(slash - path)))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    } else if (unlink(path) < 0 && errno != ENOENT && errno != ENOTDIR) {
        rc = core_error_errno(err, errno, "removing \"%s\"", path);
    } else if (core_fs_is_dir(nsdir) && (rc = core_fs_sync_dir(nsdir, err)) == 0 &&
               rmdir(nsdir) == 0) {
        rc = core_fs_sync_dir(t->dir, err);
    }
    core_free(nsdir);
    core_free(path);
    return rc;
}

/* Prune one entry into out; a failure's text goes to failures. Returns 0 or the failure's code. */
static int prune_one(const dir_target *t, eng_plan *out, const eng_inv_entry *e,
                     berth_buf *failures)
{
    berth_error *why = NULL;
    int r = remove_owned(t, e->id, &why), r2;
    char *text = r < 0 ? berth_error_text(why) : NULL;
    berth_error_free(why); /* its text goes into failures */
    if (r < 0 && (!text || berth_buf_printf(failures, "%s;", text) < 0))
        r = BERTH_ENOMEM;
    free(text);
    if (r == BERTH_ENOMEM || (r2 = plan_delete(out, e, NULL)) == BERTH_ENOMEM)
        return BERTH_ENOMEM;
    if (r2 == 0 && r < 0) /* a malformed id has no change entry: its text says why */
        out->changes[out->len - 1].action = ENG_CHANGE_UNKNOWN;
    return r;
}

static int dir_prune(eng_target *base, eng_plan *out, const eng_inventory *entries,
                     berth_error **err)
{
    const dir_target *t = (const dir_target *)base;
    berth_buf failures = BERTH_BUF_INIT;
    int rc = 0, first = 0;
    eng_plan_init(out);
    for (size_t i = 0; i < entries->len && rc == 0; i++) {
        int r = prune_one(t, out, &entries->entries[i], &failures);
        if (r == BERTH_ENOMEM)
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        else if (r < 0 && !first)
            first = r;
    }
    if (rc == 0 && first)
        rc = core_error_set(err, first, "delete failed, errors: %s", failures.ptr);
    berth_buf_dispose(&failures);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* health and lifecycle                                                                     */

static int dir_health(eng_target *base, eng_health *out, const json_t *objects, berth_error **err)
{
    (void)base;
    memset(out, 0, sizeof(*out));
    if (!json_is_array(objects))
        return core_error_set(err, BERTH_EINVAL, "objects to check are not a list");
    out->healthy = true; /* a written file is all there is to being ready */
    return 0;
}

static void dir_free(eng_target *base)
{
    dir_target *t = (dir_target *)base;
    core_free(t->dir);
    core_free(t);
}

int eng_target_dir_new(eng_target **out, const char *dir, berth_error **err)
{
    dir_target *t;
    int rc;
    BERTH_ARG_CHECK(out && dir && dir[0]);
    /* A crash mid-write leaves a dot temp file beside the object (dir/<ns>/file): sweep them. */
    if ((rc = core_fs_mkdirs(dir, 0755, err)) < 0 || (rc = core_fs_sweep_temps(dir, 1, err)) < 0) {
        core_error_wrap(err, "opening target directory \"%s\"", dir);
        return rc;
    }
    if (!(t = core_calloc(1, sizeof(*t))) || !(t->dir = core_strdup(dir))) {
        core_free(t);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    t->base.version = ENG_TARGET_VERSION;
    t->base.name = "dir";
    t->base.plan = dir_plan;
    t->base.apply = dir_apply;
    t->base.prune = dir_prune;
    t->base.health = dir_health;
    t->base.free = dir_free;
    *out = &t->base;
    return 0;
}
