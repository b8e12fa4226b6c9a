/*
 * Semantic versions and Masterminds v3 constraints. Flux selects OCI tags with
 * github.com/Masterminds/semver/v3, so "which tag wins" must come out the same here, quirks
 * included; this file is that library's behaviour re-stated in C.
 *
 * Design: versions are parsed by hand along Masterminds' loose grammar
 *   v?[0-9]+(\.[0-9]+)?(\.[0-9]+)?(-ident(\.ident)*)?(\+ident(\.ident)*)?   ident: [0-9A-Za-z-]+
 * (missing minor/patch become 0, leading zeros in them are allowed, numeric pre-release
 * identifiers must not have one). A constraint is OR groups ("||") of AND-ed comparators
 * (separated by blanks or a comma); "a - b" becomes ">= a, <= b". A comparator version may use
 * x, X or * parts or leave parts out, which makes it "dirty": Masterminds then widens = to ~ and
 * special-cases > and <=, and we keep the same three flags (dirty, minor_dirty, patch_dirty) and
 * the same per-operator rules. Pre-releases only satisfy an AND group in which some comparator
 * carries a pre-release (v3.4 behaviour). Nothing is shared, so everything is thread-safe.
 */
#include "core/semver.h"

#include <string.h>

#include "core/core.h"

/* ------------------------------------------------------------------ scanning */

typedef struct span {
    const char *p;
    size_t n;
} span;

/* What a version-shaped token holds, before any number is converted. */
typedef struct scan {
    span part[3];    /* major, minor, patch digits (or one of x X * when allowed) */
    int nparts;      /* 1..3 */
    span pre, build; /* without '-' / '+'; n == 0 when absent */
} scan;

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static bool is_x(span s)
{
    return s.n == 1 && (s.p[0] == 'x' || s.p[0] == 'X' || s.p[0] == '*');
}

static bool all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return false;
    return n > 0;
}

/* Dot-separated non-empty identifiers of [0-9A-Za-z-]; stops at the first other byte. */
static size_t scan_idents(const char *s, size_t i, size_t n, bool *ok)
{
    *ok = false;
    for (;;) {
        size_t start = i;
        while (i < n && is_ident_char(s[i]))
            i++;
        if (i == start)
            return i;
        if (i < n && s[i] == '.' && i + 1 < n && is_ident_char(s[i + 1])) {
            i++;
            continue;
        }
        *ok = true;
        return i;
    }
}

/* Scan s[0..n) as a whole version token; returns a reason on failure, NULL on success. */
static const char *scan_version(scan *sc, const char *s, size_t n, bool allow_x)
{
    size_t i = 0;
    bool ok;

    memset(sc, 0, sizeof(*sc));
    if (i < n && s[i] == 'v')
        i++;
    while (sc->nparts < 3) {
        size_t start = i;
        if (allow_x && i < n && (s[i] == 'x' || s[i] == 'X' || s[i] == '*'))
            i++;
        else
            while (i < n && is_digit(s[i]))
                i++;
        if (i == start)
            return sc->nparts == 0 ? "expected a number" : "expected a number after '.'";
        sc->part[sc->nparts].p = s + start;
        sc->part[sc->nparts].n = i - start;
        sc->nparts++;
        if (i < n && s[i] == '.' && sc->nparts < 3) {
            i++;
            continue;
        }
        break;
    }
    if (i < n && s[i] == '-') {
        size_t start = ++i;
        i = scan_idents(s, i, n, &ok);
        if (!ok)
            return "invalid pre-release";
        sc->pre.p = s + start;
        sc->pre.n = i - start;
        /* SemVer 2.0 item 9: numeric identifiers must not include leading zeros */
        for (size_t a = 0; a < sc->pre.n;) {
            size_t b = a;
            while (b < sc->pre.n && sc->pre.p[b] != '.')
                b++;
            if (b - a > 1 && sc->pre.p[a] == '0' && all_digits(sc->pre.p + a, b - a))
                return "numeric pre-release identifier with a leading zero";
            a = b + 1;
        }
    }
    if (i < n && s[i] == '+') {
        size_t start = ++i;
        i = scan_idents(s, i, n, &ok);
        if (!ok)
            return "invalid build metadata";
        sc->build.p = s + start;
        sc->build.n = i - start;
    }
    if (i != n)
        return "unexpected characters";
    return NULL;
}

