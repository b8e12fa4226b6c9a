/*
 * Unit tests for oci/auth.c and oci/credhelper.c: WWW-Authenticate parsing, token replies,
 * scope sets and credential lookup (docker config.json and credential helpers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "oci/auth.h"

static void assert_error(berth_error *err, int code, const char *word)
{
    assert_non_null(err);
    assert_int_equal(berth_error_code(err), code);
    char *text = berth_error_text(err);
    assert_non_null(text);
    if (!strstr(text, word))
        fail_msg("error \"%s\" does not mention \"%s\"", text, word);
    free(text);
}

/* ------------------------------------------------------------------ WWW-Authenticate */

static void wwwauth_parses_bearer_params(void **state)
{
    (void)state;
    oci_challenge *ch = NULL;
    size_t n = 0;
    berth_error *err = NULL;
    assert_int_equal(oci_wwwauth_parse(&ch, &n,
                                       "Bearer realm=\"https://auth.docker.io/token\","
                                       "service=\"registry.docker.io\","
                                       "scope=\"repository:library/alpine:pull\"",
                                       &err),
                     0);
    assert_null(err);
    assert_int_equal(n, 1);
    assert_string_equal(ch[0].scheme, "bearer");
    assert_string_equal(oci_challenge_param(&ch[0], "realm"), "https://auth.docker.io/token");
    assert_string_equal(oci_challenge_param(&ch[0], "SERVICE"), "registry.docker.io");
    assert_string_equal(oci_challenge_param(&ch[0], "scope"), "repository:library/alpine:pull");
    assert_null(oci_challenge_param(&ch[0], "error"));
    oci_challenges_free(ch, n);
}

