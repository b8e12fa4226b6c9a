/*
 * Flux's ignore patterns for `push`, `build` and `diff` (spec §1.4): the go-git gitignore subset
 * that fluxcd/pkg sourceignore copies, with Go's filepath.Match for each component.
 *
 * Design: a port of go-git plumbing/format/gitignore (ParsePattern, simpleNameMatch, globMatch,
 * Matcher.Match) and of Go's path/filepath Match (scanChunk, matchChunk, getEsc), keeping their
 * corner cases: a pattern without '/' is tried against every path component (so it also
 * excludes everything below a matching directory), a pattern with '/' is anchored at the root
 * and matched component by component with "**" for any number of directories, a trailing '/'
 * means "directories only" for the last component, and the last matching pattern decides.
 * Paths are relative to the archive root; the root itself is never matched.
 */
#include <stdint.h>
#include <string.h>

#include <berth/artifact.h>

#include "oci/ignore.h"

typedef struct ig_pattern {
    char **parts; /* the pattern split on '/' */
    size_t nparts;
    bool inclusion; /* leading '!' */
    bool dir_only;  /* trailing '/' */
    bool is_glob;   /* contains '/': anchored, matched part by part */
} ig_pattern;

struct oci_ignore {
    ig_pattern *pats;
    size_t n;
    bool has_negation;
};

/* ---------------------------------------------------------------- Go's filepath.Match */
typedef struct span {
    const char *p;
    size_t n;
} span;

/* utf8.DecodeRune: the rune and its length; invalid bytes give (0xFFFD, 1), empty (0xFFFD, 0). */
static uint32_t decode_rune(const char *s, size_t n, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0) {
        *len = 0;
        return 0xFFFD;
    }
    if (u[0] < 0x80) {
        *len = 1;
        return u[0];
    }
    size_t need;
    uint32_t r, min;
    if ((u[0] & 0xE0) == 0xC0) {
        need = 2, r = u[0] & 0x1F, min = 0x80;
    } else if ((u[0] & 0xF0) == 0xE0) {
        need = 3, r = u[0] & 0x0F, min = 0x800;
    } else if ((u[0] & 0xF8) == 0xF0) {
        need = 4, r = u[0] & 0x07, min = 0x10000;
    } else {
        *len = 1;
        return 0xFFFD;
    }
    if (n < need) {
        *len = 1;
        return 0xFFFD;
    }
    for (size_t i = 1; i < need; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *len = 1;
            return 0xFFFD;
        }
        r = (r << 6) | (u[i] & 0x3F);
    }
    if (r < min || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) {
        *len = 1;
        return 0xFFFD;
    }
    *len = need;
    return r;
}

static void scan_chunk(span *pat, bool *star, span *chunk)
{
    *star = false;
    while (pat->n > 0 && pat->p[0] == '*') {
        pat->p++, pat->n--;
        *star = true;
    }
    bool inrange = false;
    size_t i;
    for (i = 0; i < pat->n; i++) {
        char c = pat->p[i];
        if (c == '\\') {
            if (i + 1 < pat->n)
                i++;
        } else if (c == '[') {
            inrange = true;
        } else if (c == ']') {
            inrange = false;
        } else if (c == '*' && !inrange) {
            break;
        }
    }
    chunk->p = pat->p;
    chunk->n = i;
    pat->p += i;
    pat->n -= i;
}

/* getEsc: one possibly escaped rune of a character class; false on a malformed class. */
static bool get_esc(span *chunk, uint32_t *r)
{
    if (chunk->n == 0 || chunk->p[0] == '-' || chunk->p[0] == ']')
        return false;
    if (chunk->p[0] == '\\') {
        chunk->p++, chunk->n--;
        if (chunk->n == 0)
            return false;
    }
    size_t len;
    *r = decode_rune(chunk->p, chunk->n, &len);
    bool bad = (*r == 0xFFFD && len == 1);
    chunk->p += len;
    chunk->n -= len;
    return !bad && chunk->n > 0;
}

