/* Unit tests for oci/ref.c: reference parsing, tags, digests, string round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <berth/oci.h>

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D128 D64 D64
#define SHA "sha256:" D64

typedef struct ref_case {
    const char *text;
    int code; /* 0: valid */
    /* valid: the expected fields (NULL = field must be NULL) */
    const char *registry, *api_host, *repository, *tag, *digest;
    /* invalid: a word the message must contain */
    const char *word;
} ref_case;

#define OK(t, reg, api, repo, tag, dig)                                                            \
    {                                                                                              \
        t, 0, reg, api, repo, tag, dig, NULL                                                       \
    }
#define BAD(t, w)                                                                                  \
    {                                                                                              \
        t, BERTH_EINVAL, NULL, NULL, NULL, NULL, NULL, w                                           \
    }
#define HUB(t, repo, tag, dig)                                                                     \
    {                                                                                              \
        t, 0, "docker.io", "registry-1.docker.io", repo, tag, dig, NULL                            \
    }

static const ref_case cases[] = {
    /* Docker Hub normalisation */
    HUB("alpine", "library/alpine", NULL, NULL),
    HUB("alpine:3.19", "library/alpine", "3.19", NULL),
    HUB("org/app:v1", "org/app", "v1", NULL),
    HUB("docker.io/alpine", "library/alpine", NULL, NULL),
    HUB("index.docker.io/library/alpine:edge", "library/alpine", "edge", NULL),
    HUB("registry-1.docker.io/org/app", "org/app", NULL, NULL),
    HUB("docker://alpine:latest", "library/alpine", "latest", NULL),
    /* explicit hosts */
    OK("localhost/app", "localhost", "localhost", "app", NULL, NULL),
    OK("localhost:5000/a/b:t", "localhost:5000", "localhost:5000", "a/b", "t", NULL),
    OK("127.0.0.1:5000/x@" SHA, "127.0.0.1:5000", "127.0.0.1:5000", "x", NULL, SHA),
    OK("[::1]:5000/x:y", "[::1]:5000", "[::1]:5000", "x", "y", NULL),
    OK("[fe80::1]/x", "[fe80::1]", "[fe80::1]", "x", NULL, NULL),
    OK("oci://ghcr.io/org/repo:1.0", "ghcr.io", "ghcr.io", "org/repo", "1.0", NULL),
    OK("ghcr.io/org/repo:1.0@" SHA, "ghcr.io", "ghcr.io", "org/repo", "1.0", SHA),
    OK("my-reg.example.com:443/a.b/c_d/e__f/g--h:_tag-1.x", "my-reg.example.com:443",
       "my-reg.example.com:443", "a.b/c_d/e__f/g--h", "_tag-1.x", NULL),
    OK("ghcr.io/org/repo@sha512:" D128, "ghcr.io", "ghcr.io", "org/repo", NULL, "sha512:" D128),
    OK("ghcr.io/org/repo@multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
       "ghcr.io", "ghcr.io", "org/repo", NULL,
       "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"),
    OK("Example.COM/app:V1", "Example.COM", "Example.COM", "app", "V1", NULL),
    OK("ghcr.io:65535/app", "ghcr.io:65535", "ghcr.io:65535", "app", NULL, NULL),
    /* invalid */
    BAD("", "empty"),
    BAD("oci://", "empty"),
    BAD("http://ghcr.io/org/app", "scheme"),
    BAD("https://ghcr.io/org/app", "scheme"),
    BAD("Alpine", "lowercase"),
    BAD("ghcr.io/Org/app", "lowercase"),
    BAD("ghcr.io/org/app:bad!tag", "tag"),
    BAD("ghcr.io/org/app:.hidden", "tag"),
    BAD("ghcr.io/org/app:", "tag"),
    BAD("ghcr.io/org/app:"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "tag"),
    BAD("ghcr.io/org/app@sha256:abc", "digest"),
    BAD("ghcr.io/org/app@sha256:" D64 "0", "digest"),
    BAD("ghcr.io/org/app@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "digest"),
    BAD("ghcr.io/org/app@sha512:" D64, "digest"),
    BAD("ghcr.io/org/app@", "digest"),
    BAD("ghcr.io/org/app@sha256", "digest"),
    BAD("ghcr.io/org/app@-sha:abc", "digest"),
    BAD("ghcr.io/org/app@" SHA "@" SHA, "digest"),
    BAD("localhost:0/app", "port"),
    BAD("localhost:99999/app", "port"),
    BAD("localhost:50a0/app", "port"),
    BAD("localhost:/app", "port"),
    BAD("ghcr.io/org//app", "empty path component"),
    BAD("ghcr.io/org/app/", "empty path component"),
    BAD("ghcr.io/", "empty repository"),
    BAD(":tag", "empty repository"),
    BAD("@" SHA, "empty repository"),
    BAD("ghcr.io/-app", "component"),
    BAD("ghcr.io/app-", "component"),
    BAD("ghcr.io/a___b", "component"),
    BAD("ghcr.io/a..b", "component"),
    BAD("ghcr.io/a b", "component"),
    BAD("-bad-.io/app", "registry host"),
    BAD("ghcr..io/app", "registry host"),
    BAD("[::1/app", "registry host"),
    BAD("[]/app", "registry host"),
    BAD("[::1]x/app", "registry host"),
};

static void check_case(const ref_case *c)
{
    berth_oci_ref r;
    berth_error *err = NULL;
    int rc = berth_oci_ref_parse(&r, c->text, &err);
    if (rc != c->code)
        fail_msg("%s: rc %d (%s), want %d", c->text, rc,
                 err ? berth_error_message(err) : "no error", c->code);
    if (c->code == 0) {
        assert_null(err);
        assert_string_equal(r.registry, c->registry);
        assert_string_equal(r.api_host, c->api_host);
        assert_string_equal(r.repository, c->repository);
        if (c->tag)
            assert_string_equal(r.tag, c->tag);
        else
            assert_null(r.tag);
        if (c->digest)
            assert_string_equal(r.digest, c->digest);
        else
            assert_null(r.digest);
        berth_oci_ref_dispose(&r);
        return;
    }
    assert_non_null(err);
    assert_int_equal(berth_error_code(err), c->code);
    if (!strstr(berth_error_message(err), c->word))
        fail_msg("%s: message \"%s\" lacks \"%s\"", c->text, berth_error_message(err), c->word);
    assert_null(r.registry);
    assert_null(r.repository);
    berth_error_free(err);
}

static void ref_table_parses_valid_and_rejects_invalid(void **state)
{
    (void)state;
    assert_true(sizeof(cases) / sizeof(cases[0]) >= 40);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i]);
}