static bool span_u64(uint64_t *out, span s)
{
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        uint64_t d = (uint64_t)(s.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static char *span_dup(span s, bool *failed)
{
    char *d;
    if (s.n == 0)
        return NULL;
    if (!(d = core_strndup(s.p, s.n)))
        *failed = true;
    return d;
}

/* ------------------------------------------------------------------ versions */

void core_semver_dispose(core_semver *v)
{
    if (!v)
        return;
    core_free(v->pre);
    core_free(v->build);
    core_free(v->original);
    memset(v, 0, sizeof(*v));
}

int core_semver_parse(core_semver *out, const char *s, bool strict, berth_error **err)
{
    core_semver v = {0};
    const char *why;
    scan sc;
    bool failed = false;
    size_t dots = 0;

    BERTH_ARG_CHECK(out);
    memset(out, 0, sizeof(*out));
    if (!s || !*s)
        return core_error_set(err, BERTH_EINVAL, "invalid version \"\": empty");
    if ((why = scan_version(&sc, s, strlen(s), false)) != NULL)
        return core_error_set(err, BERTH_EINVAL, "invalid version \"%s\": %s", s, why);
    if (strict) {
        /* Flux: strings.SplitN(v, ".", 3) must give three parts */
        for (const char *p = s; *p; p++)
            dots += *p == '.';
        if (dots < 2)
            return core_error_set(err, BERTH_EINVAL,
                                  "invalid version \"%s\": needs major.minor.patch", s);
    }
    if (!span_u64(&v.major, sc.part[0]) || (sc.nparts > 1 && !span_u64(&v.minor, sc.part[1])) ||
        (sc.nparts > 2 && !span_u64(&v.patch, sc.part[2])))
        return core_error_set(err, BERTH_EINVAL, "invalid version \"%s\": number too large", s);
    v.pre = span_dup(sc.pre, &failed);
    v.build = span_dup(sc.build, &failed);
    if (failed || !(v.original = core_strdup(s))) {
        core_semver_dispose(&v);
        return core_error_set(err, BERTH_ENOMEM, "out of memory parsing version \"%s\"", s);
    }
    *out = v;
    return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

/* One pre-release identifier against another (SemVer 2.0 item 11.4). */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
    bool ad = all_digits(a, an), bd = all_digits(b, bn);
    int c;
    if (ad && bd) {
        /* numerically, for any length: strip leading zeros, longer is larger */
        while (an > 1 && *a == '0')
            a++, an--;
        while (bn > 1 && *b == '0')
            b++, bn--;
        if (an != bn)
            return an < bn ? -1 : 1;
        c = memcmp(a, b, an);
        return c < 0 ? -1 : c > 0 ? 1 : 0;
    }
    if (ad)
        return -1; /* numeric identifiers sort before alphanumeric ones */
    if (bd)
        return 1;
    c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

static int cmp_pre(const char *a, const char *b)
{
    for (;;) {
        size_t an = strcspn(a, "."), bn = strcspn(b, ".");
        int c = cmp_ident(a, an, b, bn);
        if (c != 0)
            return c;
        a += an;
        b += bn;
        if (!*a || !*b)
            return *a ? 1 : *b ? -1 : 0; /* a larger set of fields wins when all else is equal */
        a++;
        b++;
    }
}

int core_semver_compare(const core_semver *a, const core_semver *b)
{
    int c;
    bool ap = a->pre && *a->pre, bp = b->pre && *b->pre;
    if ((c = cmp_u64(a->major, b->major)) != 0 || (c = cmp_u64(a->minor, b->minor)) != 0 ||
        (c = cmp_u64(a->patch, b->patch)) != 0)
        return c;
    if (!ap || !bp)
        return ap == bp ? 0 : ap ? -1 : 1; /* a pre-release sorts before its release */
    return cmp_pre(a->pre, b->pre);
}

/* ------------------------------------------------------------------ constraints */

typedef enum {
    OP_EQ, /* "" and "=": tilde when dirty, else equality */
    OP_NE,
    OP_GT,
    OP_LT,
    OP_GE,
    OP_LE,
    OP_TILDE, /* "~" and "~>" */
    OP_CARET,
} op_kind;

typedef struct comparator {
    op_kind op;
    core_semver con;  /* the version, x parts set to 0 */
    bool dirty;       /* some part was x or left out */
    bool minor_dirty; /* minor (and so patch) was x or left out */
    bool patch_dirty; /* only patch was x or left out */
} comparator;

typedef struct group {
    comparator *items;
    size_t n, cap;
    bool has_pre; /* some comparator carries a pre-release: pre-releases may match */
} group;

struct core_semver_constraint {
    group *groups;
    size_t n;
    char *text;
};

static void group_dispose(group *g)
{
    for (size_t i = 0; i < g->n; i++)
        core_semver_dispose(&g->items[i].con);
    core_free(g->items);
    memset(g, 0, sizeof(*g));
}

void core_semver_constraint_free(core_semver_constraint *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        group_dispose(&c->groups[i]);
    core_free(c->groups);
    core_free(c->text);
    core_free(c);
}

const char *core_semver_constraint_string(const core_semver_constraint *c)
{
    return c ? c->text : NULL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_cv_char(char c)
{
    return is_ident_char(c) || c == '.' || c == '*' || c == '+';
}

static size_t skip_space(const char *s, size_t i, size_t n)
{
    while (i < n && is_space(s[i]))
        i++;
    return i;
}

static size_t scan_op(op_kind *op, const char *s, size_t i, size_t n)
{
    static const struct {
        const char *text;
        op_kind op;
    } ops[] = {{">=", OP_GE}, {"=>", OP_GE},    {"<=", OP_LE},  {"=<", OP_LE},
               {"!=", OP_NE}, {"~>", OP_TILDE}, {">", OP_GT},   {"<", OP_LT},
               {"=", OP_EQ},  {"~", OP_TILDE},  {"^", OP_CARET}};
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        size_t len = strlen(ops[k].text);
        if (n - i >= len && memcmp(s + i, ops[k].text, len) == 0) {
            *op = ops[k].op;
            return i + len;
        }
    }
    *op = OP_EQ;
    return i;
}

/* Parse one comparator version (x parts allowed) into c; a reason on failure. */
static const char *parse_cv(comparator *c, int *rc, const char *s, size_t n)
{
    scan sc;
    const char *why;
    bool failed = false;

    *rc = BERTH_EINVAL;
    if ((why = scan_version(&sc, s, n, true)) != NULL)
        return why;
    /* As Masterminds' parseConstraint: the first x or missing part decides, later parts are
     * ignored. */
    if (is_x(sc.part[0])) {
        c->dirty = true;
    } else if (sc.nparts < 2 || is_x(sc.part[1])) {
        c->dirty = c->minor_dirty = true;
    } else if (sc.nparts < 3 || is_x(sc.part[2])) {
        c->dirty = c->patch_dirty = true;
    }
    if (!is_x(sc.part[0])) {
        if (!span_u64(&c->con.major, sc.part[0]))
            return "number too large";
        if (!c->minor_dirty && !span_u64(&c->con.minor, sc.part[1]))
            return "number too large";
        if (!c->minor_dirty && !c->patch_dirty && !span_u64(&c->con.patch, sc.part[2]))
            return "number too large";
    }
    for (int k = 0; k < sc.nparts; k++)
        if (!is_x(sc.part[k]) && !all_digits(sc.part[k].p, sc.part[k].n))
            return "invalid number";
    c->con.pre = span_dup(sc.pre, &failed);
    c->con.original = core_strndup(s, n);
    if (failed || !c->con.original) {
        *rc = BERTH_ENOMEM;
        return "out of memory";
    }
    *rc = 0;
    return NULL;
}

static int group_push(group *g, const comparator *c)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        comparator *items = core_realloc(g->items, cap * sizeof(*items));
        if (!items)
            return BERTH_ENOMEM;
        g->items = items;
        g->cap = cap;
    }
    g->items[g->n++] = *c;
    if (c->con.pre)
        g->has_pre = true;
    return 0;
}

/* Read one version token at s[*i], parse it into c with op. */
static const char *read_cv(comparator *c, int *rc, op_kind op, const char *s, size_t *i, size_t n)
{
    size_t start = *i;
    const char *why;
    memset(c, 0, sizeof(*c));
    c->op = op;
    *rc = BERTH_EINVAL;
    while (*i < n && is_cv_char(s[*i]))
        (*i)++;
    if (*i == start)
        return "expected a version";
    why = parse_cv(c, rc, s + start, *i - start);
    if (why)
        core_semver_dispose(&c->con);
    return why;
}

/* One OR alternative: comparators separated by blanks or a comma, or a hyphen range. */
static const char *parse_group(group *g, int *rc, const char *s, size_t n)
{
    size_t i = skip_space(s, 0, n), ws;
    comparator a, b;
    const char *why;
    op_kind op;
    size_t before;

    *rc = BERTH_EINVAL;
    if (i == n)
        return "empty alternative";
    for (;;) {
        before = i;
        i = scan_op(&op, s, i, n);
        bool has_op = i != before;
        i = skip_space(s, i, n);
        if ((why = read_cv(&a, rc, op, s, &i, n)) != NULL)
            return why;
        ws = skip_space(s, i, n) - i;
        i += ws;
        if (!has_op && ws > 0 && i + 1 < n && s[i] == '-' && is_space(s[i + 1])) {
            /* hyphen range "a - b" = ">= a, <= b" */
            i = skip_space(s, i + 1, n);
            if ((why = read_cv(&b, rc, OP_LE, s, &i, n)) != NULL) {
                core_semver_dispose(&a.con);
                return why;
            }
            a.op = OP_GE;
            if (group_push(g, &a) < 0) {
                core_semver_dispose(&a.con);
                core_semver_dispose(&b.con);
                *rc = BERTH_ENOMEM;
                return "out of memory";
            }
            a = b;
            ws = skip_space(s, i, n) - i;
            i += ws;
        }
        if (group_push(g, &a) < 0) {
            core_semver_dispose(&a.con);
            *rc = BERTH_ENOMEM;
            return "out of memory";
        }
        if (i == n)
            break;
        if (s[i] == ',') {
            i = skip_space(s, i + 1, n);
            if (i == n) {
                *rc = BERTH_EINVAL;
                return "trailing comma";
            }
            continue;
        }
        if (ws == 0) {
            *rc = BERTH_EINVAL;
            return "unexpected character";
        }
    }
    *rc = 0;
    return NULL;
}

int core_semver_constraint_parse(core_semver_constraint **out, const char *s, berth_error **err)
{
    core_semver_constraint *c = NULL;
    const char *p, *why = NULL;
    size_t alts = 1;
    int rc = 0;

    BERTH_ARG_CHECK(out);
    *out = NULL;
    if (!s)
        return core_error_set(err, BERTH_EINVAL, "invalid semver constraint \"\": empty");
    for (p = strstr(s, "||"); p; p = strstr(p + 2, "||"))
        alts++;
    if (!(c = core_calloc(1, sizeof(*c))) || !(c->groups = core_calloc(alts, sizeof(group))) ||
        !(c->text = core_strdup(s))) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory parsing constraint \"%s\"", s);
        goto out;
    }
    p = s;
    for (size_t k = 0; k < alts; k++) {
        const char *bar = strstr(p, "||");
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        c->n++;
        if ((why = parse_group(&c->groups[k], &rc, p, n)) != NULL) {
            rc = core_error_set(err, rc, "invalid semver constraint \"%s\": %s in \"%.*s\"", s, why,
                                (int)n, p);
            goto out;
        }
        p += n + (bar ? 2 : 0);
    }
    *out = c;
    c = NULL;