static void wwwauth_splits_several_challenges(void **state)
{
    (void)state;
    oci_challenge *ch = NULL;
    size_t n = 0;
    /* the RFC 7235 section 4.1 example */
    assert_int_equal(oci_wwwauth_parse(&ch, &n,
                                       "Newauth realm=\"apps\", type=1,\r\n"
                                       "  title=\"Login to \\\"apps\\\"\", Basic realm=\"simple\"",
                                       NULL),
                     BERTH_EINVAL); /* a raw CR LF is not part of a field value */
    assert_int_equal(oci_wwwauth_parse(&ch, &n,
                                       "Newauth realm=\"apps\", type=1, "
                                       "title=\"Login to \\\"apps\\\"\", Basic realm=\"simple\"",
                                       NULL),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(ch[0].scheme, "newauth");
    assert_int_equal(ch[0].params_len, 3);
    assert_string_equal(oci_challenge_param(&ch[0], "type"), "1");
    assert_string_equal(oci_challenge_param(&ch[0], "title"), "Login to \"apps\"");
    assert_string_equal(ch[1].scheme, "basic");
    assert_string_equal(oci_challenge_param(&ch[1], "realm"), "simple");
    oci_challenges_free(ch, n);
}

static void wwwauth_keeps_escaped_backslash_and_lowercases_scheme(void **state)
{
    (void)state;
    oci_challenge *ch = NULL;
    size_t n = 0;
    assert_int_equal(
        oci_wwwauth_parse(&ch, &n, "BEARER Realm=\"a\\\\b\\\"c\" , , service=svc", NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ch[0].scheme, "bearer");
    assert_string_equal(oci_challenge_param(&ch[0], "realm"), "a\\b\"c");
    assert_string_equal(oci_challenge_param(&ch[0], "service"), "svc");
    oci_challenges_free(ch, n);
}

static void wwwauth_reads_token68_and_bare_schemes(void **state)
{
    (void)state;
    oci_challenge *ch = NULL;
    size_t n = 0;
    assert_int_equal(oci_wwwauth_parse(&ch, &n, "Negotiate YIIBeAYGKwYB+/==, Basic", NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ch[0].scheme, "negotiate");
    assert_string_equal(ch[0].token68, "YIIBeAYGKwYB+/==");
    assert_int_equal(ch[0].params_len, 0);
    assert_string_equal(ch[1].scheme, "basic");
    assert_null(ch[1].token68);
    oci_challenges_free(ch, n);
}

static void wwwauth_rejects_malformed_headers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                                          /* nothing */
        "   ,  ",                                    /* only separators */
        "=realm",                                    /* no scheme */
        "Bearer realm=\"unterminated",               /* open quote */
        "Bearer realm=\"x\", service=, scope=\"y\"", /* empty value */
        "Bearer realm=\"x\\",                        /* escape at the end */
        "Bearer realm=\"a\"\"b\"",                   /* junk after a quoted string */
        "Basic=realm",                               /* no space after the scheme */
        "Bearer realm=@",                            /* not a token */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        oci_challenge dummy;
        oci_challenge *ch = &dummy; /* must be reset to NULL */
        size_t n = 99;
        berth_error *err = NULL;
        if (oci_wwwauth_parse(&ch, &n, bad[i], &err) != BERTH_EINVAL)
            fail_msg("accepted malformed header \"%s\"", bad[i]);
        assert_null(ch);
        assert_int_equal(n, 0);
        assert_error(err, BERTH_EINVAL, "malformed WWW-Authenticate");
        berth_error_free(err);
    }
}

/* ------------------------------------------------------------------ token replies */

static void token_prefers_access_token(void **state)
{
    (void)state;
    oci_token t;
    const char *r = "{\"token\":\"t1\",\"access_token\":\"a1\",\"expires_in\":300}";
    assert_int_equal(oci_token_parse(&t, r, strlen(r), 1000000, NULL), 0);
    assert_string_equal(t.token, "a1");
    assert_int_equal(t.expires_in_s, 300);
    assert_int_equal(t.expires_at, 1000000 + 300000);
    oci_token_dispose(&t);
    assert_null(t.token);
}

static void token_expiry_defaults_to_60_and_never_less(void **state)
{
    (void)state;
    oci_token t;
    const char *none = "{\"token\":\"abc\"}";
    const char *short_ = "{\"token\":\"abc\",\"expires_in\":5}";
    assert_int_equal(oci_token_parse(&t, none, strlen(none), 0, NULL), 0);
    assert_string_equal(t.token, "abc");
    assert_int_equal(t.expires_in_s, 60);
    oci_token_dispose(&t);
    assert_int_equal(oci_token_parse(&t, short_, strlen(short_), 0, NULL), 0);
    assert_int_equal(t.expires_in_s, 60);
    assert_int_equal(t.expires_at, 60000);
    oci_token_dispose(&t);
}

static void token_counts_expiry_from_issued_at(void **state)
{
    (void)state;
    oci_token t;
    /* 2023-11-14T22:13:20Z is 1700000000 */
    const char *r = "{\"token\":\"abc\",\"expires_in\":300,\"issued_at\":\"2023-11-14T22:13:20Z\","
                    "\"refresh_token\":\"r\"}";
    berth_unix_ms now = 1700000100000LL; /* 100 s later */
    assert_int_equal(oci_token_parse(&t, r, strlen(r), now, NULL), 0);
    assert_int_equal(t.expires_at, 1700000300000LL);
    assert_string_equal(t.refresh_token, "r");
    oci_token_dispose(&t);
    /* an issued_at in the future (clock skew) counts from now */
    const char *f = "{\"token\":\"abc\",\"expires_in\":300,\"issued_at\":\"2999-01-01T00:00:00Z\"}";
    assert_int_equal(oci_token_parse(&t, f, strlen(f), now, NULL), 0);
    assert_int_equal(t.expires_at, now + 300000);
    oci_token_dispose(&t);
}

static void token_rejects_replies_without_token(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"expires_in\":300}", "{\"token\":\"\"}",         "[]", "not json",
        "{\"token\":7}",        "{\"token\":\"a\\u0000b\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        oci_token t;
        berth_error *err = NULL;
        assert_int_equal(oci_token_parse(&t, bad[i], strlen(bad[i]), 0, &err), BERTH_EINVAL);
        assert_null(t.token);
        assert_error(err, BERTH_EINVAL, "token");
        berth_error_free(err);
    }
}

