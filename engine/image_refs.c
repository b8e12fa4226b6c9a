/*
 * engine/image_refs.c: berth_images_list_refs, the build stage (engine/build.h) joined with the
 * image scanner (images/refs.h): a deployment directory in, the images it runs out.
 */
#include <berth/image_refs.h>

#include "core/core.h"
#include "engine/build.h"
#include "images/refs.h"

int berth_images_list_refs(berth_image_ref **out, size_t *n_out, const char *root_dir,
                           const char *path, berth_error **err)
{
    json_t *objects = NULL, *obj;
    img_refs acc = {NULL, 0, 0};
    size_t i;
    int rc;

    BERTH_ARG_CHECK(out && n_out && root_dir);
    *out = NULL;
    *n_out = 0;
    if ((rc = eng_build(&objects, root_dir, path ? path : ".", NULL, err)) < 0)
        return rc;
    json_array_foreach(objects, i, obj)
    {
        if ((rc = img_refs_add_object(&acc, obj, err)) < 0)
            goto out;
    }
    img_refs_sort(&acc);
    img_refs_take(out, n_out, &acc);
out:
    img_refs_dispose(&acc);
    json_decref(objects);
    return rc;
}
