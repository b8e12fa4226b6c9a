/*
 * Post-build variable substitution (spec/engine.md §1.4): Flux's envsubst dialect over the
 * YAML text of each built object, with variables from substituteFrom and substitute.
 *
 * Design: the scanner and parser are a port of fluxcd/pkg/envsubst/parse (scan.go, parse.go),
 * kept structurally close so its quirks carry over: `$$` becomes `$` (so `$${x}` is the literal
 * `${x}`), only the braced form is a variable, `${x-d}` is "missing closing brace", a default
 * operator (`:=` `=` `:-` `:+` `:?`) substitutes its argument when the value is empty or
 * unset, and in strict mode a variable without a default operator must be defined. The whole
 * text is parsed before anything is evaluated, as upstream does. Differences: names may use
 * any non-ASCII character (upstream: Unicode letters and digits), and case functions change
 * ASCII letters only. Objects are written with the quoting they had in the source (quoting
 * marks, engine/yaml.h) and read back with YAML 1.1 booleans, as sigs.k8s.io/yaml does in Flux.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "engine/build.h"

#define MAX_NESTING 64
#define R_EOF (-1)
#define VAR_NAME_RE "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
#define SUBST_KEY "kustomize.toolkit.fluxcd.io/substitute"

enum { T_ILLEGAL, T_EOF, T_IDENT, T_LBRACK, T_RBRACK };
enum { S_IDENT = 1, S_LBRACK = 2, S_RBRACK = 4, S_ESCAPE = 8 };
enum { E_DOLLAR = 1, E_BACKSLASH = 2, E_ALL = 3 };

typedef bool (*accept_fn)(long r, size_t i);

typedef struct scanner {
    char *buf; /* mutable: skip() removes escape characters */
    size_t len, pos, start, width;
    unsigned mode, escape;
    accept_fn accept;
} scanner;

typedef enum { N_TEXT, N_FUNC } node_type;

typedef struct node {
    node_type type;
    char *text;  /* N_TEXT */
    char *param; /* N_FUNC: the variable */
    char *name;  /* N_FUNC: the operator ("" for plain ${x}) */
    struct node **args;
    size_t nargs;
} node;

typedef struct parser {
    scanner s;
    int depth;
    const char *error; /* upstream's message */
} parser;

/* ------------------------------------------------------------------ scanner (scan.go) */

static long decode_rune(const char *p, size_t n, size_t *width)
{
    unsigned char c = (unsigned char)p[0];
    size_t need = c < 0x80 ? 0 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    long r = need == 0 ? c : need == 1 ? (c & 0x1F) : need == 2 ? (c & 0x0F) : (c & 0x07);
    if (c >= 0x80 && (need == 0 || need >= n)) {
        *width = 1;
        return 0xFFFD;
    }
    for (size_t k = 1; k <= need; k++) {
        if (((unsigned char)p[k] & 0xC0) != 0x80) {
            *width = 1;
            return 0xFFFD;
        }
        r = (r << 6) | ((unsigned char)p[k] & 0x3F);
    }
    *width = need + 1;
    return r;
}

static long s_read(scanner *s)
{
    long r;
    if (s->pos >= s->len) {
        s->width = 0;
        return R_EOF;
    }
    r = decode_rune(s->buf + s->pos, s->len - s->pos, &s->width);
    s->pos += s->width;
    return r;
}

static void s_unread(scanner *s)
{
    s->pos -= s->width;
}

static long s_peek(scanner *s)
{
    long r = s_read(s);
    s_unread(s);
    return r;
}

/* Drop the byte before pos (an escape character). */
static void s_skip(scanner *s)
{
    memmove(s->buf + s->pos - 1, s->buf + s->pos, s->len - s->pos);
    s->len--;
}

static bool scan_lbrack(scanner *s, long r)
{
    if (!(s->mode & S_LBRACK) || r != '$')
        return false;
    if (s_read(s) == '{')
        return true;
    s_unread(s);
    return false;
}

static bool scan_rbrack(scanner *s, long r)
{
    return (s->mode & S_RBRACK) && r == '}';
}

static bool scan_escaped(scanner *s, long r)
{
    long next;
    if (!(s->mode & S_ESCAPE))
        return false;
    if (r == '$' && (s->escape & E_DOLLAR) && s_peek(s) == '$')
        return true;
    if (r == '\\' && (s->escape & E_BACKSLASH)) {
        next = s_peek(s);
        return next == '/' || next == '\\';
    }
    return false;
}