static void token_rejects_replies_over_64k(void **state)
{
    (void)state;
    size_t len = OCI_TOKEN_REPLY_MAX + 100;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    memcpy(big, "{\"token\":\"x\"}", 13);
    oci_token t;
    berth_error *err = NULL;
    assert_int_equal(oci_token_parse(&t, big, len, 0, &err), BERTH_EINVAL);
    assert_error(err, BERTH_EINVAL, "larger than");
    berth_error_free(err);
    /* the same reply under the ceiling is fine */
    assert_int_equal(oci_token_parse(&t, big, OCI_TOKEN_REPLY_MAX, 0, NULL), 0);
    oci_token_dispose(&t);
    free(big);
}

/* ------------------------------------------------------------------ scopes */

static void scopes_group_actions_per_repository(void **state)
{
    (void)state;
    oci_scopes s = {0}, want = {0};
    char **g = NULL;
    size_t n = 0;
    assert_int_equal(oci_scopes_add_for_method(&s, "app", "PUT"), 0);
    assert_int_equal(oci_scopes_add_for_method(&s, "base", "GET"), 0);
    assert_int_equal(oci_scopes_add(&s, "repository:reg:5000/x:pull"), 0);
    assert_int_equal(oci_scopes_add(&s, "repository:app:pull"), 0); /* duplicate */
    assert_int_equal(s.n, 4);
    assert_int_equal(oci_scopes_grouped(&g, &n, &s), 0);
    assert_int_equal(n, 3);
    assert_string_equal(g[0], "repository:app:pull,push");
    assert_string_equal(g[1], "repository:base:pull");
    assert_string_equal(g[2], "repository:reg:5000/x:pull");
    for (size_t i = 0; i < n; i++)
        free(g[i]);
    free(g);
    assert_int_equal(oci_scopes_add_for_method(&want, "app", "HEAD"), 0);
    assert_true(oci_scopes_contains(&s, &want));
    assert_int_equal(oci_scopes_add_for_method(&want, "app", "DELETE"), 0);
    assert_false(oci_scopes_contains(&s, &want));
    oci_scopes_dispose(&s);
    oci_scopes_dispose(&want);
}

/* ------------------------------------------------------------------ credentials */

static void creds_string_is_basic_or_bearer_token(void **state)
{
    (void)state;
    oci_creds c;
    assert_int_equal(oci_creds_from_string(&c, "user:pa:ss", NULL), 0);
    assert_string_equal(c.username, "user");
    assert_string_equal(c.password, "pa:ss");
    assert_null(c.registry_token);
    oci_creds_dispose(&c);
    assert_int_equal(oci_creds_from_string(&c, "ghp_token123", NULL), 0);
    assert_null(c.username);
    assert_string_equal(c.registry_token, "ghp_token123");
    oci_creds_dispose(&c);
    assert_true(oci_creds_is_empty(&c));
}

typedef struct fixture {
    char *dir;
    char *config;
    char *old_path;
} fixture;

static void write_file(const char *path, const char *text, mode_t mode)
{
    berth_error *err = NULL;
    if (core_fs_write_atomic(path, text, strlen(text), mode, &err) < 0) {
        char *t = berth_error_text(err);
        fail_msg("writing %s: %s", path, t);
    }
}

static const char helper_script[] =
    "#!/bin/sh\n"
    "[ \"$1\" = get ] || exit 2\n"
    "read url\n"
    "case \"$url\" in\n"
    "  reg.helper.test) printf '{\"ServerURL\":\"%s\",\"Username\":\"helperuser\","
    "\"Secret\":\"helpersecret\"}' \"$url\" ;;\n"
    "  tok.helper.test) printf '{\"ServerURL\":\"%s\",\"Username\":\"<token>\","
    "\"Secret\":\"idtok\"}' \"$url\" ;;\n"
    "  https://index.docker.io/v1/) printf '{\"Username\":\"hub\",\"Secret\":\"hubpw\"}' ;;\n"
    "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
    "esac\n";

