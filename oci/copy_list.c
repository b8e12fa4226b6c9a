/*
 * oci/copy_list.c: berth_copy_list_run, mirroring many references in one run (issue 6): from
 * registries (or an archive/layout holding many named references) to a registry under a prefix,
 * or into one OCI archive/layout, and back; resumable after an interruption.
 *
 * Design: each reference is one oci_copy_graph call (oci/copy.c), so signatures, indexes and
 * verification behave exactly as in a single `berth copy`. An archive or layout side is opened
 * once for the whole run; registry sides are opened per reference (a store is one repository).
 * Names: a reference is canonicalised (registry/repository[:tag][@digest], "latest" when it has
 * neither) and that string is its name in an archive (org.opencontainers.image.ref.name); for a
 * registry destination HOST/PREFIX, the source's repository path goes under the prefix and the
 * source registry is dropped (two sources landing on one destination are refused up front).
 * Resume: a JSON journal (written atomically after each reference) records the references done
 * and the digest copied; a rerun skips them, and for the rest the copier skips blobs and child
 * manifests the destination already holds (HEAD), so nothing completed is sent twice. An
 * archive destination is assembled in a staging layout beside it ("FILE.berth-partial") that
 * survives an interruption, and is packed into FILE (temp + rename) only when every reference
 * succeeded; then the staging directory and the journal go. Single-threaded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <berth/copy.h>

#include "core/core.h"
#include "oci/store.h"

#define LIST_MAX_BYTES (4u * 1024 * 1024)
#define LIST_MAX_REFS 100000
#define JOURNAL_MAX_BYTES (64u * 1024 * 1024)
#define JOURNAL_SUFFIX ".berth-progress.json"
#define STAGE_SUFFIX ".berth-partial"

static int oom(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

/* ================================================================ names */

/* The canonical name of a parsed reference: "latest" when it has neither tag nor digest. */
static char *canonical_of(berth_oci_ref *r)
{
    if (!r->tag && !r->digest && berth_oci_ref_set(r, "latest", NULL) < 0)
        return NULL;
    return berth_oci_ref_string(r);
}

static const char *strip_scheme(const char *s)
{
    if (core_str_has_prefix(s, "oci://"))
        return s + 6;
    if (core_str_has_prefix(s, "docker://"))
        return s + 9;
    return s;
}

/* ================================================================ the list file */

typedef struct seen {
    char **canon; /* sorted canonical names, for duplicates */
    size_t n, cap;
} seen;