static bool scan_ident(scanner *s, long r)
{
    if (!(s->mode & S_IDENT))
        return false;
    if (scan_escaped(s, r))
        s_skip(s);
    else if (!s->accept(r, s->pos - s->start))
        return false;
    for (;;) {
        r = s_read(s);
        if (r == R_EOF) {
            s_unread(s);
            break;
        }
        if (scan_lbrack(s, r)) {
            s_unread(s);
            s_unread(s);
            break;
        }
        if (scan_escaped(s, r)) {
            s_skip(s);
            continue;
        }
        if (!s->accept(r, s->pos - s->start)) {
            s_unread(s);
            break;
        }
    }
    return true;
}

static int s_scan(scanner *s)
{
    long r;
    s->start = s->pos;
    r = s_read(s);
    if (r == R_EOF)
        return T_EOF;
    if (scan_lbrack(s, r))
        return T_LBRACK;
    if (scan_rbrack(s, r))
        return T_RBRACK;
    if (scan_ident(s, r))
        return T_IDENT;
    return T_ILLEGAL;
}

static char *s_string(const scanner *s)
{
    return core_strndup(s->buf + s->start, s->pos - s->start);
}

/* ------------------------------------------------------------------ accept functions */

static bool accept_rune(long r, size_t i)
{
    (void)r, (void)i;
    return true;
}

static bool accept_ident(long r, size_t i)
{
    (void)i;
    return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' ||
           r >= 0x80;
}

static bool accept_colon(long r, size_t i)
{
    (void)i;
    return r == ':';
}

static bool accept_one_hash(long r, size_t i)
{
    return r == '#' && i == 1;
}

static bool accept_not_closing(long r, size_t i)
{
    (void)i;
    return r != '}';
}

static bool accept_hash_func(long r, size_t i)
{
    return r == '#' && i < 3;
}

static bool accept_percent_func(long r, size_t i)
{
    return r == '%' && i < 3;
}

static bool accept_default_func(long r, size_t i)
{
    return (i == 1 && r == ':') || (i == 2 && (r == '=' || r == '-' || r == '?' || r == '+'));
}

static bool accept_replace_func(long r, size_t i)
{
    return (i == 1 && r == '/') || (i == 2 && (r == '/' || r == '#' || r == '%'));
}

static bool accept_one_equal(long r, size_t i)
{
    return i == 1 && r == '=';
}

static bool accept_one_colon(long r, size_t i)
{
    return i == 1 && r == ':';
}

static bool reject_colon_close(long r, size_t i)
{
    (void)i;
    return r != ':' && r != '}';
}

static bool accept_slash(long r, size_t i)
{
    (void)i;
    return r == '/';
}

static bool accept_not_slash(long r, size_t i)
{
    (void)i;
    return r != '/';
}

static bool accept_casing_func(long r, size_t i)
{
    return (r == ',' || r == '^') && i < 3;
}

/* ------------------------------------------------------------------ nodes */

static void node_free(node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nargs; i++)
        node_free(n->args[i]);
    core_free(n->args);
    core_free(n->text);
    core_free(n->param);
    core_free(n->name);
    core_free(n);
}

static node *text_node(parser *p)
{
    node *n = core_calloc(1, sizeof(*n));
    if (n && !(n->text = s_string(&p->s))) {
        core_free(n);
        return NULL;
    }
    if (n)
        n->type = N_TEXT;
    return n;
}

static node *func_node(char *param)
{
    node *n = param ? core_calloc(1, sizeof(*n)) : NULL;
    if (!n) {
        core_free(param);
        return NULL;
    }
    n->type = N_FUNC;
    n->param = param;
    return n;
}

static int add_arg(node *fn, node *arg)
{
    node **grown;
    if (!arg)
        return BERTH_ENOMEM;
    if (!(grown = core_realloc(fn->args, (fn->nargs + 1) * sizeof(*grown)))) {
        node_free(arg);
        return BERTH_ENOMEM;
    }
    fn->args = grown;
    fn->args[fn->nargs++] = arg;
    return 0;
}

/* ------------------------------------------------------------------ parser (parse.go) */

static int fail(parser *p, const char *msg)
{
    p->error = msg;
    return BERTH_EINVAL;
}

static int parse_func(parser *p, node **out);

static int set_name(parser *p, node *fn, accept_fn accept)
{
    p->s.accept = accept;
    p->s.mode = S_IDENT;
    if (s_scan(&p->s) != T_IDENT)
        return fail(p, "bad substitution");
    core_free(fn->name);
    return (fn->name = s_string(&p->s)) ? 0 : BERTH_ENOMEM;
}

static int parse_param(parser *p, accept_fn accept, unsigned mode, node **out)
{
    p->s.accept = accept;
    p->s.mode = mode | S_LBRACK;
    switch (s_scan(&p->s)) {
    case T_LBRACK:
        return parse_func(p, out);
    case T_IDENT:
    case T_RBRACK:
        return (*out = text_node(p)) ? 0 : BERTH_ENOMEM;
    default:
        return fail(p, "unable to parse substitution within function");
    }
}

