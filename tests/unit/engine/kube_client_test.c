/* Unit tests for engine/kube_client.c against the Kubernetes API test server
 * (testdata/kubeapi/server.py, started here on a free port): REST mapping and its refresh for a
 * new CRD, Status errors, list, watch (events, resume, stop, 410 Expired). Skipped without
 * python3. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/core.h"
#include "engine/kube.h"

extern char **environ;

typedef struct fx {
    pid_t pid;
    char *dir;
    char *url;
    eng_kube *k;
} fx;

static int setup(void **state)
{
    fx *f = core_calloc(1, sizeof(*f));
    const char *td = getenv("BERTH_TESTDATA"), *tmp = getenv("TMPDIR");
    char *server, *portf, *args[16];
    berth_buf b = BERTH_BUF_INIT;
    eng_kube_config *c;
    int n = 0;
    assert_non_null(td);
    assert_int_equal(core_fs_mkdtemp(&f->dir, tmp ? tmp : "/tmp", "berth-kc-", NULL), 0);
    server = core_sprintf("%s/kubeapi/server.py", td);
    portf = core_sprintf("%s/port", f->dir);
    args[n++] = (char *)(uintptr_t) "python3";
    args[n++] = server;
    args[n++] = (char *)(uintptr_t) "--port-file";
    args[n++] = portf;
    args[n++] = (char *)(uintptr_t) "--no-controllers";
    args[n++] = (char *)(uintptr_t) "--crd-establish-delay-ms";
    args[n++] = (char *)(uintptr_t) "300";
    args[n] = NULL;
    if (posix_spawnp(&f->pid, "python3", NULL, NULL, args, environ) != 0) {
        core_free(server);
        core_free(portf);
        *state = f;
        skip();
    }
    for (int i = 0; i < 500 && !core_fs_exists(portf); i++)
        core_sleep_ms(20);
    assert_int_equal(core_fs_read_file(&b, portf, 64, NULL), 0);
    f->url = core_sprintf("http://127.0.0.1:%.*s", (int)strcspn(b.ptr, "\n"), b.ptr);
    berth_buf_dispose(&b);
    c = core_calloc(1, sizeof(*c));
    c->server = core_strdup(f->url);
    assert_int_equal(eng_kube_new(&f->k, c, NULL), 0);
    core_free(server);
    core_free(portf);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->pid > 0) {
        kill(f->pid, SIGTERM);
        waitpid(f->pid, NULL, 0);
    }
    eng_kube_free(f->k);
    if (f->dir)
        core_fs_remove_all(f->dir, NULL);
    core_free(f->dir);
    core_free(f->url);
    core_free(f);
    return 0;
}

static void post(eng_kube *k, const char *path, const char *body)
{
    eng_kube_resp r;
    assert_int_equal(eng_kube_do(k, &r, "POST", path, "application/json", body, strlen(body), NULL),
                     0);
    if (r.code != 201)
        print_error("POST %s: %ld %s\n", path, r.code, r.message ? r.message : "");
    assert_int_equal(r.code, 201);
    eng_kube_resp_dispose(&r);
}

static void test_map_and_status_errors(void **state)
{
    fx *f = *state;
    eng_kube_mapping m;
    eng_kube_resp r;
    berth_error *e = NULL;
    char *p, *msg;
    assert_int_equal(eng_kube_map(&m, f->k, "apps/v1", "Deployment", NULL), 0);
    assert_string_equal(m.resource, "deployments");
    assert_true(m.namespaced);
    p = eng_kube_path(&m, "apps", "web");
    assert_string_equal(p, "/apis/apps/v1/namespaces/apps/deployments/web");
    core_free(p);
    eng_kube_mapping_dispose(&m);
    assert_int_equal(eng_kube_map(&m, f->k, "v1", "Namespace", NULL), 0);
    assert_false(m.namespaced);
    p = eng_kube_path(&m, "ignored", "x");
    assert_string_equal(p, "/api/v1/namespaces/x");
    core_free(p);
    eng_kube_mapping_dispose(&m);
    assert_int_equal(eng_kube_map(&m, f->k, "example.org/v1", "Gizmo", &e), BERTH_ENOTFOUND);
    msg = berth_error_text(e);
    assert_string_equal(msg, "no matches for kind \"Gizmo\" in version \"example.org/v1\"");
    free(msg);
    berth_error_free(e);
    e = NULL;
    assert_int_equal(eng_kube_do(f->k, &r, "GET", "/api/v1/namespaces/default/configmaps/nope",
                                 NULL, NULL, 0, NULL),
                     0);
    assert_int_equal(r.code, 404);
    assert_string_equal(r.reason, "NotFound");
    assert_string_equal(r.message, "configmaps \"nope\" not found");
    assert_int_equal(eng_kube_resp_error(&e, &r, "ConfigMap/default/nope"), BERTH_ENOTFOUND);
    msg = berth_error_text(e);
    assert_string_equal(msg, "ConfigMap/default/nope: configmaps \"nope\" not found");
    free(msg);
    berth_error_free(e);
    eng_kube_resp_dispose(&r);
}

/* A CRD created after the first lookup is found once Established (the cache refreshes). */
static void test_discovery_refresh(void **state)
{
    fx *f = *state;
    eng_kube_mapping m;
    int rc = BERTH_ENOTFOUND;
    assert_int_equal(eng_kube_map(&m, f->k, "example.com/v1", "Widget", NULL), BERTH_ENOTFOUND);
    post(f->k, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
         "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
         "\"metadata\":{\"name\":\"widgets.example.com\"},\"spec\":{\"group\":\"example.com\","
         "\"scope\":\"Cluster\",\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\","
         "\"kind\":\"Widget\"},\"versions\":[{\"name\":\"v1\",\"served\":true,\"storage\":true,"
         "\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\","
         "\"x-kubernetes-preserve-unknown-fields\":true}}}]}}");
    for (int i = 0; i < 100 && rc == BERTH_ENOTFOUND; i++) {
        rc = eng_kube_map(&m, f->k, "example.com/v1", "Widget", NULL);
        if (rc == BERTH_ENOTFOUND)
            core_sleep_ms(50);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(m.resource, "widgets");
    assert_false(m.namespaced);
    eng_kube_mapping_dispose(&m);
}

typedef struct seen {
    char names[8][64];
    char types[8][16];
    int n;
    int stop_after;
} seen;

static int on_event(void *payload, const char *type, const json_t *obj)
{
    seen *s = payload;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name ? name : "");
        snprintf(s->types[s->n], sizeof(s->types[0]), "%s", type);
    }
    s->n++;
    return s->n >= s->stop_after ? 1 : 0;
}