/* Insert name keeping canon sorted; *dup true when it was there already. */
static int seen_add(seen *s, const char *name, bool *dup)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->canon[mid], name);
        if (c == 0) {
            *dup = true;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *dup = false;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **v = core_realloc(s->canon, cap * sizeof(*v));
        if (!v)
            return BERTH_ENOMEM;
        s->canon = v;
        s->cap = cap;
    }
    char *copy = core_strdup(name);
    if (!copy)
        return BERTH_ENOMEM;
    memmove(&s->canon[lo + 1], &s->canon[lo], (s->n - lo) * sizeof(*s->canon));
    s->canon[lo] = copy;
    s->n++;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int berth_copy_list_parse(char ***refs_out, size_t *n_out, const void *data, size_t len,
                          const char *name, berth_error **err)
{
    const char *p = data, *end;
    char **v = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    seen dups = {NULL, 0, 0};
    int rc = 0;

    BERTH_ARG_CHECK(refs_out && n_out && (data || len == 0));
    *refs_out = NULL;
    *n_out = 0;
    if (!name)
        name = "copy list";
    if (len > LIST_MAX_BYTES)
        return core_error_set(err, BERTH_EINVAL, "%s is larger than %u bytes", name,
                              LIST_MAX_BYTES);
    if (len > 0 && memchr(p, '\0', len))
        return core_error_set(err, BERTH_EINVAL, "%s holds a NUL byte: not a text file", name);
    end = p + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *s = p, *e;
        berth_oci_ref ref = {0};
        char *text = NULL, *canon = NULL;
        bool dup = false;

        lineno++;
        p = nl ? nl + 1 : end;
        while (s < le && is_blank(*s))
            s++;
        e = s;
        while (e < le && *e != '#') /* a comment runs to the end of the line */
            e++;
        if (e < le && e > s && !is_blank(e[-1])) {
            rc = core_error_set(err, BERTH_EINVAL,
                                "%s:%zu: \"#\" must start a line or follow a blank", name, lineno);
            goto out;
        }
        while (e > s && is_blank(e[-1]))
            e--;
        if (e == s)
            continue;
        if (!(text = core_strndup(s, (size_t)(e - s)))) {
            rc = oom(err);
            goto out;
        }
        if ((rc = berth_oci_ref_parse(&ref, strip_scheme(text), err)) < 0) {
            core_error_wrap(err, "%s:%zu", name, lineno);
            core_free(text);
            goto out;
        }
        canon = canonical_of(&ref);
        berth_oci_ref_dispose(&ref);
        if (!canon || seen_add(&dups, canon, &dup) < 0) {
            core_free(canon);
            core_free(text);
            rc = oom(err);
            goto out;
        }
        core_free(canon);
        if (dup) {
            core_free(text);
            continue;
        }
        if (n == LIST_MAX_REFS) {
            core_free(text);
            rc = core_error_set(err, BERTH_EINVAL, "%s:%zu: more than %d references", name, lineno,
                                LIST_MAX_REFS);
            goto out;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = core_realloc(v, ncap * sizeof(*v));
            if (!grown) {
                core_free(text);
                rc = oom(err);
                goto out;
            }
            v = grown;
            cap = ncap;
        }
        /* kept as written (scheme dropped) for the user's eyes */
        memmove(text, strip_scheme(text), strlen(strip_scheme(text)) + 1);
        v[n++] = text;
    }
    *refs_out = v;
    *n_out = n;
    v = NULL;
out:
    if (v)
        berth_strv_free(v, n);
    berth_strv_free(dups.canon, dups.n);
    return rc;
}

int berth_copy_list_read(char ***refs_out, size_t *n_out, const char *path, berth_error **err)
{
    berth_buf buf = BERTH_BUF_INIT;
    int rc;

    BERTH_ARG_CHECK(refs_out && n_out && path);
    *refs_out = NULL;
    *n_out = 0;
    if ((rc = core_fs_read_file(&buf, path, LIST_MAX_BYTES, err)) < 0)
        return core_error_wrap(err, "reading copy list \"%s\"", path);
    rc = berth_copy_list_parse(refs_out, n_out, buf.ptr, buf.len, path, err);
    berth_buf_dispose(&buf);
    return rc;
}

/* ================================================================ the journal */

typedef struct journal {
    char *path;
    char *dest_id; /* what the journal is for: "FROM -> TO" */
    json_t *done;  /* object: canonical source name -> digest */
} journal;

static void journal_dispose(journal *j)
{
    core_free(j->path);
    core_free(j->dest_id);
    json_decref(j->done);
    memset(j, 0, sizeof(*j));
}

static int journal_load(journal *j, berth_error **err)
{
    berth_buf buf = BERTH_BUF_INIT;
    json_t *root = NULL, *done;
    const char *dest;
    int rc = 0;

    if (!core_fs_exists(j->path)) {
        if (!(j->done = json_object()))
            return oom(err);
        return 0;
    }
    if ((rc = core_fs_read_file(&buf, j->path, JOURNAL_MAX_BYTES, err)) < 0)
        return core_error_wrap(err, "reading progress file \"%s\"", j->path);
    root = json_loadb(buf.ptr ? buf.ptr : "", buf.len, 0, NULL);
    done = json_object_get(root, "done");
    dest = json_string_value(json_object_get(root, "destination"));
    if (!json_is_object(done) || !dest) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "progress file \"%s\" is not a berth copy journal (want "
                            "\"destination\" and \"done\"): remove it",
                            j->path);
        goto out;
    }
    if (strcmp(dest, j->dest_id) != 0) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "progress file \"%s\" belongs to a copy \"%s\", not \"%s\": remove it "
                            "or pass --state-file",
                            j->path, dest, j->dest_id);
        goto out;
    }
    j->done = json_incref(done);