out:
    core_semver_constraint_free(c);
    return rc;
}

/* ------------------------------------------------------------------ checking */

static bool has_pre(const core_semver *v)
{
    return v->pre && *v->pre;
}

static bool check_tilde(const core_semver *v, const comparator *c)
{
    if (core_semver_compare(v, &c->con) < 0)
        return false;
    /* ~0.0.0 (and "*") accept everything */
    if (c->con.major == 0 && c->con.minor == 0 && c->con.patch == 0 && !c->minor_dirty &&
        !c->patch_dirty)
        return true;
    if (v->major != c->con.major)
        return false;
    if (v->minor != c->con.minor && !c->minor_dirty)
        return false;
    return true;
}

static bool check_caret(const core_semver *v, const comparator *c)
{
    if (core_semver_compare(v, &c->con) < 0)
        return false;
    if (c->con.major > 0 || c->minor_dirty)
        return v->major == c->con.major;
    if (v->major > 0)
        return false;
    if (c->con.minor > 0 || c->patch_dirty)
        return v->minor == c->con.minor;
    if (v->minor > 0)
        return false;
    return v->patch == c->con.patch;
}

static bool check_ne(const core_semver *v, const comparator *c)
{
    if (c->dirty) {
        if (c->con.major != v->major)
            return true;
        if (c->con.minor != v->minor && !c->minor_dirty)
            return true;
        if (c->minor_dirty)
            return false;
        if (c->con.patch != v->patch && !c->patch_dirty)
            return true;
        if (c->patch_dirty) {
            if (has_pre(v) || has_pre(&c->con))
                return cmp_pre(has_pre(v) ? v->pre : "", has_pre(&c->con) ? c->con.pre : "") != 0;
            return false;
        }
    }
    return core_semver_compare(v, &c->con) != 0;
}