static const char failing_script[] = "#!/bin/sh\n"
                                     "echo 'boom: keychain locked' >&2\n"
                                     "exit 3\n";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    berth_error *err = NULL;
    assert_non_null(f);
    assert_int_equal(core_fs_mkdtemp(&f->dir, "/tmp", "berth-auth-test-", &err), 0);
    f->config = core_sprintf("%s/config.json", f->dir);
    char *h = core_sprintf("%s/docker-credential-berthtest", f->dir);
    char *fl = core_sprintf("%s/docker-credential-berthfail", f->dir);
    write_file(h, helper_script, 0755);
    write_file(fl, failing_script, 0755);
    core_free(h);
    core_free(fl);
    const char *p = getenv("PATH");
    f->old_path = core_strdup(p ? p : "/usr/bin:/bin");
    char *np = core_sprintf("%s:%s", f->dir, f->old_path);
    setenv("PATH", np, 1);
    core_free(np);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    setenv("PATH", f->old_path, 1);
    core_fs_remove_all(f->dir, NULL);
    core_free(f->dir);
    core_free(f->config);
    core_free(f->old_path);
    free(f);
    return 0;
}

static void creds_lookup_reads_auths_entries(void **state)
{
    fixture *f = *state;
    oci_creds c;
    /* dXNlcjpwYXNz = base64("user:pass") */
    write_file(f->config,
               "{\"auths\":{"
               "\"https://reg.example.com/v1/\":{\"auth\":\"dXNlcjpwYXNz\"},"
               "\"plain.example.com:5000\":{\"username\":\"u2\",\"password\":\"p2\"},"
               "\"oauth.example.com\":{\"identitytoken\":\"refresh-me\"},"
               "\"tok.example.com\":{\"registrytoken\":\"bearer-me\"},"
               "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnB3\"}"
               "}}",
               0600);
    assert_int_equal(oci_creds_lookup(&c, f->config, "reg.example.com", NULL), 0);
    assert_string_equal(c.username, "user");
    assert_string_equal(c.password, "pass");
    oci_creds_dispose(&c);
    assert_int_equal(oci_creds_lookup(&c, f->config, "plain.example.com:5000", NULL), 0);
    assert_string_equal(c.username, "u2");
    assert_string_equal(c.password, "p2");
    oci_creds_dispose(&c);
    assert_int_equal(oci_creds_lookup(&c, f->config, "oauth.example.com", NULL), 0);
    assert_string_equal(c.identity_token, "refresh-me");
    assert_null(c.password);
    oci_creds_dispose(&c);
    assert_int_equal(oci_creds_lookup(&c, f->config, "tok.example.com", NULL), 0);
    assert_string_equal(c.registry_token, "bearer-me");
    oci_creds_dispose(&c);
    /* Docker Hub's API host finds the index.docker.io key */
    assert_int_equal(oci_creds_lookup(&c, f->config, "registry-1.docker.io", NULL), 0);
    assert_string_equal(c.username, "hub");
    assert_string_equal(c.password, "hubpw");
    oci_creds_dispose(&c);
    /* another port is another registry */
    assert_int_equal(oci_creds_lookup(&c, f->config, "plain.example.com:5001", NULL), 0);
    assert_true(oci_creds_is_empty(&c));
}

static void creds_lookup_runs_cred_helpers(void **state)
{
    fixture *f = *state;
    oci_creds c;
    write_file(f->config,
               "{\"credHelpers\":{\"reg.helper.test\":\"berthtest\","
               "\"tok.helper.test\":\"berthtest\",\"none.helper.test\":\"berthtest\","
               "\"broken.helper.test\":\"berthfail\",\"missing.helper.test\":\"nosuchhelper\"},"
               "\"auths\":{\"reg.helper.test\":{\"auth\":\"dXNlcjpwYXNz\"}}}",
               0600);
    /* credHelpers wins over auths */
    assert_int_equal(oci_creds_lookup(&c, f->config, "reg.helper.test", NULL), 0);
    assert_string_equal(c.username, "helperuser");
    assert_string_equal(c.password, "helpersecret");
    oci_creds_dispose(&c);
    /* "<token>" means an identity token */
    assert_int_equal(oci_creds_lookup(&c, f->config, "tok.helper.test", NULL), 0);
    assert_null(c.username);
    assert_string_equal(c.identity_token, "idtok");
    oci_creds_dispose(&c);
    /* "credentials not found" is anonymous, not an error */
    assert_int_equal(oci_creds_lookup(&c, f->config, "none.helper.test", NULL), 0);
    assert_true(oci_creds_is_empty(&c));
    berth_error *err = NULL;
    assert_int_equal(oci_creds_lookup(&c, f->config, "broken.helper.test", &err), BERTH_EAUTH);
    assert_error(err, BERTH_EAUTH, "boom: keychain locked");
    berth_error_free(err);
    err = NULL;
    assert_int_equal(oci_creds_lookup(&c, f->config, "missing.helper.test", &err), BERTH_EAUTH);
    assert_error(err, BERTH_EAUTH, "docker-credential-nosuchhelper");
    berth_error_free(err);
}