out:
    json_decref(root);
    berth_buf_dispose(&buf);
    return rc;
}

static int journal_save(journal *j, berth_error **err)
{
    json_t *root =
        json_pack("{s:i, s:s, s:O}", "version", 1, "destination", j->dest_id, "done", j->done);
    char *text = NULL;
    int rc;

    if (!root || !(text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS))) {
        json_decref(root);
        return oom(err);
    }
    rc = core_fs_write_atomic(j->path, text, strlen(text), 0644, err);
    if (rc < 0)
        core_error_wrap(err, "writing progress file \"%s\"", j->path);
    free(text); /* jansson allocated it */
    json_decref(root);
    return rc;
}

/* ================================================================ the run */

typedef struct side {
    bool archive;  /* oci-archive:FILE */
    char *path;    /* FILE or DIR */
    oci_store *st; /* the store for the run */
} side;

static int side_parse(side *out, const char *loc, const char *what, berth_error **err)
{
    const char *rest;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (core_str_has_prefix(loc, "oci-archive:")) {
        out->archive = true;
        rest = loc + strlen("oci-archive:");
    } else if (core_str_has_prefix(loc, "oci-layout:")) {
        rest = loc + strlen("oci-layout:");
    } else {
        return core_error_set(err, BERTH_EINVAL,
                              "%s \"%s\": want oci-archive:FILE or oci-layout:DIR", what, loc);
    }
    if (!*rest || strchr(rest, ':'))
        return core_error_set(err, BERTH_EINVAL,
                              "%s \"%s\": want a path without \":TAG\" (each reference is "
                              "stored under its own name)",
                              what, loc);
    n = strlen(rest);
    while (n > 1 && rest[n - 1] == '/')
        n--;
    if (!(out->path = core_strndup(rest, n)))
        return oom(err);
    return 0;
}

static void side_dispose(side *s)
{
    oci_store_close(s->st);
    core_free(s->path);
    memset(s, 0, sizeof(*s));
}

typedef struct plan {
    char *canon;      /* canonical source name (the archive name) */
    const char *want; /* the name to look up in an archive/layout source (borrowed) */
    char *dest;       /* registry reference, or the archive name */
    char *dest_tag;   /* tag to put the root under (registry: the ref's; archive: canon) */
} plan;

/* Where canon goes under HOST[/PREFIX]. */
static int map_registry(plan *p, const char *to_registry, berth_error **err)
{
    berth_oci_ref src = {0}, dst = {0};
    char *text = NULL;
    size_t n = strlen(to_registry);
    int rc;

    while (n > 0 && to_registry[n - 1] == '/')
        n--;
    if ((rc = berth_oci_ref_parse(&src, p->canon, err)) < 0)
        return rc;
    if (!(text = core_sprintf("%.*s/%s%s%s%s%s", (int)n, strip_scheme(to_registry), src.repository,
                              src.tag ? ":" : "", src.tag ? src.tag : "", src.digest ? "@" : "",
                              src.digest ? src.digest : ""))) {
        rc = oom(err);
        goto out;
    }
    if ((rc = berth_oci_ref_parse(&dst, text, err)) < 0) {
        core_error_wrap(err, "destination \"%s\" of \"%s\" under \"%s\"", text, p->canon,
                        to_registry);
        goto out;
    }
    p->dest = berth_oci_ref_string(&dst);
    p->dest_tag = dst.tag ? core_strdup(dst.tag) : NULL;
    if (!p->dest || (dst.tag && !p->dest_tag))
        rc = oom(err);
out:
    core_free(text);
    berth_oci_ref_dispose(&src);
    berth_oci_ref_dispose(&dst);
    return rc;
}

