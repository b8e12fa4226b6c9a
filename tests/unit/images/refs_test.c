/*
 * Unit tests for images/refs.c: every `image:` key at any depth of built objects, strings and
 * image-volume references, empty values skipped, each reference once with the objects naming
 * it, sorted bytewise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "images/refs.h"

static void add_json(img_refs *acc, const char *text)
{
    json_error_t je;
    json_t *obj = json_loads(text, 0, &je);
    if (!obj)
        fail_msg("bad fixture json: %s", je.text);
    assert_int_equal(img_refs_add_object(acc, obj, NULL), 0);
    json_decref(obj);
}

static void pod_specs_templates_and_cronjobs(void **state)
{
    img_refs acc = {NULL, 0, 0};
    (void)state;
    add_json(&acc,
             "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},"
             "\"spec\":{\"template\":{\"spec\":{"
             "\"initContainers\":[{\"name\":\"i\",\"image\":\"reg/init:1\"}],"
             "\"containers\":[{\"name\":\"c\",\"image\":\"nginx:1.25\"}],"
             "\"volumes\":[{\"name\":\"m\",\"image\":{\"reference\":\"reg/models:v7\"}}]}}}}");
    add_json(&acc, "{\"kind\":\"CronJob\",\"metadata\":{\"name\":\"r\"},\"spec\":{\"jobTemplate\":"
                   "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"image\":\"nginx:1.25\"}],"
                   "\"ephemeralContainers\":[{\"image\":\"alpine\"}]}}}}}}");
    img_refs_sort(&acc);
    assert_int_equal(acc.n, 4);
    assert_string_equal(acc.v[0].image, "alpine");
    assert_string_equal(acc.v[1].image, "nginx:1.25");
    assert_string_equal(acc.v[2].image, "reg/init:1");
    assert_string_equal(acc.v[3].image, "reg/models:v7");
    assert_int_equal(acc.v[1].n_objects, 2);
    assert_string_equal(acc.v[1].objects[0], "Deployment/shop/web");
    assert_string_equal(acc.v[1].objects[1], "CronJob/r");
    assert_int_equal(acc.v[0].n_objects, 1);
    assert_string_equal(acc.v[0].objects[0], "CronJob/r");
    img_refs_dispose(&acc);
}

static void any_depth_and_only_usable_values(void **state)
{
    img_refs acc = {NULL, 0, 0};
    (void)state;
    /* custom resources, lists of lists; empty strings, numbers, nulls and objects without a
     * string reference are not images; a key merely containing "image" is not one either */
    add_json(&acc, "{\"kind\":\"Widget\",\"metadata\":{\"name\":\"g\",\"namespace\":\"x\"},"
                   "\"spec\":{\"a\":[[{\"b\":{\"image\":\"quay.io/r:0.9\"}}]],"
                   "\"image\":\"\",\"c\":{\"image\":7},\"d\":{\"image\":null},"
                   "\"e\":{\"image\":{\"repository\":\"r\",\"tag\":\"1\"}},"
                   "\"imageName\":\"not/an:image\",\"f\":{\"image\":\"quay.io/r:0.9\"}}}");
    assert_int_equal(acc.n, 1);
    assert_string_equal(acc.v[0].image, "quay.io/r:0.9");
    assert_int_equal(acc.v[0].n_objects, 1); /* twice in one object: listed once */
    assert_string_equal(acc.v[0].objects[0], "Widget/x/g");
    img_refs_dispose(&acc);
}

static void no_images_is_an_empty_set(void **state)
{
    img_refs acc = {NULL, 0, 0};
    berth_image_ref *v = NULL;
    size_t n = 5;
    (void)state;
    add_json(&acc, "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"},\"data\":{\"k\":\"v\"}}");
    add_json(&acc, "[1, \"image\", {\"x\": []}]");
    img_refs_sort(&acc);
    img_refs_take(&v, &n, &acc);
    assert_int_equal(n, 0);
    assert_int_equal(acc.n, 0);
    berth_image_refs_free(v, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pod_specs_templates_and_cronjobs),
        cmocka_unit_test(any_depth_and_only_usable_values),
        cmocka_unit_test(no_images_is_an_empty_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
