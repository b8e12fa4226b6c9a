/*
 * Image references ("ghcr.io/org/app:1.0@sha256:...") and the small grammars they are made of:
 * tags and digests. Every user-supplied reference passes through here before any request is
 * made, so the parser is strict and its errors name the part at fault.
 *
 * Design: the grammar is distribution/reference's (docker's), read right to left the way it
 * does: the digest starts at the first '@', the tag is after the last ':' of the last path
 * component, and the first path component is a registry host when it contains '.' or ':', is
 * "localhost" or is a bracketed IPv6 address; otherwise the reference names Docker Hub. Flux's
 * "oci://" prefix and skopeo's "docker://" are stripped; any other scheme is refused. Docker Hub's
 * host aliases collapse to "docker.io" (requests go to "registry-1.docker.io") and one-component
 * names there gain "library/". The parser allocates only the five result strings, so a failed
 * parse leaves nothing behind. Thread-safe: no shared state.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include <berth/oci.h>

#define NAME_MAX_LEN 255 /* host/path, as distribution/reference caps it */
#define TAG_MAX_LEN 128
#define DOCKER_HUB "docker.io"
#define DOCKER_HUB_API "registry-1.docker.io"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* ------------------------------------------------------------------ tags and digests */

static bool tag_is_valid_n(const char *s, size_t n)
{
    if (n == 0 || n > TAG_MAX_LEN)
        return false;
    if (!is_alnum(s[0]) && s[0] != '_')
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
            return false;
    }
    return true;
}

bool berth_oci_tag_is_valid(const char *s)
{
    return s && tag_is_valid_n(s, strlen(s));
}

/*
 * OCI image-spec descriptor.md, "Digests":
 *   algorithm ::= component (separator component)*   component ::= [a-z0-9]+
 *   separator ::= [+._-]                              encoded   ::= [a-zA-Z0-9=_-]+
 * and the registered algorithms pin the encoding: sha256 is 64 and sha512 128 lowercase hex.
 */
static bool digest_is_valid_n(const char *s, size_t n)
{
    size_t i = 0, alg_len, enc_len;
    const char *enc;

    /* algorithm: components joined by single separators, no separator at either end */
    for (;;) {
        size_t start = i;
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == start)
            return false;
        if (i < n && (s[i] == '+' || s[i] == '.' || s[i] == '_' || s[i] == '-')) {
            i++;
            continue;
        }
        break;
    }
    if (i >= n || s[i] != ':')
        return false;
    alg_len = i;
    enc = s + i + 1;
    enc_len = n - i - 1;
    if (enc_len == 0)
        return false;
    for (size_t k = 0; k < enc_len; k++) {
        char c = enc[k];
        if (!is_alnum(c) && c != '=' && c != '_' && c != '-')
            return false;
    }
    if ((alg_len == 6 && memcmp(s, "sha256", 6) == 0) ||
        (alg_len == 6 && memcmp(s, "sha512", 6) == 0)) {
        size_t want = s[3] == '2' ? 64 : 128;
        if (enc_len != want)
            return false;
        for (size_t k = 0; k < enc_len; k++)
            if (!is_lower_hex(enc[k]))
                return false;
    }
    return true;
}

bool berth_oci_digest_is_valid(const char *s)
{
    return s && digest_is_valid_n(s, strlen(s));
}

/* ------------------------------------------------------------------ hosts and paths */