static void creds_lookup_uses_creds_store_then_auths(void **state)
{
    fixture *f = *state;
    oci_creds c;
    write_file(f->config,
               "{\"credsStore\":\"berthtest\","
               "\"auths\":{\"other.test\":{\"username\":\"o\",\"password\":\"op\"}}}",
               0600);
    assert_int_equal(oci_creds_lookup(&c, f->config, "docker.io", NULL), 0);
    assert_string_equal(c.username, "hub");
    oci_creds_dispose(&c);
    /* the store does not know it: the auths entry is used */
    assert_int_equal(oci_creds_lookup(&c, f->config, "other.test", NULL), 0);
    assert_string_equal(c.username, "o");
    oci_creds_dispose(&c);
}

static void creds_lookup_follows_docker_config_env(void **state)
{
    fixture *f = *state;
    oci_creds c;
    char *old = getenv("DOCKER_CONFIG") ? core_strdup(getenv("DOCKER_CONFIG")) : NULL;
    write_file(f->config, "{\"auths\":{\"env.test\":{\"auth\":\"dXNlcjpwYXNz\"}}}", 0600);
    setenv("DOCKER_CONFIG", f->dir, 1);
    assert_int_equal(oci_creds_lookup(&c, NULL, "env.test", NULL), 0);
    assert_string_equal(c.username, "user");
    oci_creds_dispose(&c);
    if (old)
        setenv("DOCKER_CONFIG", old, 1);
    else
        unsetenv("DOCKER_CONFIG");
    core_free(old);
}

static void creds_lookup_reports_broken_config(void **state)
{
    fixture *f = *state;
    oci_creds c;
    berth_error *err = NULL;
    write_file(f->config, "{\"auths\":", 0600);
    assert_int_equal(oci_creds_lookup(&c, f->config, "x.test", &err), BERTH_EINVAL);
    assert_error(err, BERTH_EINVAL, "config.json");
    berth_error_free(err);
    err = NULL;
    write_file(f->config, "{\"auths\":{\"x.test\":{\"auth\":\"bm9jb2xvbg==\"}}}", 0600);
    assert_int_equal(oci_creds_lookup(&c, f->config, "x.test", &err), BERTH_EINVAL);
    assert_error(err, BERTH_EINVAL, "auth");
    berth_error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wwwauth_parses_bearer_params),
        cmocka_unit_test(wwwauth_splits_several_challenges),
        cmocka_unit_test(wwwauth_keeps_escaped_backslash_and_lowercases_scheme),
        cmocka_unit_test(wwwauth_reads_token68_and_bare_schemes),
        cmocka_unit_test(wwwauth_rejects_malformed_headers),
        cmocka_unit_test(token_prefers_access_token),
        cmocka_unit_test(token_expiry_defaults_to_60_and_never_less),
        cmocka_unit_test(token_counts_expiry_from_issued_at),
        cmocka_unit_test(token_rejects_replies_without_token),
        cmocka_unit_test(token_rejects_replies_over_64k),
        cmocka_unit_test(scopes_group_actions_per_repository),
        cmocka_unit_test(creds_string_is_basic_or_bearer_token),
        cmocka_unit_test_setup_teardown(creds_lookup_reads_auths_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(creds_lookup_runs_cred_helpers, setup, teardown),
        cmocka_unit_test_setup_teardown(creds_lookup_uses_creds_store_then_auths, setup, teardown),
        cmocka_unit_test_setup_teardown(creds_lookup_follows_docker_config_env, setup, teardown),
        cmocka_unit_test_setup_teardown(creds_lookup_reports_broken_config, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