static int cmp_plan_dest(const void *a, const void *b)
{
    const plan *x = *(const plan *const *)a, *y = *(const plan *const *)b;
    return strcmp(x->dest, y->dest);
}

/* Refuse two references that would land on one destination name. */
static int check_collisions(plan *plans, size_t n, berth_error **err)
{
    plan **v;
    int rc = 0;

    if (n < 2)
        return 0;
    if (!(v = core_calloc(n, sizeof(*v))))
        return oom(err);
    for (size_t i = 0; i < n; i++)
        v[i] = &plans[i];
    qsort(v, n, sizeof(*v), cmp_plan_dest);
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(v[i - 1]->dest, v[i]->dest) == 0)
            rc = core_error_set(err, BERTH_EINVAL,
                                "\"%s\" and \"%s\" would both be copied to \"%s\"", v[i - 1]->canon,
                                v[i]->canon, v[i]->dest);
    core_free(v);
    return rc;
}

static void plans_free(plan *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        core_free(p[i].canon);
        core_free(p[i].dest);
        core_free(p[i].dest_tag);
    }
    core_free(p);
}

void berth_copy_list_dispose(berth_copy_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        core_free(l->items[i].source);
        core_free(l->items[i].destination);
        berth_error_free(l->items[i].error);
    }
    core_free(l->items);
    core_free(l->state_file);
    memset(l, 0, sizeof(*l));
}

/* The names an archive/layout source holds (companion and fallback tags aside). */
static int source_names(char ***out, size_t *n_out, oci_store *st, berth_error **err)
{
    char **tags = NULL;
    size_t n = 0, k = 0;
    int rc;

    if ((rc = st->ops->list_tags(st, &tags, &n, err)) < 0)
        return core_error_wrap(err, "listing the names in %s", st->name);
    for (size_t i = 0; i < n; i++) {
        if (oci_store_is_companion_tag(tags[i])) {
            core_free(tags[i]);
            continue;
        }
        tags[k++] = tags[i];
    }
    *out = tags;
    *n_out = k;
    return 0;
}

/* Open the archive/layout destination: an archive is staged in FILE.berth-partial. */
static int open_dest_side(side *d, berth_error **err)
{
    char *stage = NULL, *tmp = NULL;
    int rc = 0;

    if (!d->archive)
        return oci_layout_open(&d->st, d->path, NULL, true, err);
    if (!(stage = core_sprintf("%s" STAGE_SUFFIX, d->path)) ||
        !(tmp = core_sprintf("%s" STAGE_SUFFIX ".new", d->path))) {
        rc = oom(err);
        goto out;
    }
    if (!core_fs_is_dir(stage) && core_fs_exists(d->path)) {
        /* extend the existing archive: unpack it next to it, then move it in place whole */
        if ((rc = core_fs_remove_all(tmp, err)) < 0 || (rc = core_fs_mkdirs(tmp, 0755, err)) < 0 ||
            (rc = oci_archive_extract(d->path, tmp, err)) < 0)
            goto out;
        if (rename(tmp, stage) != 0) {
            rc = core_error_errno(err, errno, "renaming \"%s\" to \"%s\"", tmp, stage);
            goto out;
        }
    }
    rc = oci_layout_open(&d->st, stage, NULL, true, err);
    if (rc == 0) {
        /* messages name the archive, not the staging directory */
        char *name = core_sprintf("oci-archive:%s", d->path);
        if (!name) {
            rc = oom(err);
            goto out;
        }
        core_free(d->st->name);
        d->st->name = name;
    }
out:
    core_free(stage);
    core_free(tmp);
    return rc;
}

static int finish_dest_side(side *d, berth_error **err)
{
    char *stage;
    int rc;

    if (!d->archive)
        return d->st->ops->commit(d->st, err);
    if (!(stage = core_sprintf("%s" STAGE_SUFFIX, d->path)))
        return oom(err);
    oci_store_close(d->st);
    d->st = NULL;
    if ((rc = oci_archive_pack(stage, d->path, err)) < 0)
        core_error_wrap(err, "writing oci archive \"%s\"", d->path);
    else
        rc = core_fs_remove_all(stage, err);
    core_free(stage);
    return rc;
}

