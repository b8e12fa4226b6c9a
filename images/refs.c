/*
 * images/refs.c: the image references of built objects, for `berth images list-refs` and the
 * mirror lists of `berth copy --from-list`.
 *
 * Design: a recursive walk over each object (the YAML reader bounds the depth), keyed on the
 * field name `image` wherever it appears, not on known paths: pod specs, pod templates, CronJob
 * job templates, ephemeral containers and custom resources that carry images are all covered
 * without a table that would always lag behind. Linear search over the set: a deployment
 * directory names tens of images, not thousands. Not thread-safe per img_refs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "images/refs.h"

static int oom(berth_error **err)
{
    return core_error_set(err, BERTH_ENOMEM, "out of memory");
}

/* "Kind/namespace/name", "Kind/name", or "Kind" for an object without a name. */
static char *object_id(const json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    const char *name = json_string_value(json_object_get(md, "name"));

    if (!kind || !*kind)
        kind = "(no kind)";
    if (name && ns && *ns)
        return core_sprintf("%s/%s/%s", kind, ns, name);
    if (name)
        return core_sprintf("%s/%s", kind, name);
    return core_strdup(kind);
}

static int add_hit(img_refs *acc, const char *image, const char *id)
{
    berth_image_ref *r = NULL;
    char **grown;

    for (size_t i = 0; i < acc->n && !r; i++)
        if (strcmp(acc->v[i].image, image) == 0)
            r = &acc->v[i];
    if (!r) {
        if (acc->n == acc->cap) {
            size_t cap = acc->cap ? acc->cap * 2 : 16;
            berth_image_ref *v = core_realloc(acc->v, cap * sizeof(*v));
            if (!v)
                return BERTH_ENOMEM;
            acc->v = v;
            acc->cap = cap;
        }
        r = &acc->v[acc->n];
        memset(r, 0, sizeof(*r));
        if (!(r->image = core_strdup(image)))
            return BERTH_ENOMEM;
        acc->n++;
    }
    for (size_t i = 0; i < r->n_objects; i++)
        if (strcmp(r->objects[i], id) == 0)
            return 0;
    if (!(grown = core_realloc(r->objects, (r->n_objects + 1) * sizeof(*grown))))
        return BERTH_ENOMEM;
    r->objects = grown;
    if (!(r->objects[r->n_objects] = core_strdup(id)))
        return BERTH_ENOMEM;
    r->n_objects++;
    return 0;
}

/* The reference an `image` value holds, or NULL. */
static const char *image_value(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s && json_is_object(v))
        s = json_string_value(json_object_get(v, "reference"));
    return (s && *s) ? s : NULL;
}

static int walk(img_refs *acc, const json_t *node, const char *id)
{
    const char *key;
    json_t *v;
    size_t i;
    int rc;

    if (json_is_array(node)) {
        json_array_foreach(node, i, v)
        {
            if ((rc = walk(acc, v, id)) < 0)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(node))
        return 0;
    json_object_foreach((json_t *)(uintptr_t)node, key, v)
    {
        const char *img = strcmp(key, "image") == 0 ? image_value(v) : NULL;
        if (img && (rc = add_hit(acc, img, id)) < 0)
            return rc;
        if ((rc = walk(acc, v, id)) < 0)
            return rc;
    }
    return 0;
}

int img_refs_add_object(img_refs *acc, const json_t *obj, berth_error **err)
{
    char *id;
    int rc;

    BERTH_ARG_CHECK(acc && obj);
    if (!(id = object_id(obj)))
        return oom(err);
    rc = walk(acc, obj, id);
    core_free(id);
    return rc < 0 ? oom(err) : 0;
}

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const berth_image_ref *)a)->image, ((const berth_image_ref *)b)->image);
}

void img_refs_sort(img_refs *acc)
{
    if (acc->n > 1)
        qsort(acc->v, acc->n, sizeof(*acc->v), cmp_ref);
}

void img_refs_take(berth_image_ref **out, size_t *n_out, img_refs *acc)
{
    *out = acc->v;
    *n_out = acc->n;
    memset(acc, 0, sizeof(*acc));
}

void berth_image_refs_free(berth_image_ref *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        for (size_t j = 0; j < v[i].n_objects; j++)
            core_free(v[i].objects[j]);
        core_free(v[i].objects);
        core_free(v[i].image);
    }
    core_free(v);
}

void img_refs_dispose(img_refs *acc)
{
    if (!acc)
        return;
    berth_image_refs_free(acc->v, acc->n);
    memset(acc, 0, sizeof(*acc));
}