static int param_arg(parser *p, node *fn, accept_fn accept, unsigned mode)
{
    node *arg = NULL;
    int rc = parse_param(p, accept, mode, &arg);
    return rc < 0 ? rc : add_arg(fn, arg);
}

static int consume_rbrack(parser *p)
{
    p->s.mode = S_RBRACK;
    return s_scan(&p->s) == T_RBRACK ? 0 : fail(p, "bad substitution");
}

static int parse_default_func(parser *p, node *fn)
{
    int rc;
    p->s.accept = s_peek(&p->s) == '=' ? accept_one_equal : accept_default_func;
    p->s.mode = S_IDENT;
    if (s_scan(&p->s) != T_IDENT)
        return fail(p, "unable to parse default function");
    if (!(fn->name = s_string(&p->s)))
        return BERTH_ENOMEM;
    for (;;) {
        if (s_peek(&p->s) == '}')
            return consume_rbrack(p);
        if ((rc = param_arg(p, fn, accept_not_closing, S_IDENT)) < 0)
            return rc;
    }
}

static int parse_substr_func(parser *p, node *fn)
{
    int rc, tok;
    if ((rc = set_name(p, fn, accept_one_colon)) < 0 ||
        (rc = param_arg(p, fn, reject_colon_close, S_IDENT)) < 0)
        return rc;
    p->s.accept = accept_colon;
    p->s.mode = S_IDENT | S_RBRACK;
    tok = s_scan(&p->s);
    if (tok == T_RBRACK)
        return 0;
    if (tok != T_IDENT)
        return fail(p, "bad substitution");
    if ((rc = param_arg(p, fn, accept_not_closing, S_IDENT)) < 0)
        return rc;
    return consume_rbrack(p);
}

static int parse_default_or_substr(parser *p, node *fn)
{
    long r;
    s_read(&p->s);
    r = s_peek(&p->s);
    s_unread(&p->s);
    if (r == '=' || r == '-' || r == '?' || r == '+')
        return parse_default_func(p, fn);
    return parse_substr_func(p, fn);
}

static int parse_remove_func(parser *p, node *fn, accept_fn accept)
{
    int rc;
    if ((rc = set_name(p, fn, accept)) < 0 ||
        (rc = param_arg(p, fn, accept_not_closing, S_IDENT)) < 0)
        return rc;
    return consume_rbrack(p);
}

static int parse_replace_func(parser *p, node *fn)
{
    int rc;
    if ((rc = set_name(p, fn, accept_replace_func)) < 0 ||
        (rc = param_arg(p, fn, accept_not_slash, S_IDENT | S_ESCAPE)) < 0)
        return rc;
    p->s.accept = accept_slash;
    p->s.mode = S_IDENT;
    if (s_scan(&p->s) != T_IDENT)
        return fail(p, "bad substitution");
    if (s_peek(&p->s) == '}')
        return consume_rbrack(p);
    if ((rc = param_arg(p, fn, accept_not_closing, S_IDENT | S_ESCAPE)) < 0)
        return rc;
    return consume_rbrack(p);
}

/* ${#var} */
static int parse_len_func(parser *p, node **out)
{
    node *fn = func_node(core_strdup(""));
    int rc;
    if (!fn)
        return BERTH_ENOMEM;
    if ((rc = set_name(p, fn, accept_one_hash)) == 0) {
        p->s.accept = accept_ident;
        p->s.mode = S_IDENT;
        if (s_scan(&p->s) != T_IDENT)
            rc = fail(p, "bad substitution");
        else if (core_free(fn->param), !(fn->param = s_string(&p->s)))
            rc = BERTH_ENOMEM;
        else
            rc = consume_rbrack(p);
    }
    if (rc < 0) {
        node_free(fn);
        return rc;
    }
    *out = fn;
    return 0;
}

/* After the function name: the operator decides the shape. */
static int parse_operator(parser *p, node *fn)
{
    switch (s_peek(&p->s)) {
    case ':':
        return parse_default_or_substr(p, fn);
    case '=':
        return parse_default_func(p, fn);
    case ',':
    case '^': {
        int rc = set_name(p, fn, accept_casing_func);
        return rc < 0 ? rc : consume_rbrack(p);
    }
    case '/':
        return parse_replace_func(p, fn);
    case '#':
        return parse_remove_func(p, fn, accept_hash_func);
    case '%':
        return parse_remove_func(p, fn, accept_percent_func);
    default:
        break;
    }
    p->s.accept = accept_ident;
    p->s.mode = S_RBRACK;
    if (s_scan(&p->s) != T_RBRACK)
        return fail(p, "missing closing brace");
    return (fn->name = core_strdup("")) ? 0 : BERTH_ENOMEM;
}