/* matchChunk: 1 = matched (rest in *s), 0 = no match, -1 = bad pattern. */
static int match_chunk(span chunk, span *s)
{
    bool failed = false;
    span in = *s;
    while (chunk.n > 0) {
        if (!failed && in.n == 0)
            failed = true;
        char c = chunk.p[0];
        if (c == '[') {
            uint32_t r = 0;
            if (!failed) {
                size_t len;
                r = decode_rune(in.p, in.n, &len);
                in.p += len, in.n -= len;
            }
            chunk.p++, chunk.n--;
            bool negated = false;
            if (chunk.n > 0 && chunk.p[0] == '^') {
                negated = true;
                chunk.p++, chunk.n--;
            }
            bool match = false;
            int nrange = 0;
            for (;;) {
                if (chunk.n > 0 && chunk.p[0] == ']' && nrange > 0) {
                    chunk.p++, chunk.n--;
                    break;
                }
                uint32_t lo, hi;
                if (!get_esc(&chunk, &lo))
                    return -1;
                hi = lo;
                if (chunk.p[0] == '-') {
                    chunk.p++, chunk.n--;
                    if (!get_esc(&chunk, &hi))
                        return -1;
                }
                if (lo <= r && r <= hi)
                    match = true;
                nrange++;
            }
            if (match == negated)
                failed = true;
        } else if (c == '?') {
            if (!failed) {
                if (in.p[0] == '/')
                    failed = true;
                size_t len;
                (void)decode_rune(in.p, in.n, &len);
                in.p += len, in.n -= len;
            }
            chunk.p++, chunk.n--;
        } else {
            if (c == '\\') {
                chunk.p++, chunk.n--;
                if (chunk.n == 0)
                    return -1;
            }
            if (!failed) {
                if (chunk.p[0] != in.p[0])
                    failed = true;
                in.p++, in.n--;
            }
            chunk.p++, chunk.n--;
        }
    }
    if (failed)
        return 0;
    *s = in;
    return 1;
}

static bool glob_match_span(span pat, span name)
{
    while (pat.n > 0) {
        bool star;
        span chunk;
        scan_chunk(&pat, &star, &chunk);
        if (star && chunk.n == 0)
            return memchr(name.p, '/', name.n) == NULL;
        span t = name;
        int r = match_chunk(chunk, &t);
        if (r == 1 && (t.n == 0 || pat.n > 0)) {
            name = t;
            continue;
        }
        if (r < 0)
            return false;
        bool advanced = false;
        if (star) {
            for (size_t i = 0; i < name.n && name.p[i] != '/'; i++) {
                span t2 = {name.p + i + 1, name.n - i - 1};
                r = match_chunk(chunk, &t2);
                if (r == 1) {
                    if (pat.n == 0 && t2.n > 0)
                        continue;
                    name = t2;
                    advanced = true;
                    break;
                }
                if (r < 0)
                    return false;
            }
        }
        if (advanced)
            continue;
        return false;
    }
    return name.n == 0;
}

bool oci_glob_match(const char *glob, const char *name)
{
    span p = {glob, strlen(glob)}, n = {name, strlen(name)};
    return glob_match_span(p, n);
}

/* ---------------------------------------------------------------- go-git patterns */
static void pattern_dispose(ig_pattern *p)
{
    for (size_t i = 0; i < p->nparts; i++)
        core_free(p->parts[i]);
    core_free(p->parts);
}

/* ParsePattern: "!" inclusion, trailing spaces trimmed unless escaped, trailing "/" dir-only. */
static int pattern_parse(ig_pattern *out, const char *text)
{
    memset(out, 0, sizeof(*out));
    const char *s = text;
    if (*s == '!') {
        out->inclusion = true;
        s++;
    }
    size_t n = strlen(s);
    if (!(n >= 2 && s[n - 2] == '\\' && s[n - 1] == ' ')) {
        while (n > 0 && s[n - 1] == ' ')
            n--;
    }
    if (n > 0 && s[n - 1] == '/') {
        out->dir_only = true;
        n--;
    }
    out->is_glob = memchr(s, '/', n) != NULL;
    size_t count = 1;
    for (size_t i = 0; i < n; i++)
        count += s[i] == '/';
    out->parts = core_calloc(count, sizeof(char *));
    if (!out->parts)
        return BERTH_ENOMEM;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            out->parts[out->nparts] = core_strndup(s + start, i - start);
            if (!out->parts[out->nparts])
                return BERTH_ENOMEM;
            out->nparts++;
            start = i + 1;
        }
    }
    return 0;
}

static bool simple_name_match(const ig_pattern *p, char *const *path, size_t n, bool is_dir)
{
    for (size_t i = 0; i < n; i++) {
        if (!oci_glob_match(p->parts[0], path[i]))
            continue;
        if (p->dir_only && !is_dir && i == n - 1)
            return false;
        return true;
    }
    return false;
}