static void ref_rejects_uppercase_repository(void **state)
{
    (void)state;
    berth_oci_ref r;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_ref_parse(&r, "ghcr.io/Berth/App:1", &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "repository name must be lowercase"));
    assert_non_null(strstr(berth_error_message(err), "\"ghcr.io/Berth/App:1\""));
    berth_error_free(err);
}

static void ref_error_quotes_tag_and_whole_reference(void **state)
{
    (void)state;
    berth_oci_ref r;
    berth_error *err = NULL;
    assert_int_equal(berth_oci_ref_parse(&r, "oci://ghcr.io/a:b$c", &err), BERTH_EINVAL);
    assert_string_equal(berth_error_message(err),
                        "invalid tag \"b$c\" in reference \"oci://ghcr.io/a:b$c\"");
    berth_error_free(err);
}

static void ref_rejects_tag_of_129_characters_but_accepts_128(void **state)
{
    (void)state;
    char text[300], tag[130];
    berth_oci_ref r;
    berth_error *err = NULL;
    memset(tag, 't', 128);
    tag[128] = '\0';
    snprintf(text, sizeof(text), "ghcr.io/a:%s", tag);
    assert_int_equal(berth_oci_ref_parse(&r, text, &err), 0);
    assert_int_equal(strlen(r.tag), 128);
    berth_oci_ref_dispose(&r);
    tag[128] = 't';
    tag[129] = '\0';
    snprintf(text, sizeof(text), "ghcr.io/a:%s", tag);
    assert_int_equal(berth_oci_ref_parse(&r, text, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "invalid tag"));
    berth_error_free(err);
}

static void ref_rejects_name_longer_than_255(void **state)
{
    (void)state;
    char text[400];
    berth_oci_ref r;
    berth_error *err = NULL;
    /* "ghcr.io/" is 8 characters: 8 + 247 = 255 is accepted, 256 is not */
    memcpy(text, "ghcr.io/", 8);
    memset(text + 8, 'a', 247);
    text[255] = '\0';
    assert_int_equal(berth_oci_ref_parse(&r, text, &err), 0);
    berth_oci_ref_dispose(&r);
    text[255] = 'a';
    text[256] = '\0';
    assert_int_equal(berth_oci_ref_parse(&r, text, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "more than 255"));
    berth_error_free(err);
    err = NULL;
    /* Docker Hub counts the normalised "docker.io/library/" name: 18 + 237 = 255 */
    memset(text, 'b', 237);
    text[237] = '\0';
    assert_int_equal(berth_oci_ref_parse(&r, text, &err), 0);
    berth_oci_ref_dispose(&r);
    text[237] = 'b';
    text[238] = '\0';
    assert_int_equal(berth_oci_ref_parse(&r, text, &err), BERTH_EINVAL);
    assert_non_null(strstr(berth_error_message(err), "more than 255"));
    berth_error_free(err);
}