/* A DNS label as distribution allows it: [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]. */
static bool host_label_is_valid(const char *s, size_t n)
{
    if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if (!is_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

/* Port: 1..65535, digits only. */
static bool port_is_valid(const char *s, size_t n)
{
    unsigned long v = 0;
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

/*
 * Check "host[:port]" or "[ipv6][:port]". The port is handed back unchecked so the caller can say
 * "invalid port" rather than "invalid registry host".
 */
static bool host_is_valid(const char *s, size_t n, const char **port_out, size_t *port_len_out)
{
    size_t i = 0;
    *port_out = NULL;
    *port_len_out = 0;
    if (n > 0 && s[0] == '[') {
        /* IPv6 literal: \[[a-fA-F0-9:]+\] as distribution/reference accepts */
        i = 1;
        while (i < n && (is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f') ||
                         (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':'))
            i++;
        if (i == 1 || i >= n || s[i] != ']')
            return false;
        i++;
    } else {
        for (;;) {
            size_t start = i;
            while (i < n && s[i] != '.' && s[i] != ':')
                i++;
            if (!host_label_is_valid(s + start, i - start))
                return false;
            if (i < n && s[i] == '.') {
                i++;
                continue;
            }
            break;
        }
    }
    if (i == n)
        return true;
    if (s[i] != ':')
        return false;
    *port_out = s + i + 1;
    *port_len_out = n - i - 1;
    return true;
}

/* One repository path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool path_component_is_valid(const char *s, size_t n)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == start)
            return false;
        if (i == n)
            return true;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
    }
}

static bool host_is_docker_hub(const char *s, size_t n)
{
    static const char *const aliases[] = {"docker.io", "index.docker.io", "registry-1.docker.io"};
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        size_t an = strlen(aliases[i]);
        if (n == an && core_strncasecmp(s, aliases[i], n) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ references */

void berth_oci_ref_dispose(berth_oci_ref *r)
{
    if (!r)
        return;
    core_free(r->registry);
    core_free(r->api_host);
    core_free(r->repository);
    core_free(r->tag);
    core_free(r->digest);
    memset(r, 0, sizeof(*r));
}

/* Strip "oci://" or "docker://"; refuse any other "<scheme>://". */
static int strip_scheme(const char **rest, const char *text, berth_error **err)
{
    const char *sep = strstr(text, "://");
    size_t n;
    *rest = text;
    if (!sep)
        return 0;
    n = (size_t)(sep - text);
    /* Only a leading token of scheme characters counts as a scheme; anything else is left to
     * the grammar, which refuses it as an invalid host or path. */
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!is_alnum(c) && c != '+' && c != '.' && c != '-')
            return 0;
    }
    if (n == 0)
        return 0;
    if ((n == 3 && core_strncasecmp(text, "oci", 3) == 0) ||
        (n == 6 && core_strncasecmp(text, "docker", 6) == 0)) {
        *rest = sep + 3;
        return 0;
    }
    return core_error_set(err, BERTH_EINVAL,
                          "unsupported scheme \"%.*s\" in reference \"%s\" (use oci:// or none)",
                          (int)n, text, text);
}

int berth_oci_ref_parse(berth_oci_ref *out, const char *text, berth_error **err)
{
    const char *s, *at, *name, *last_slash, *colon, *first_slash, *path, *port;
    size_t name_len, path_len, host_len = 0, port_len, tag_len = 0, full_len;
    bool explicit_host = false, hub;
    berth_oci_ref r = {0};
    int rc;

    BERTH_ARG_CHECK(out);
    memset(out, 0, sizeof(*out));
    if (!text)
        return core_error_set(err, BERTH_EINVAL, "empty reference");
    if ((rc = strip_scheme(&s, text, err)) < 0)
        return rc;
    if (*s == '\0')
        return core_error_set(err, BERTH_EINVAL, "empty reference \"%s\"", text);

    /* digest: everything after the first '@' */
    at = strchr(s, '@');
    if (at) {
        if (!berth_oci_digest_is_valid(at + 1))
            return core_error_set(err, BERTH_EINVAL, "invalid digest \"%s\" in reference \"%s\"",
                                  at + 1, text);
        name_len = (size_t)(at - s);
    } else {
        name_len = strlen(s);
    }
    name = s;

    /* tag: after the last ':' of the last path component */
    last_slash = NULL;
    for (size_t i = 0; i < name_len; i++)
        if (name[i] == '/')
            last_slash = name + i;
    colon = NULL;
    for (const char *p = last_slash ? last_slash + 1 : name; p < name + name_len; p++)
        if (*p == ':')
            colon = p;
    if (colon) {
        tag_len = (size_t)(name + name_len - colon - 1);
        if (!tag_is_valid_n(colon + 1, tag_len))
            return core_error_set(err, BERTH_EINVAL, "invalid tag \"%.*s\" in reference \"%s\"",
                                  (int)tag_len, colon + 1, text);
        name_len = (size_t)(colon - name);
    }
    if (name_len == 0)
        return core_error_set(err, BERTH_EINVAL, "empty repository in reference \"%s\"", text);

    /* host: the first component, when it looks like one */
    first_slash = memchr(name, '/', name_len);
    path = name;
    path_len = name_len;
    if (first_slash) {
        size_t n = (size_t)(first_slash - name);
        if (memchr(name, '.', n) || memchr(name, ':', n) || (n > 0 && name[0] == '[') ||
            (n == 9 && memcmp(name, "localhost", 9) == 0)) {
            explicit_host = true;
            host_len = n;
            path = first_slash + 1;
            path_len = name_len - n - 1;
        }
    }
    if (explicit_host) {
        if (!host_is_valid(name, host_len, &port, &port_len))
            return core_error_set(err, BERTH_EINVAL,
                                  "invalid registry host \"%.*s\" in reference \"%s\"",
                                  (int)host_len, name, text);
        if (port && !port_is_valid(port, port_len))
            return core_error_set(err, BERTH_EINVAL, "invalid port \"%.*s\" in reference \"%s\"",
                                  (int)port_len, port, text);
    }

    /* repository path */
    if (path_len == 0)
        return core_error_set(err, BERTH_EINVAL, "empty repository in reference \"%s\"", text);
    for (size_t i = 0; i < path_len; i++)
        if (path[i] >= 'A' && path[i] <= 'Z')
            return core_error_set(err, BERTH_EINVAL,
                                  "invalid repository \"%.*s\" in reference \"%s\": repository "
                                  "name must be lowercase",
                                  (int)path_len, path, text);
    for (size_t i = 0; i <= path_len;) {
        size_t start = i;
        while (i < path_len && path[i] != '/')
            i++;
        if (i == start)
            return core_error_set(err, BERTH_EINVAL,
                                  "invalid repository \"%.*s\" in reference \"%s\": empty path "
                                  "component",
                                  (int)path_len, path, text);
        if (!path_component_is_valid(path + start, i - start))
            return core_error_set(err, BERTH_EINVAL,
                                  "invalid repository \"%.*s\" in reference \"%s\": component "
                                  "\"%.*s\" must match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*",
                                  (int)path_len, path, text, (int)(i - start), path + start);
        i++;
    }

    /* The 255 limit applies to the normalised name, as distribution/reference checks it after
     * adding "docker.io/library/", so that a reference always survives its own string form. */
    hub = !explicit_host || host_is_docker_hub(name, host_len);
    full_len = (hub ? strlen(DOCKER_HUB) : host_len) + 1 + path_len +
               (hub && !memchr(path, '/', path_len) ? strlen("library/") : 0);
    if (full_len > NAME_MAX_LEN)
        return core_error_set(err, BERTH_EINVAL,
                              "repository name is %zu characters, more than %d, in reference "
                              "\"%s\"",
                              full_len, NAME_MAX_LEN, text);

    /* build the result */
    if (hub) {
        r.registry = core_strdup(DOCKER_HUB);
        r.api_host = core_strdup(DOCKER_HUB_API);
        if (memchr(path, '/', path_len))
            r.repository = core_strndup(path, path_len);
        else
            r.repository = core_sprintf("library/%.*s", (int)path_len, path);
    } else {
        r.registry = core_strndup(name, host_len);
        r.api_host = core_strndup(name, host_len);
        r.repository = core_strndup(path, path_len);
    }
    if (!r.registry || !r.api_host || !r.repository)
        goto oom;
    if (colon && !(r.tag = core_strndup(colon + 1, tag_len)))
        goto oom;
    if (at && !(r.digest = core_strdup(at + 1)))
        goto oom;
    *out = r;
    return 0;
oom:
    berth_oci_ref_dispose(&r);
    return core_error_set(err, BERTH_ENOMEM, "out of memory parsing reference \"%s\"", text);
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src && !(*dst = core_strdup(src)))
        return BERTH_ENOMEM;
    return 0;
}

int berth_oci_ref_copy(berth_oci_ref *out, const berth_oci_ref *src, berth_error **err)
{
    berth_oci_ref r = {0};

    BERTH_ARG_CHECK(out);
    BERTH_ARG_CHECK(src);
    memset(out, 0, sizeof(*out));
    if (dup_opt(&r.registry, src->registry) < 0 || dup_opt(&r.api_host, src->api_host) < 0 ||
        dup_opt(&r.repository, src->repository) < 0 || dup_opt(&r.tag, src->tag) < 0 ||
        dup_opt(&r.digest, src->digest) < 0) {
        berth_oci_ref_dispose(&r);
        return core_error_set(err, BERTH_ENOMEM, "out of memory copying a reference");
    }
    *out = r;
    return 0;
}

char *berth_oci_ref_string(const berth_oci_ref *r)
{
    if (!r || !r->registry || !r->repository)
        return NULL;
    return core_sprintf("%s/%s%s%s%s%s", r->registry, r->repository, r->tag ? ":" : "",
                        r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "");
}

const char *berth_oci_ref_target(const berth_oci_ref *r)
{
    if (r && r->digest)
        return r->digest;
    if (r && r->tag)
        return r->tag;
    return "latest";
}

int berth_oci_ref_set(berth_oci_ref *r, const char *tag, const char *digest)
{
    char *t = NULL, *d = NULL;

    BERTH_ARG_CHECK(r);
    /* Validate and copy both before touching r, so a failure leaves it unchanged. */
    if ((tag && !berth_oci_tag_is_valid(tag)) || (digest && !berth_oci_digest_is_valid(digest)))
        return BERTH_EINVAL;
    if (dup_opt(&t, tag) < 0 || dup_opt(&d, digest) < 0) {
        core_free(t);
        return BERTH_ENOMEM;
    }
    core_free(r->tag);
    core_free(r->digest);
    r->tag = t;
    r->digest = d;
    return 0;
}