/* After "${". */
static int parse_func(parser *p, node **out)
{
    node *fn;
    int rc;
    *out = NULL;
    if (++p->depth > MAX_NESTING)
        return fail(p, "substitutions nested too deep");
    p->s.escape = E_ALL;
    if (s_peek(&p->s) == '#') {
        rc = parse_len_func(p, out);
        p->depth--;
        return rc;
    }
    p->s.accept = accept_ident;
    p->s.mode = S_IDENT;
    if (s_scan(&p->s) != T_IDENT)
        return fail(p, "unable to parse variable name");
    if (!(fn = func_node(s_string(&p->s))))
        return BERTH_ENOMEM;
    if ((rc = parse_operator(p, fn)) < 0) {
        node_free(fn);
        return rc;
    }
    p->depth--;
    *out = fn;
    return 0;
}

/* parseAny, as a loop: text and ${...} nodes until the end. */
static int parse_all(parser *p, node *list)
{
    for (;;) {
        node *n = NULL;
        int rc, tok;
        p->s.accept = accept_rune;
        p->s.mode = S_IDENT | S_LBRACK | S_ESCAPE;
        p->s.escape = E_DOLLAR;
        tok = s_scan(&p->s);
        if (tok == T_EOF)
            return 0;
        if (tok == T_IDENT)
            rc = (n = text_node(p)) ? 0 : BERTH_ENOMEM;
        else if (tok == T_LBRACK)
            rc = parse_func(p, &n);
        else
            rc = fail(p, "bad substitution");
        if (rc < 0 || (rc = add_arg(list, n)) < 0)
            return rc;
    }
}

/* ------------------------------------------------------------------ glob (envsubst/path) */

typedef struct str {
    const char *p;
    size_t n;
} str;

static str str_from(const char *p, size_t n)
{
    str s = {p, n};
    return s;
}

static str str_drop(str s, size_t k)
{
    return str_from(s.p + k, s.n - k);
}

/* getEsc: one (possibly escaped) rune of a character class; false = bad pattern. */
static bool get_esc(str *chunk, long *r)
{
    size_t w;
    if (chunk->n == 0 || chunk->p[0] == '-' || chunk->p[0] == ']')
        return false;
    if (chunk->p[0] == '\\') {
        *chunk = str_drop(*chunk, 1);
        if (chunk->n == 0)
            return false;
    }
    *r = decode_rune(chunk->p, chunk->n, &w);
    *chunk = str_drop(*chunk, w);
    return !(*r == 0xFFFD && w == 1) && chunk->n > 0;
}

/* [...] against rune r: 1 matches, 0 does not, -1 bad pattern. chunk starts after '['. */
static int match_class(str *chunk, long r)
{
    bool not_negated = true, match = false;
    int nrange = 0;
    if (chunk->n && chunk->p[0] == '^') {
        not_negated = false;
        *chunk = str_drop(*chunk, 1);
    }
    for (;;) {
        long lo, hi;
        if (chunk->n && chunk->p[0] == ']' && nrange > 0) {
            *chunk = str_drop(*chunk, 1);
            break;
        }
        if (!get_esc(chunk, &lo))
            return -1;
        hi = lo;
        if (chunk->p[0] == '-') {
            *chunk = str_drop(*chunk, 1);
            if (!get_esc(chunk, &hi))
                return -1;
        }
        match = match || (lo <= r && r <= hi);
        nrange++;
    }
    return match == not_negated;
}

/* matchChunk: 1 and *rest on a match, 0 no match, -1 bad pattern. */
static int match_chunk(str chunk, str s, str *rest)
{
    size_t w;
    long r;
    int m;
    while (chunk.n > 0) {
        if (s.n == 0)
            return 0;
        switch (chunk.p[0]) {
        case '[':
            r = decode_rune(s.p, s.n, &w);
            s = str_drop(s, w);
            chunk = str_drop(chunk, 1);
            if ((m = match_class(&chunk, r)) <= 0)
                return m;
            break;
        case '?':
            decode_rune(s.p, s.n, &w);
            s = str_drop(s, w);
            chunk = str_drop(chunk, 1);
            break;
        case '\\':
            chunk = str_drop(chunk, 1);
            if (chunk.n == 0)
                return -1;
            __attribute__((fallthrough)); /* the escaped byte matches literally */
        default:
            if (chunk.p[0] != s.p[0])
                return 0;
            s = str_drop(s, 1);
            chunk = str_drop(chunk, 1);
            break;
        }
    }
    *rest = s;
    return 1;
}

/* scanChunk: leading stars, then up to the next star outside a class. */
static bool scan_chunk(str *pattern, str *chunk)
{
    bool star = false, inrange = false;
    size_t i;
    while (pattern->n && pattern->p[0] == '*') {
        *pattern = str_drop(*pattern, 1);
        star = true;
    }
    for (i = 0; i < pattern->n; i++) {
        char c = pattern->p[i];
        if (c == '\\' && i + 1 < pattern->n)
            i++;
        else if (c == '[')
            inrange = true;
        else if (c == ']')
            inrange = false;
        else if (c == '*' && !inrange)
            break;
    }
    *chunk = str_from(pattern->p, i);
    *pattern = str_drop(*pattern, i);
    return star;
}