static bool check_gt(const core_semver *v, const comparator *c)
{
    if (!c->dirty)
        return core_semver_compare(v, &c->con) > 0;
    if (v->major > c->con.major)
        return true;
    if (v->major < c->con.major || c->minor_dirty)
        return false;
    if (c->patch_dirty)
        return v->minor > c->con.minor;
    return core_semver_compare(v, &c->con) > 0;
}

static bool check_le(const core_semver *v, const comparator *c)
{
    if (!c->dirty)
        return core_semver_compare(v, &c->con) <= 0;
    if (v->major > c->con.major)
        return false;
    if (v->major == c->con.major && v->minor > c->con.minor && !c->minor_dirty)
        return false;
    return true;
}

static bool check_one(const core_semver *v, const comparator *c, bool include_pre)
{
    if (has_pre(v) && !include_pre)
        return false;
    switch (c->op) {
    case OP_EQ:
        return c->dirty ? check_tilde(v, c) : core_semver_compare(v, &c->con) == 0;
    case OP_NE:
        return check_ne(v, c);
    case OP_GT:
        return check_gt(v, c);
    case OP_LT:
        return core_semver_compare(v, &c->con) < 0;
    case OP_GE:
        return core_semver_compare(v, &c->con) >= 0;
    case OP_LE:
        return check_le(v, c);
    case OP_TILDE:
        return check_tilde(v, c);
    case OP_CARET:
        return check_caret(v, c);
    }
    return false;
}

bool core_semver_constraint_check(const core_semver_constraint *c, const core_semver *v)
{
    if (!c || !v)
        return false;
    for (size_t g = 0; g < c->n; g++) {
        bool ok = true;
        for (size_t k = 0; k < c->groups[g].n && ok; k++)
            ok = check_one(v, &c->groups[g].items[k], c->groups[g].has_pre);
        if (ok)
            return true;
    }
    return false;
}