static char *default_journal(const berth_copy_list_opts *o, const side *from, const side *to)
{
    if (o->state_file)
        return core_strdup(o->state_file);
    if (to->path)
        return core_sprintf("%s" JOURNAL_SUFFIX, to->path);
    if (o->list_file)
        return core_sprintf("%s" JOURNAL_SUFFIX, o->list_file);
    if (from->path)
        return core_sprintf("%s" JOURNAL_SUFFIX, from->path);
    return NULL;
}

/* Copy one planned reference; fills item. Returns < 0 only for a journal failure. */
static int copy_one(berth_copy_item *item, const plan *p, side *from, side *to, journal *j,
                    const berth_copy_list_opts *o)
{
    oci_store *src = from->st, *dst = to->st, *own_src = NULL, *own_dst = NULL;
    berth_error *e = NULL;
    char *loc = NULL;
    const char *digest = json_string_value(json_object_get(j->done, p->canon));
    int rc;

    if (digest) {
        item->status = BERTH_COPY_ITEM_RESUMED;
        snprintf(item->result.digest, sizeof(item->result.digest), "%s", digest);
        return 0;
    }
    if (!src) {
        if (!(loc = core_sprintf("oci://%s", p->canon))) {
            rc = oom(&e);
            goto out;
        }
        if ((rc = oci_location_open(&own_src, loc, false, o->copy.src_client, &e)) < 0)
            goto out;
        src = own_src;
        core_free(loc);
        loc = NULL;
    }
    if (!dst) {
        if (!(loc = core_sprintf("oci://%s", p->dest))) {
            rc = oom(&e);
            goto out;
        }
        if ((rc = oci_location_open(&own_dst, loc, true, o->copy.dst_client, &e)) < 0)
            goto out;
        dst = own_dst;
    }
    rc = oci_copy_graph(&item->result, src, from->st ? p->want : NULL, dst, p->dest_tag, false,
                        &o->copy, &e);
out:
    core_free(loc);
    oci_store_close(own_src);
    oci_store_close(own_dst);
    if (rc < 0) {
        core_error_wrap(&e, "copying \"%s\" to \"%s\"", item->source, item->destination);
        item->status = BERTH_COPY_ITEM_FAILED;
        item->error = e;
        return 0;
    }
    item->status = BERTH_COPY_ITEM_COPIED;
    if (json_object_set_new(j->done, p->canon, json_string(item->result.digest)) < 0)
        return BERTH_ENOMEM;
    return 1; /* the journal changed */
}