/* After a star: try the chunk at every later position of name. */
static int match_after_star(str chunk, str pattern, str *name)
{
    str t;
    int m;
    for (size_t i = 0; i < name->n; i++) {
        if ((m = match_chunk(chunk, str_drop(*name, i + 1), &t)) < 0)
            return -1;
        if (m == 0 || (pattern.n == 0 && t.n > 0))
            continue;
        *name = t;
        return 1;
    }
    return 0;
}

/* path.Match: 1 match, 0 no match, -1 bad pattern. */
static int glob_match(str pattern, str name)
{
    while (pattern.n > 0) {
        str chunk, t;
        bool star = scan_chunk(&pattern, &chunk);
        int m;
        if (star && chunk.n == 0)
            return 1;
        if ((m = match_chunk(chunk, name, &t)) == 1 && (t.n == 0 || pattern.n > 0)) {
            name = t;
            continue;
        }
        if (m < 0)
            return -1;
        if (!star || (m = match_after_star(chunk, pattern, &name)) <= 0)
            return m < 0 ? -1 : 0;
    }
    return name.n == 0;
}

/* ------------------------------------------------------------------ functions (funcs.go) */

static int put_rune(berth_buf *b, long r)
{
    char u[4];
    size_t n;
    if (r < 0x80) {
        u[0] = (char)r, n = 1;
    } else if (r < 0x800) {
        u[0] = (char)(0xC0 | (r >> 6)), u[1] = (char)(0x80 | (r & 0x3F)), n = 2;
    } else if (r < 0x10000) {
        u[0] = (char)(0xE0 | (r >> 12)), u[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        u[2] = (char)(0x80 | (r & 0x3F)), n = 3;
    } else {
        u[0] = (char)(0xF0 | (r >> 18)), u[1] = (char)(0x80 | ((r >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((r >> 6) & 0x3F)), u[3] = (char)(0x80 | (r & 0x3F)), n = 4;
    }
    return berth_buf_put(b, u, n);
}

/* Go's reverse(): runes in reverse order (invalid bytes become U+FFFD). */
static int reverse(str s, berth_buf *out)
{
    long *runes = core_malloc((s.n ? s.n : 1) * sizeof(*runes));
    size_t n = 0, w;
    int rc = 0;
    if (!runes)
        return BERTH_ENOMEM;
    for (size_t i = 0; i < s.n; i += w)
        runes[n++] = decode_rune(s.p + i, s.n - i, &w);
    berth_buf_init(out, 0);
    rc = berth_buf_put(out, "", 0);
    while (n-- > 0 && rc == 0)
        rc = put_rune(out, runes[n]);
    core_free(runes);
    return rc;
}

/* trimShortest / trimLongest on a prefix: *cut = bytes to drop. */
static int trim_prefix(str s, str pat, bool longest, size_t *cut)
{
    *cut = 0;
    for (size_t i = 0; i < s.n; i++) {
        int m = glob_match(pat, str_from(s.p, s.n - i));
        if (m < 0) {
            *cut = 0;
            return 0;
        }
        if (m == 1) {
            *cut = s.n - i;
            if (longest)
                return 0;
        }
    }
    return 0;
}

static int trim_func(str v, str pat, bool suffix, bool longest, berth_buf *out)
{
    berth_buf rv, rp, rres;
    size_t cut;
    int rc;
    if (!suffix) {
        trim_prefix(v, pat, longest, &cut);
        return berth_buf_put(out, v.p + cut, v.n - cut);
    }
    if ((rc = reverse(v, &rv)) < 0)
        return rc;
    if ((rc = reverse(pat, &rp)) == 0) {
        const char *rvp = rv.ptr ? rv.ptr : "";
        trim_prefix(str_from(rvp, rv.len), str_from(rp.ptr ? rp.ptr : "", rp.len), longest, &cut);
        if ((rc = reverse(str_from(rvp + cut, rv.len - cut), &rres)) == 0)
            rc = berth_buf_put(out, rres.ptr ? rres.ptr : "", rres.len);
        berth_buf_dispose(&rres);
    }
    berth_buf_dispose(&rp);
    berth_buf_dispose(&rv);
    return rc;
}

static const char *find_str(str hay, str needle)
{
    if (needle.n == 0)
        return hay.p;
    for (size_t i = 0; i + needle.n <= hay.n; i++) {
        if (memcmp(hay.p + i, needle.p, needle.n) == 0)
            return hay.p + i;
    }
    return NULL;
}

/* strings.Replace(v, old, new, all ? -1 : 1); an empty old inserts between runes. */
static int replace_func(str v, str old, str repl, bool all, berth_buf *out)
{
    size_t w;
    int rc = 0;
    bool done = false;
    while (rc == 0) {
        const char *at = done ? NULL : find_str(v, old);
        if (!at)
            return berth_buf_put(out, v.p, v.n);
        if ((rc = berth_buf_put(out, v.p, (size_t)(at - v.p))) < 0 ||
            (rc = berth_buf_put(out, repl.p, repl.n)) < 0)
            return rc;
        v = str_drop(v, (size_t)(at - v.p) + old.n);
        if (old.n == 0 && v.n) {
            decode_rune(v.p, v.n, &w);
            rc = berth_buf_put(out, v.p, w);
            v = str_drop(v, w);
        } else if (old.n == 0) {
            return 0;
        }
        done = !all;
    }
    return rc;
}

static bool go_atoi(str s, long long *out)
{
    char tmp[32], *end;
    if (s.n == 0 || s.n >= sizeof(tmp))
        return false;
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    if (tmp[0] == ' ' || tmp[0] == '\t')
        return false;
    *out = strtoll(tmp, &end, 10);
    return *end == '\0';
}

static int substr_func(str v, const str *args, size_t nargs, berth_buf *out)
{
    long long pos, len;
    size_t from;
    if (nargs == 0 || !go_atoi(args[0], &pos))
        return berth_buf_put(out, v.p, v.n);
    if (pos < 0 && (pos += (long long)v.n) < 0)
        pos = 0;
    from = (size_t)pos < v.n ? (size_t)pos : v.n;
    if (nargs == 1)
        return berth_buf_put(out, v.p + from, v.n - from);
    if (!go_atoi(args[1], &len))
        return berth_buf_put(out, v.p, v.n);
    if (pos + len >= (long long)v.n)
        return berth_buf_put(out, v.p + from, v.n - from);
    return berth_buf_put(out, v.p + pos, (size_t)(len > 0 ? len : 0));
}

static int case_func(str v, const char *op, berth_buf *out)
{
    bool lower = op[0] == ',', all = op[1] != '\0';
    size_t start = out->len;
    int rc = berth_buf_put(out, v.p, v.n);
    for (size_t i = start; rc == 0 && i < out->len && (all || i == start); i++) {
        char c = out->ptr[i];
        if (lower && c >= 'A' && c <= 'Z')
            out->ptr[i] = (char)(c - 'A' + 'a');
        else if (!lower && c >= 'a' && c <= 'z')
            out->ptr[i] = (char)(c - 'a' + 'A');
    }
    return rc;
}

static bool is_default_op(const char *name)
{
    static const char *const ops[] = {"-", "+", "=", "?", ":-", ":+", ":=", ":?", NULL};
    for (size_t i = 0; ops[i]; i++) {
        if (strcmp(ops[i], name) == 0)
            return true;
    }
    return false;
}

/* lookupFunc + apply: args are the evaluated arguments. */
static int apply_func(const char *name, str v, const str *args, size_t nargs, berth_buf *out)
{
    str none = {"", 0};
    if (strcmp(name, ",") == 0 || strcmp(name, ",,") == 0 || strcmp(name, "^") == 0 ||
        strcmp(name, "^^") == 0)
        return case_func(v, name, out);
    if (strcmp(name, "#") == 0 && nargs == 0)
        return berth_buf_printf(out, "%zu", v.n);
    if (strcmp(name, "#") == 0 || strcmp(name, "##") == 0 || strcmp(name, "%") == 0 ||
        strcmp(name, "%%") == 0)
        return nargs ? trim_func(v, args[0], name[0] == '%', name[1] != '\0', out)
                     : berth_buf_put(out, v.p, v.n);
    if (strcmp(name, ":") == 0)
        return substr_func(v, args, nargs, out);
    if (strcmp(name, "/") == 0 || strcmp(name, "//") == 0)
        return nargs ? replace_func(v, args[0], nargs > 1 ? args[1] : none, name[1] == '/', out)
                     : berth_buf_put(out, v.p, v.n);
    if (strcmp(name, "/#") == 0 && nargs == 2)
        return v.n >= args[0].n && memcmp(v.p, args[0].p, args[0].n) == 0
                   ? replace_func(v, args[0], args[1], false, out)
                   : berth_buf_put(out, v.p, v.n);
    if (strcmp(name, "/%") == 0 && nargs == 2) {
        if (v.n < args[0].n || memcmp(v.p + v.n - args[0].n, args[0].p, args[0].n) != 0)
            return berth_buf_put(out, v.p, v.n);
        return berth_buf_put(out, v.p, v.n - args[0].n) ? BERTH_ENOMEM
                                                        : berth_buf_put(out, args[1].p, args[1].n);
    }
    if (strcmp(name, "/#") == 0 || strcmp(name, "/%") == 0 || v.n > 0)
        return berth_buf_put(out, v.p, v.n);
    for (size_t i = 0; i < nargs; i++) { /* toDefault: the arguments joined */
        if (berth_buf_put(out, args[i].p, args[i].n) < 0)
            return BERTH_ENOMEM;
    }
    return 0;
}

/* ------------------------------------------------------------------ evaluation */

typedef struct eval_ctx {
    const json_t *vars;
    bool strict;
    berth_error **err;
} eval_ctx;

static int eval_node(eval_ctx *ec, const node *n, berth_buf *out);

static int eval_func(eval_ctx *ec, const node *n, berth_buf *out)
{
    berth_buf *bufs = core_calloc(n->nargs ? n->nargs : 1, sizeof(*bufs));
    str *args = core_calloc(n->nargs ? n->nargs : 1, sizeof(*args));
    const json_t *v = json_object_get(ec->vars, n->param);
    int rc = (!bufs || !args) ? BERTH_ENOMEM : 0;
    for (size_t i = 0; rc == 0 && i < n->nargs; i++) {
        berth_buf_init(&bufs[i], 0);
        if ((rc = eval_node(ec, n->args[i], &bufs[i])) == 0)
            args[i] = str_from(bufs[i].ptr ? bufs[i].ptr : "", bufs[i].len);
    }
    if (rc == 0 && !v && ec->strict && !is_default_op(n->name))
        rc = core_error_set(ec->err, BERTH_EINVAL, "variable not set (strict mode): \"%s\"",
                            n->param);
    else if (rc == 0)
        rc = apply_func(n->name,
                        str_from(v ? json_string_value(v) : "", v ? json_string_length(v) : 0),
                        args, n->nargs, out);
    for (size_t i = 0; bufs && i < n->nargs; i++)
        berth_buf_dispose(&bufs[i]);
    core_free(bufs);
    core_free(args);
    return rc;
}

static int eval_node(eval_ctx *ec, const node *n, berth_buf *out)
{
    if (n->type == N_TEXT)
        return berth_buf_puts(out, n->text);
    return eval_func(ec, n, out);
}

int eng_envsubst(char **out, const char *text, const json_t *vars, bool strict, berth_error **err)
{
    parser p;
    node list;
    berth_buf b;
    eval_ctx ec = {vars, strict, err};
    int rc;
    BERTH_ARG_CHECK(out && text);
    *out = NULL;
    memset(&p, 0, sizeof(p));
    memset(&list, 0, sizeof(list));
    berth_buf_init(&b, 0);
    p.s.len = strlen(text);
    if (!(p.s.buf = core_strndup(text, p.s.len)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if ((rc = parse_all(&p, &list)) < 0 && p.error)
        rc = core_error_set(err, BERTH_EINVAL, "%s", p.error);
    for (size_t i = 0; rc == 0 && i < list.nargs; i++)
        rc = eval_node(&ec, list.args[i], &b);
    if (rc == 0 && berth_buf_put(&b, "", 0) == 0 &&
        (*out = core_strndup(b.ptr ? b.ptr : "", b.len)))
        rc = 0;
    else if (rc == 0)
        rc = BERTH_ENOMEM;
    if (rc == BERTH_ENOMEM)
        core_error_set(err, rc, "out of memory");
    for (size_t i = 0; i < list.nargs; i++)
        node_free(list.args[i]);
    core_free(list.args);
    core_free(p.s.buf);
    berth_buf_dispose(&b);
    return rc;
}

/* ------------------------------------------------------------------ post-build */

/* kustomize's Gvk.String(): Kind.version.group, "[noGrp]" for the core group. */
static void gvk_name(const json_t *obj, char *out, size_t size)
{
    const char *api = json_string_value(json_object_get(obj, "apiVersion"));
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *meta_name =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    const char *slash = api ? strchr(api, '/') : NULL;
    if (slash)
        snprintf(out, size, "%s.%s.%.*s/%s", kind ? kind : "[noKind]", slash + 1,
                 (int)(slash - api), api, meta_name ? meta_name : "");
    else
        snprintf(out, size, "%s.%s.[noGrp]/%s", kind ? kind : "[noKind]",
                 api && api[0] ? api : "[noVer]", meta_name ? meta_name : "");
}

static bool opted_out(const json_t *obj)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const char *l = json_string_value(json_object_get(json_object_get(meta, "labels"), SUBST_KEY));
    const char *a =
        json_string_value(json_object_get(json_object_get(meta, "annotations"), SUBST_KEY));
    return (l && strcmp(l, "disabled") == 0) || (a && strcmp(a, "disabled") == 0);
}

/* Copy string values of src into vars, dropping every newline. */
static int add_vars(json_t *vars, const json_t *src, const char *what, berth_error **err)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)(uintptr_t)src, k, v)
    {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), m = 0;
        char *clean;
        if (!s)
            return core_error_set(err, BERTH_EINVAL, "%s: value of \"%s\" is not a string", what,
                                  k);
        if (!(clean = core_malloc(n + 1)))
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            if (s[i] != '\n')
                clean[m++] = s[i];
        }
        if (json_object_set_new(vars, k, json_stringn(clean, m)) < 0) {
            core_free(clean);
            return core_error_set(err, BERTH_ENOMEM, "out of memory");
        }
        core_free(clean);
    }
    return 0;
}