static void ref_string_round_trips(void **state)
{
    (void)state;
    static const char *const texts[] = {"alpine", "oci://localhost:5000/a/b:t@" SHA,
                                        "[::1]:5000/x:y", "ghcr.io/org/repo@" SHA};
    static const char *const want[] = {"docker.io/library/alpine", "localhost:5000/a/b:t@" SHA,
                                       "[::1]:5000/x:y", "ghcr.io/org/repo@" SHA};
    for (size_t i = 0; i < 4; i++) {
        berth_oci_ref r, again;
        char *s;
        assert_int_equal(berth_oci_ref_parse(&r, texts[i], NULL), 0);
        s = berth_oci_ref_string(&r);
        assert_non_null(s);
        assert_string_equal(s, want[i]);
        assert_int_equal(berth_oci_ref_parse(&again, s, NULL), 0);
        assert_string_equal(again.registry, r.registry);
        assert_string_equal(again.repository, r.repository);
        free(s);
        berth_oci_ref_dispose(&r);
        berth_oci_ref_dispose(&again);
    }
}

static void ref_target_prefers_digest_then_tag_then_latest(void **state)
{
    (void)state;
    berth_oci_ref r;
    assert_int_equal(berth_oci_ref_parse(&r, "ghcr.io/a:v1@" SHA, NULL), 0);
    assert_string_equal(berth_oci_ref_target(&r), SHA);
    assert_int_equal(berth_oci_ref_set(&r, "v2", NULL), 0);
    assert_string_equal(berth_oci_ref_target(&r), "v2");
    assert_null(r.digest);
    assert_int_equal(berth_oci_ref_set(&r, NULL, NULL), 0);
    assert_string_equal(berth_oci_ref_target(&r), "latest");
    berth_oci_ref_dispose(&r);
}

static void ref_set_refuses_invalid_values_and_keeps_old_ones(void **state)
{
    (void)state;
    berth_oci_ref r;
    assert_int_equal(berth_oci_ref_parse(&r, "ghcr.io/a:v1", NULL), 0);
    assert_int_equal(berth_oci_ref_set(&r, "bad tag", NULL), BERTH_EINVAL);
    assert_int_equal(berth_oci_ref_set(&r, "v2", "sha256:short"), BERTH_EINVAL);
    assert_string_equal(r.tag, "v1");
    assert_null(r.digest);
    berth_oci_ref_dispose(&r);
}

static void ref_copy_is_deep(void **state)
{
    (void)state;
    berth_oci_ref r, c;
    assert_int_equal(berth_oci_ref_parse(&r, "ghcr.io/a:v1@" SHA, NULL), 0);
    assert_int_equal(berth_oci_ref_copy(&c, &r, NULL), 0);
    assert_ptr_not_equal(c.repository, r.repository);
    berth_oci_ref_dispose(&r);
    assert_string_equal(c.registry, "ghcr.io");
    assert_string_equal(c.repository, "a");
    assert_string_equal(c.tag, "v1");
    assert_string_equal(c.digest, SHA);
    berth_oci_ref_dispose(&c);
    berth_oci_ref_dispose(NULL);
}

static void digest_and_tag_predicates(void **state)
{
    (void)state;
    assert_true(berth_oci_digest_is_valid(SHA));
    assert_true(berth_oci_digest_is_valid("sha512:" D128));
    assert_true(berth_oci_digest_is_valid("sha384:ABC_=-"));
    assert_true(berth_oci_digest_is_valid("a.b+c_d-e:x"));
    assert_false(berth_oci_digest_is_valid(NULL));
    assert_false(berth_oci_digest_is_valid(""));
    assert_false(berth_oci_digest_is_valid("sha256:"));
    assert_false(berth_oci_digest_is_valid(":abc"));
    assert_false(berth_oci_digest_is_valid("SHA256:" D64));
    assert_false(berth_oci_digest_is_valid("sha256+:abc"));
    assert_false(berth_oci_digest_is_valid("sha256:" D64 " "));
    assert_true(berth_oci_tag_is_valid("_"));
    assert_true(berth_oci_tag_is_valid("v1.2.3-rc.1_build"));
    assert_false(berth_oci_tag_is_valid(NULL));
    assert_false(berth_oci_tag_is_valid(""));
    assert_false(berth_oci_tag_is_valid("-x"));
    assert_false(berth_oci_tag_is_valid("a+b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ref_table_parses_valid_and_rejects_invalid),
        cmocka_unit_test(ref_rejects_uppercase_repository),
        cmocka_unit_test(ref_error_quotes_tag_and_whole_reference),
        cmocka_unit_test(ref_rejects_tag_of_129_characters_but_accepts_128),
        cmocka_unit_test(ref_rejects_name_longer_than_255),
        cmocka_unit_test(ref_string_round_trips),
        cmocka_unit_test(ref_target_prefers_digest_then_tag_then_latest),
        cmocka_unit_test(ref_set_refuses_invalid_values_and_keeps_old_ones),
        cmocka_unit_test(ref_copy_is_deep),
        cmocka_unit_test(digest_and_tag_predicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