static void test_list_and_watch(void **state)
{
    fx *f = *state;
    const char *cms = "/api/v1/namespaces/default/configmaps";
    json_t *items = NULL;
    char *rv = NULL, *old_rv;
    seen s = {.stop_after = 2};
    berth_error *e = NULL;
    eng_kube_resp r;
    post(f->k, cms,
         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
         "\"labels\":{\"team\":\"x\"}}}");
    post(f->k, cms, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"}}");
    assert_int_equal(eng_kube_list(&items, &rv, f->k, cms, "team=x", NULL), 0);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(items, 0), "metadata"), "name")),
                        "a");
    assert_true(rv && rv[0]);
    json_decref(items);
    old_rv = core_strdup(rv);
    /* two changes after the list: the watch from its resourceVersion sees exactly them */
    post(f->k, cms, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"}}");
    assert_int_equal(eng_kube_do(f->k, &r, "DELETE", "/api/v1/namespaces/default/configmaps/b",
                                 NULL, NULL, 0, NULL),
                     0);
    assert_int_equal(r.code, 200);
    eng_kube_resp_dispose(&r);
    assert_int_equal(eng_kube_watch(f->k, cms, NULL, &rv, 5, on_event, &s, NULL), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.types[0], "ADDED");
    assert_string_equal(s.names[0], "c");
    assert_string_equal(s.types[1], "DELETED");
    assert_string_equal(s.names[1], "b");
    assert_string_not_equal(rv, old_rv); /* resumes after the last event */
    /* resume: nothing new, the stream ends at its timeout with no event */
    s.n = 0;
    assert_int_equal(eng_kube_watch(f->k, cms, NULL, &rv, 1, on_event, &s, NULL), 0);
    assert_int_equal(s.n, 0);
    /* a resourceVersion the server dropped: 410 Expired is BERTH_ECONFLICT (relist) */
    assert_int_equal(eng_kube_do(f->k, &r, "POST", "/_kubeapi/compact", NULL, NULL, 0, NULL), 0);
    assert_true(r.code >= 200 && r.code < 300);
    eng_kube_resp_dispose(&r);
    assert_int_equal(eng_kube_watch(f->k, cms, NULL, &old_rv, 5, on_event, &s, &e),
                     BERTH_ECONFLICT);
    {
        char *t = berth_error_text(e);
        assert_non_null(strstr(t, "too old resource version"));
        free(t);
    }
    berth_error_free(e);
    core_free(old_rv);
    core_free(rv);
}

typedef struct later {
    atomic_int flag;
    int64_t set_at_ms;
    pthread_t th;
} later;

static void *set_later(void *arg)
{
    later *l = arg;
    core_sleep_ms(350);
    l->set_at_ms = core_mono_now();
    l->flag = 1;
    return NULL;
}

static int count_item(void *payload, json_t *o)
{
    (void)o;
    (*(int *)payload)++;
    return 0;
}

/* A long watch with no events ends soon after the client's cancel flag is set from another
 * thread, with BERTH_ECANCELED; a list goes item by item through eng_kube_list_each. */
static void test_watch_cancel_and_list_each(void **state)
{
    fx *f = *state;
    const char *cms = "/api/v1/namespaces/default/configmaps";
    char *rv = NULL;
    seen s = {.stop_after = 100};
    later l = {.flag = 0};
    berth_error *e = NULL;
    int n = 0;
    int64_t took;
    post(f->k, cms, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}}");
    post(f->k, cms, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\"}}");
    assert_int_equal(eng_kube_list_each(&rv, f->k, cms, NULL, count_item, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_true(rv && rv[0]);
    eng_kube_set_cancel(f->k, &l.flag);
    assert_int_equal(pthread_create(&l.th, NULL, set_later, &l), 0);
    assert_int_equal(eng_kube_watch(f->k, cms, NULL, &rv, 600, on_event, &s, &e), BERTH_ECANCELED);
    took = core_mono_now() - l.set_at_ms;
    pthread_join(l.th, NULL);
    print_message("the watch ended %lld ms after the cancel flag\n", (long long)took);
    assert_true(took >= 0 && took <= 300);
    assert_int_equal(s.n, 0);
    {
        char *t = berth_error_text(e);
        assert_non_null(strstr(t, "cancelled"));
        free(t);
    }
    berth_error_free(e);
    e = NULL;
    /* still set: the next request ends at once */
    core_free(rv);
    assert_int_equal(eng_kube_list_each(&rv, f->k, cms, NULL, count_item, &n, &e), BERTH_ECANCELED);
    berth_error_free(e);
    eng_kube_set_cancel(f->k, NULL);
    core_free(rv);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_map_and_status_errors),
        T(test_discovery_refresh),
        T(test_list_and_watch),
        T(test_watch_cancel_and_list_each),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