/* substituteFrom in order (later wins), then substitute (wins over all). */
static int load_vars(const eng_postbuild *pb, json_t **out, berth_error **err)
{
    json_t *vars = json_object();
    char what[300];
    int rc = vars ? 0 : core_error_set(err, BERTH_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < pb->from_len; i++) {
        const eng_subst_from *f = &pb->from[i];
        const char *kind = f->kind ? f->kind : "ConfigMap", *name = f->name ? f->name : "";
        snprintf(what, sizeof(what), "substitute from '%s/%s'", kind, name);
        if (!f->data && !f->optional)
            rc = core_error_set(err, BERTH_ENOTFOUND, "%s error: %s \"%s\" not found", what,
                                strcmp(kind, "Secret") == 0 ? "secrets" : "configmaps", name);
        else if (f->data)
            rc = add_vars(vars, f->data, what, err);
    }
    if (rc == 0 && pb->substitute)
        rc = add_vars(vars, pb->substitute, "postBuild.substitute", err);
    if (rc < 0) {
        json_decref(vars);
        return rc;
    }
    *out = vars;
    return 0;
}

static bool valid_var_name(const char *k)
{
    if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z') || k[0] == '_'))
        return false;
    return strspn(k, "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") ==
           strlen(k);
}

static int check_var_names(const json_t *vars, berth_error **err)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)(uintptr_t)vars, k, v)
    {
        if (!valid_var_name(k))
            return core_error_set(err, BERTH_EINVAL, "'%s' var name is invalid, must match '%s'", k,
                                  VAR_NAME_RE);
    }
    return 0;
}