static bool glob_parts_match(const ig_pattern *p, char *const *path, size_t n, bool is_dir)
{
    bool matched = false, can_traverse = false;
    size_t at = 0;
    for (size_t i = 0; i < p->nparts; i++) {
        const char *part = p->parts[i];
        if (part[0] == '\0') {
            can_traverse = false;
            continue;
        }
        if (strcmp(part, "**") == 0) {
            if (i == p->nparts - 1)
                break;
            can_traverse = true;
            continue;
        }
        if (strstr(part, "**"))
            return false;
        if (at == n)
            return false;
        if (can_traverse) {
            can_traverse = false;
            while (at < n) {
                const char *e = path[at++];
                if (oci_glob_match(part, e)) {
                    matched = true;
                    break;
                } else if (at == n) {
                    matched = false;
                }
            }
        } else {
            if (!oci_glob_match(part, path[at]))
                return false;
            matched = true;
            at++;
        }
    }
    if (matched && p->dir_only && !is_dir && at == n)
        matched = false;
    return matched;
}

/* 1 exclude, -1 include, 0 no match. */
static int pattern_match(const ig_pattern *p, char *const *path, size_t n, bool is_dir)
{
    if (n == 0)
        return 0;
    bool m =
        p->is_glob ? glob_parts_match(p, path, n, is_dir) : simple_name_match(p, path, n, is_dir);
    if (!m)
        return 0;
    return p->inclusion ? -1 : 1;
}

void oci_ignore_free(oci_ignore *ig)
{
    if (!ig)
        return;
    for (size_t i = 0; i < ig->n; i++)
        pattern_dispose(&ig->pats[i]);
    core_free(ig->pats);
    core_free(ig);
}

/* ReadPatterns keeps lines that are not comments and not blank. */
static bool is_pattern_line(const char *s)
{
    if (s[0] == '#')
        return false;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n' && *s != '\v' && *s != '\f')
            return true;
    return false;
}

int oci_ignore_new_list(oci_ignore **out, const char *const *patterns, size_t n, berth_error **err)
{
    BERTH_ARG_CHECK(out && (patterns || n == 0));
    *out = NULL;
    oci_ignore *ig = core_calloc(1, sizeof(*ig));
    if (!ig || (n > 0 && !(ig->pats = core_calloc(n, sizeof(ig_pattern))))) {
        core_free(ig);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_pattern_line(patterns[i]))
            continue;
        ig_pattern *p = &ig->pats[ig->n++];
        if (pattern_parse(p, patterns[i]) < 0) {
            oci_ignore_free(ig);
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
        ig->has_negation |= p->inclusion;
    }
    *out = ig;
    return 0;
}

int oci_ignore_new(oci_ignore **out, const char *patterns, berth_error **err)
{
    BERTH_ARG_CHECK(out);
    *out = NULL;
    if (!patterns)
        patterns = BERTH_ARTIFACT_DEFAULT_IGNORE;
    char *copy = core_strdup(patterns);
    size_t count = 1;
    for (const char *s = patterns; *s; s++)
        count += *s == ',';
    const char **items = core_calloc(count, sizeof(char *));
    int rc;
    if (!copy || !items) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    size_t n = 0;
    char *s = copy;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = '\0';
        items[n++] = s;
        if (!comma)
            break;
        s = comma + 1;
    }
    rc = oci_ignore_new_list(out, items, n, err);
out:
    core_free(items);
    core_free(copy);
    return rc;
}

bool oci_ignore_match(const oci_ignore *ig, const char *rel, bool is_dir)
{
    if (!ig || ig->n == 0 || !rel || !*rel || strcmp(rel, ".") == 0)
        return false;
    /* Split into components in a stack buffer when small (the common case). */
    char buf[1024];
    char *stack_parts[64];
    char *copy = NULL, **parts = stack_parts;
    size_t len = strlen(rel), count = 1;
    for (size_t i = 0; i < len; i++)
        count += rel[i] == '/';
    char *s = buf;
    if (len >= sizeof(buf) && !(s = copy = core_strdup(rel)))
        return false;
    if (s == buf)
        memcpy(buf, rel, len + 1);
    if (count > 64 && !(parts = core_calloc(count, sizeof(char *)))) {
        core_free(copy);
        return false;
    }
    size_t n = 0;
    for (char *p = s;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        parts[n++] = p;
        if (!slash)
            break;
        p = slash + 1;
    }
    bool excluded = false;
    for (size_t i = ig->n; i-- > 0;) {
        int m = pattern_match(&ig->pats[i], parts, n, is_dir);
        if (m != 0) {
            excluded = m > 0;
            break;
        }
    }
    if (parts != stack_parts)
        core_free(parts);
    core_free(copy);
    return excluded;
}

bool oci_ignore_has_negation(const oci_ignore *ig)
{
    return ig && ig->has_negation;
}