int berth_copy_list_run(berth_copy_list *out, char *const *refs, size_t n_refs,
                        const berth_copy_list_opts *opts, berth_error **err)
{
    side from, to;
    journal j;
    plan *plans = NULL;
    char **names = NULL;
    size_t n_names = 0, n = 0;
    int rc = 0;

    BERTH_ARG_CHECK(out && opts && (refs || n_refs == 0));
    memset(out, 0, sizeof(*out));
    memset(&from, 0, sizeof(from));
    memset(&to, 0, sizeof(to));
    memset(&j, 0, sizeof(j));
    if (!opts->to_registry == !opts->to) {
        rc = core_error_set(err, BERTH_EINVAL,
                            "give exactly one destination: a registry HOST[/PREFIX] or "
                            "oci-archive:FILE / oci-layout:DIR");
        goto out;
    }
    if (opts->from && (rc = side_parse(&from, opts->from, "source", err)) < 0)
        goto out;
    if (opts->to && (rc = side_parse(&to, opts->to, "destination", err)) < 0)
        goto out;
    if (!refs && !opts->from) {
        rc = core_error_set(err, BERTH_EINVAL, "no references: give a list or an archive source");
        goto out;
    }
    if (opts->from && opts->to) {
        rc =
            core_error_set(err, BERTH_EINVAL,
                           "copy from an archive or layout to a registry (--to-registry), or "
                           "from registries to an archive or layout, not from one file to another");
        goto out;
    }
    if (from.path) {
        rc = from.archive ? oci_archive_open(&from.st, from.path, NULL, false, err)
                          : oci_layout_open(&from.st, from.path, NULL, false, err);
        if (rc < 0)
            goto out;
        if (!refs) {
            if ((rc = source_names(&names, &n_names, from.st, err)) < 0)
                goto out;
            refs = names;
            n_refs = n_names;
        }
    }

    /* plan every reference before copying any, so a mapping problem costs nothing */
    if (n_refs > 0 && !(plans = core_calloc(n_refs, sizeof(*plans)))) {
        rc = oom(err);
        goto out;
    }
    for (n = 0; n < n_refs; n++) {
        berth_oci_ref r = {0};
        if ((rc = berth_oci_ref_parse(&r, strip_scheme(refs[n]), err)) < 0) {
            core_error_wrap(err, "reference %zu", n + 1);
            goto out;
        }
        plans[n].canon = canonical_of(&r);
        berth_oci_ref_dispose(&r);
        /* names read from the source are looked up as stored, listed ones by canonical name */
        plans[n].want = refs == names ? refs[n] : plans[n].canon;
        if (!plans[n].canon) {
            rc = oom(err);
            goto out;
        }
        if (opts->to_registry) {
            if ((rc = map_registry(&plans[n], opts->to_registry, err)) < 0)
                goto out;
        } else if (!(plans[n].dest = core_strdup(plans[n].canon)) ||
                   !(plans[n].dest_tag = core_strdup(plans[n].canon))) {
            rc = oom(err);
            goto out;
        }
    }
    if ((rc = check_collisions(plans, n, err)) < 0)
        goto out;

    if (!(j.dest_id = core_sprintf("%s -> %s", opts->from ? opts->from : "registries",
                                   opts->to ? opts->to : opts->to_registry))) {
        rc = oom(err);
        goto out;
    }
    if (!(j.path = default_journal(opts, &from, &to))) {
        rc = core_error_set(err, BERTH_EINVAL, "no place for the progress file: give --state-file");
        goto out;
    }
    if (!(out->state_file = core_strdup(j.path))) {
        rc = oom(err);
        goto out;
    }
    if ((rc = journal_load(&j, err)) < 0)
        goto out;
    if (to.path && (rc = open_dest_side(&to, err)) < 0)
        goto out;

    if (n > 0 && !(out->items = core_calloc(n, sizeof(*out->items)))) {
        rc = oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        berth_copy_item *it = &out->items[i];
        it->source = core_strdup(refs[i]);
        it->destination =
            to.path ? core_sprintf("%s:%s", opts->to, plans[i].dest) : core_strdup(plans[i].dest);
        out->n++;
        if (!it->source || !it->destination) {
            rc = oom(err);
            goto out;
        }
        if ((rc = copy_one(it, &plans[i], &from, &to, &j, opts)) < 0) {
            rc = oom(err);
            goto out;
        }
        if (rc > 0 && (rc = journal_save(&j, err)) < 0)
            goto out;
        rc = 0;
        if (it->status == BERTH_COPY_ITEM_COPIED)
            out->copied++;
        else if (it->status == BERTH_COPY_ITEM_RESUMED)
            out->resumed++;
        else
            out->failed++;
        if (opts->on_item)
            opts->on_item(opts->payload, it);
    }
    if (out->failed > 0)
        goto out; /* keep the journal (and an archive's staging directory) for the rerun */
    if (to.path && (rc = finish_dest_side(&to, err)) < 0)
        goto out;
    if (core_fs_exists(j.path) && unlink(j.path) != 0) {
        rc = core_error_errno(err, errno, "removing progress file \"%s\"", j.path);
        goto out;
    }
out:
    plans_free(plans, plans ? n_refs : 0); /* calloc'ed: unfilled entries are NULL */
    if (names)
        berth_strv_free(names, n_names);
    journal_dispose(&j);
    side_dispose(&from);
    side_dispose(&to);
    return rc;
}