/* Write obj as YAML, substitute, read it back into *out. */
static int substitute_one(const json_t *obj, const json_t *vars, bool strict, json_t **out,
                          berth_error **err)
{
    berth_buf yaml;
    char *text = NULL;
    json_t *docs = NULL;
    int rc;
    berth_buf_init(&yaml, 0);
    if ((rc = check_var_names(vars, err)) < 0 || (rc = eng_yaml_emit_doc(&yaml, obj, err)) < 0)
        goto out;
    if ((rc = eng_envsubst(&text, yaml.ptr ? yaml.ptr : "", vars, strict, err)) < 0) {
        rc = core_error_wrap(err, "variable substitution failed");
        goto out;
    }
    if ((rc = eng_yaml_parse(&docs, text, strlen(text), ENG_YAML_YAML11_BOOLS, "substituted",
                             err)) < 0) {
        rc = core_error_wrap(err, "YAMLToJSON");
        goto out;
    }
    if (json_array_size(docs) != 1 || !json_is_object(json_array_get(docs, 0))) {
        rc = core_error_set(err, BERTH_EINVAL, "YAMLToJSON: the result is not one object");
        goto out;
    }
    *out = json_incref(json_array_get(docs, 0));
out:
    json_decref(docs);
    core_free(text);
    berth_buf_dispose(&yaml);
    return rc;
}

static int substitute_at(json_t *objects, size_t i, const eng_postbuild *pb, json_t **vars,
                         berth_error **err)
{
    json_t *obj = json_array_get(objects, i), *result = NULL;
    char id[300];
    int rc = 0;
    if (!json_is_object(obj) || opted_out(obj))
        return 0;
    gvk_name(obj, id, sizeof(id));
    if (!*vars && (rc = load_vars(pb, vars, err)) < 0)
        return core_error_wrap(err, "post build failed for '%s'", id);
    if (json_object_size(*vars) == 0 && !pb->always)
        return 0;
    if ((rc = substitute_one(obj, *vars, pb->strict, &result, err)) < 0)
        return core_error_wrap(err, "post build failed for '%s': envsubst error", id);
    if (json_array_set_new(objects, i, result) < 0)
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    return 0;
}

int eng_substitute(json_t *objects, const eng_postbuild *pb, berth_error **err)
{
    json_t *vars = NULL;
    int rc = 0;
    BERTH_ARG_CHECK(json_is_array(objects) && pb);
    for (size_t i = 0; rc == 0 && i < json_array_size(objects); i++)
        rc = substitute_at(objects, i, pb, &vars, err);
    json_decref(vars);
    return rc;
}
