/*
 * The Setters strategy of ImageUpdateAutomation: rewrite the YAML scalars marked with
 * `# {"$imagepolicy": "NS:POLICY[:tag|:name|:digest]"}` to the policies' latest references.
 * The result is committed or published as a new config artifact, so a reviewer must see only
 * the marked values change: everything else in the file stays byte-for-byte.
 *
 * Design: libyaml finds the scalars, the original bytes are spliced. Two passes over the text:
 * the scanner pass records each scalar token's exact range (an event's start mark includes
 * its anchor and tag, the token's does not); the parser pass walks the events, tracking
 * whether each scalar is a mapping key or a value, inside flow collections or not, and in
 * which document. For a value scalar, the rest of its line after the token (past blanks and
 * the flow punctuation , ] }) may hold a comment; when that comment is a marker, as Flux reads
 * it (the text after the leading '#'s is a JSON object of strings with a non-empty
 * "$imagepolicy"), the policy is looked up and the new value replaces the token's bytes in
 * the style the scalar had. A plain scalar whose new value would not read back as the same
 * string (YAML 1.1 numbers and booleans as go-yaml v2 resolves them, which kyaml checks
 * before Flux writes, or text a plain scalar can not hold) becomes double-quoted, as in Flux.
 * A new value that would touch a preceding anchor or tag ("&a:old") gets a space before it.
 * libyaml marks count characters, not bytes (a CRLF is two), so marks are turned into byte
 * offsets by walking the UTF-8 text with a forward cursor. Markers in head comments (the line
 * above) are not read: Flux documents the marker as a line comment.
 * Thread-safe: everything is per call.
 */
#include "images/setters.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <yaml.h>

#include "core/core.h"
#include "images/policy.h"

#define MARKER_KEY "$imagepolicy"
#define MAX_DIR_DEPTH 64

/* ------------------------------------------------------------------ report */

void img_setter_report_init(img_setter_report *r)
{
    if (r)
        memset(r, 0, sizeof(*r));
}

void img_setter_report_dispose(img_setter_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_changes; i++) {
        core_free(r->changes[i].marker);
        core_free(r->changes[i].old_value);
        core_free(r->changes[i].new_value);
    }
    for (size_t i = 0; i < r->n_notes; i++) {
        core_free(r->notes[i].marker);
        core_free(r->notes[i].message);
    }
    core_free(r->changes);
    core_free(r->notes);
    core_free(r->used);
    memset(r, 0, sizeof(*r));
}

/* arr (n elements of sz bytes) reallocated with one more, zeroed, element; NULL on OOM. */
static void *grow(void *arr, size_t n, size_t sz)
{
    char *p;
    if (n + 1 > SIZE_MAX / sz || !(p = core_realloc(arr, (n + 1) * sz)))
        return NULL;
    memset(p + n * sz, 0, sz);
    return p;
}

/* Move src's changes and notes to the end of dst's, and merge the used indices. */
static int report_merge(img_setter_report *dst, img_setter_report *src)
{
    size_t nc, nn, nu, k = 0, i = 0, j = 0;
    img_setter_change *c;
    img_setter_note *m;
    size_t *u;

    if (!core_size_add(&nc, dst->n_changes, src->n_changes) ||
        !core_size_add(&nn, dst->n_notes, src->n_notes) ||
        !core_size_add(&nu, dst->n_used, src->n_used))
        return BERTH_ENOMEM;
    if (!(c = core_realloc(dst->changes, (nc ? nc : 1) * sizeof(*c))))
        return BERTH_ENOMEM;
    dst->changes = c;
    if (!(m = core_realloc(dst->notes, (nn ? nn : 1) * sizeof(*m))))
        return BERTH_ENOMEM;
    dst->notes = m;
    if (!(u = core_malloc((nu ? nu : 1) * sizeof(*u))))
        return BERTH_ENOMEM;
    if (src->n_changes)
        memcpy(c + dst->n_changes, src->changes, src->n_changes * sizeof(*c));
    if (src->n_notes)
        memcpy(m + dst->n_notes, src->notes, src->n_notes * sizeof(*m));
    dst->n_changes = nc;
    dst->n_notes = nn;
    src->n_changes = src->n_notes = 0;
    while (i < dst->n_used || j < src->n_used) {
        size_t v;
        if (j == src->n_used || (i < dst->n_used && dst->used[i] <= src->used[j]))
            v = dst->used[i++];
        else
            v = src->used[j++];
        if (k == 0 || u[k - 1] != v)
            u[k++] = v;
    }
    core_free(dst->used);
    dst->used = u;
    dst->n_used = k;
    return 0;
}

/* ------------------------------------------------------------------ scalar rendering */

static bool in_words(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return true;
    return false;
}

/* go-yaml v2's resolveMap: the words a plain scalar can not be a string as. */
static const char *const yaml11_words[] = {
    "y",    "Y",    "yes",   "Yes",   "YES",   "n",     "N",     "no",    "No",   "NO",
    "true", "True", "TRUE",  "false", "False", "FALSE", "on",    "On",    "ON",   "off",
    "Off",  "OFF",  "~",     "null",  "Null",  "NULL",  ".nan",  ".NaN",  ".NAN", ".inf",
    ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", NULL};

static int digit_in(char c, int base)
{
    int d;
    if (c >= '0' && c <= '9')
        d = c - '0';
    else if (c >= 'a' && c <= 'z')
        d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'Z')
        d = c - 'A' + 10;
    else
        return -1;
    return d < base ? d : -1;
}

/* Go's strconv.ParseInt(s, 0, 64) or ParseUint(s, 0, 64) succeeds (s has no '_'). */
static bool go_int(const char *s)
{
    bool neg = false, sign = false;
    int base = 10;
    uint64_t v = 0;
    const char *p = s;

    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        sign = true;
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
        base = 8, p += 2;
    else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
        base = 2, p += 2;
    else if (p[0] == '0' && p[1])
        base = 8, p += 1;
    if (!*p)
        return false;
    for (; *p; p++) {
        int d = digit_in(*p, base);
        if (d < 0 || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (!sign)
        return true; /* ParseUint covers up to 2^64-1 */
    return neg ? v <= (uint64_t)INT64_MAX + 1 : v <= (uint64_t)INT64_MAX;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool yaml_style_float(const char *s)
{
    size_t i = 0, d = 0;
    if (s[i] == '+' || s[i] == '-')
        i++;
    if (s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, d++;
        if (d == 0)
            return false;
    } else {
        while (s[i] >= '0' && s[i] <= '9')
            i++, d++;
        if (d == 0)
            return false;
        if (s[i] == '.')
            for (i++; s[i] >= '0' && s[i] <= '9'; i++)
                ;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        d = 0;
        if (s[i] == '+' || s[i] == '-')
            i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, d++;
        if (d == 0)
            return false;
    }
    return s[i] == '\0';
}

/*
 * kyaml's IsValueNonString: v, unquoted, reads as something other than a string under
 * go-yaml v2 (YAML 1.1). Timestamps count as strings there. Flux double-quotes such values.
 */
static bool yaml11_non_string(const char *v)
{
    char *plain;
    bool r = false;
    double f;
    size_t k = 0;

    if (!*v || strchr(v, '\n'))
        return false;
    if (in_words(v, yaml11_words))
        return true;
    if (v[0] == '.')
        return img_parse_go_float(v, &f);
    if (!((v[0] >= '0' && v[0] <= '9') || v[0] == '+' || v[0] == '-'))
        return false;
    if (!(plain = core_malloc(strlen(v) + 1)))
        return true; /* quoting is always safe */
    for (const char *p = v; *p; p++)
        if (*p != '_')
            plain[k++] = *p;
    plain[k] = '\0';
    if (go_int(plain))
        r = true;
    else if (yaml_style_float(plain) && img_parse_go_float(plain, &f))
        r = true;
    else if (strncmp(plain, "0b", 2) == 0 || strncmp(plain, "-0b", 3) == 0)
        r = go_int(plain + (plain[0] == '-' ? 1 : 0));
    core_free(plain);
    return r;
}

/* v can be written as a plain scalar that reads back as the same text. */
static bool plain_safe(const char *v, bool flow)
{
    size_t n = strlen(v);
    if (n == 0 || strchr("-?:,[]{}#&*!|>'\"%@` \t", v[0]) || v[n - 1] == ' ' || v[n - 1] == '\t' ||
        v[n - 1] == ':' || strncmp(v, "...", 3) == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == ':' && (v[i + 1] == ' ' || v[i + 1] == '\t'))
            return false;
        if (c == '#' && (v[i - 1] == ' ' || v[i - 1] == '\t'))
            return false;
        if (flow && strchr(",[]{}", c))
            return false;
    }
    return true;
}

static int put_double_quoted(berth_buf *b, const char *v)
{
    int rc = berth_buf_put(b, "\"", 1);
    for (const char *p = v; rc == 0 && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            rc = berth_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            rc = berth_buf_puts(b, "\\n");
        else if (c == '\t')
            rc = berth_buf_puts(b, "\\t");
        else if (c == '\r')
            rc = berth_buf_puts(b, "\\r");
        else if (c < 0x20 || c == 0x7f)
            rc = berth_buf_printf(b, "\\x%02x", c);
        else
            rc = berth_buf_put(b, p, 1);
    }
    return rc ? rc : berth_buf_put(b, "\"", 1);
}

static int put_single_quoted(berth_buf *b, const char *v)
{
    int rc = berth_buf_put(b, "'", 1);
    for (const char *p = v; rc == 0 && *p; p++)
        rc = *p == '\'' ? berth_buf_put(b, "''", 2) : berth_buf_put(b, p, 1);
    return rc ? rc : berth_buf_put(b, "'", 1);
}

static bool has_control(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return true;
    return false;
}

/* Write v as a scalar of the given style (see the file comment for when plain turns double). */
static int render(berth_buf *b, const char *v, yaml_scalar_style_t style, bool flow)
{
    if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE && !has_control(v))
        return put_single_quoted(b, v);
    if (style == YAML_PLAIN_SCALAR_STYLE && plain_safe(v, flow) && !yaml11_non_string(v))
        return berth_buf_puts(b, v);
    return put_double_quoted(b, v);
}

/* ------------------------------------------------------------------ markers */

typedef enum { MARK_NONE, MARK_OK, MARK_MALFORMED } mark_kind;

/*
 * Read a comment c[0..n) (from its '#') the way kyaml's FieldMeta does: trim the leading
 * '#'s, unmarshal into map[string]string, take "$imagepolicy". *value_out is a heap copy.
 */
static mark_kind parse_marker(char **value_out, const char *c, size_t n)
{
    json_t *obj = NULL, *v;
    json_error_t jerr;
    const char *key;
    mark_kind k = MARK_MALFORMED;
    bool named = false;

    *value_out = NULL;
    for (size_t i = 0; i + sizeof(MARKER_KEY) - 1 <= n; i++)
        if (memcmp(c + i, MARKER_KEY, sizeof(MARKER_KEY) - 1) == 0) {
            named = true;
            break;
        }
    if (!named)
        return MARK_NONE;
    while (n > 0 && *c == '#')
        c++, n--;
    if (!(obj = json_loadb(c, n, 0, &jerr)) || !json_is_object(obj))
        goto out;
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v) && !json_is_null(v))
            goto out; /* Go's map[string]string refuses other values */
    }
    v = json_object_get(obj, MARKER_KEY);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        goto out;
    if (!(*value_out = core_strdup(json_string_value(v))))
        goto out;
    k = MARK_OK;
out:
    json_decref(obj);
    return k;
}

/* ------------------------------------------------------------------ the rewrite */

typedef struct scalar_tok {
    size_t start, end;   /* character indices */
    size_t line, column; /* of the start, 0-based */
} scalar_tok;

typedef struct frame {
    bool mapping;
    bool flow;
    size_t children;
} frame;

typedef struct edit {
    size_t start, end; /* byte range replaced */
    char *text;
} edit;

typedef struct run {
    const char *text; /* the input, past a UTF-8 BOM */
    size_t len;
    size_t cur_idx, cur_byte; /* the mark-to-byte cursor */
    const img_policy_result *pol;
    size_t npol;
    bool *used;
    img_setter_report rep;
    scalar_tok *toks;
    size_t ntoks;
    edit *edits;
    size_t nedits;
    frame *stack;
    size_t depth, flow_depth;
    size_t doc;
    berth_error **err;
} run;

/* Byte offset of character index idx (libyaml counts code points; a CRLF is two). */
static size_t byte_at(run *r, size_t idx)
{
    if (idx < r->cur_idx)
        r->cur_idx = r->cur_byte = 0;
    while (r->cur_idx < idx && r->cur_byte < r->len) {
        r->cur_byte++;
        while (r->cur_byte < r->len && ((unsigned char)r->text[r->cur_byte] & 0xC0) == 0x80)
            r->cur_byte++;
        r->cur_idx++;
    }
    return r->cur_byte;
}

/* Find the comment at the end of the line from byte pos, past blanks and chars in skip. */
static bool line_comment(run *r, size_t pos, const char *skip, size_t *start_out, size_t *len_out)
{
    size_t e;
    while (pos < r->len && (r->text[pos] == ' ' || r->text[pos] == '\t' ||
                            (r->text[pos] && strchr(skip, r->text[pos]))))
        pos++;
    if (pos >= r->len || r->text[pos] != '#')
        return false;
    for (e = pos; e < r->len && r->text[e] != '\n' && r->text[e] != '\r'; e++)
        ;
    *start_out = pos;
    *len_out = e - pos;
    return true;
}

static int oom(run *r)
{
    return core_error_set(r->err, BERTH_ENOMEM, "out of memory rewriting image setters");
}

static int add_note(run *r, img_setter_note_kind kind, size_t line, const char *marker,
                    const char *fmt, ...) BERTH_PRINTF(5, 6);

static int add_note(run *r, img_setter_note_kind kind, size_t line, const char *marker,
                    const char *fmt, ...)
{
    img_setter_note *notes = grow(r->rep.notes, r->rep.n_notes, sizeof(*notes)), *n;
    berth_buf msg = BERTH_BUF_INIT;
    va_list ap;
    int rc;

    if (!notes)
        return oom(r);
    r->rep.notes = notes;
    n = &notes[r->rep.n_notes++];
    n->kind = kind;
    n->line = line + 1;
    va_start(ap, fmt);
    rc = berth_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    n->marker = core_strdup(marker);
    n->message = rc == 0 ? core_strndup(msg.ptr, msg.len) : NULL;
    berth_buf_dispose(&msg);
    if (!n->marker || !n->message)
        return oom(r);
    return 0;
}

/* Note a marker found in the comment at [cs, cs+cn) that is not applied for reason kind. */
static int note_marker(run *r, size_t cs, size_t cn, size_t line, img_setter_note_kind kind)
{
    char *marker = NULL, *comment;
    int rc = 0;
    mark_kind mk = parse_marker(&marker, r->text + cs, cn);

    if (mk == MARK_NONE)
        return 0;
    if (!(comment = core_strndup(r->text + cs, cn))) {
        core_free(marker);
        return oom(r);
    }
    if (mk == MARK_MALFORMED)
        kind = IMG_NOTE_MALFORMED;
    switch (kind) {
    case IMG_NOTE_MALFORMED:
        rc = add_note(r, kind, line, comment,
                      "comment \"%s\" names $imagepolicy but is not a marker", comment);
        break;
    case IMG_NOTE_BLOCK_SCALAR:
        rc = add_note(r, kind, line, marker, "marker \"%s\" on a block scalar is not applied",
                      marker);
        break;
    case IMG_NOTE_ALIAS:
        rc = add_note(r, kind, line, marker,
                      "marker \"%s\" on an alias is not applied (mark the anchored value)", marker);
        break;
    default:
        rc = add_note(r, IMG_NOTE_NOT_A_SCALAR, line, marker,
                      "marker \"%s\" follows a key without a scalar value: not applied", marker);
        break;
    }
    core_free(comment);
    core_free(marker);
    return rc;
}

static const scalar_tok *find_tok(const run *r, size_t end)
{
    size_t lo = 0, hi = r->ntoks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->toks[mid].end < end)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->ntoks && r->toks[lo].end == end ? &r->toks[lo] : NULL;
}

/*
 * Resolve marker against the policies: *value_out (heap) and *policy_out, or a note.
 * Returns 1 when resolved, 0 when noted, <0 on error.
 */
static int resolve(run *r, char **value_out, size_t *policy_out, img_setter_field *field_out,
                   const char *marker, size_t line)
{
    const char *c1 = strchr(marker, ':'), *c2, *field;
    size_t nslen, namelen;
    const img_policy_result *p = NULL;
    bool digest;

    *value_out = NULL;
    if (!c1)
        return add_note(r, IMG_NOTE_UNKNOWN_POLICY, line, marker,
                        "unknown image policy \"%s\" (want NAMESPACE:POLICY)", marker);
    c2 = strchr(c1 + 1, ':');
    nslen = (size_t)(c1 - marker);
    namelen = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
    for (size_t i = 0; i < r->npol && !p; i++) {
        const img_policy_result *q = &r->pol[i];
        if (q->ns && q->name && strlen(q->ns) == nslen && memcmp(q->ns, marker, nslen) == 0 &&
            strlen(q->name) == namelen && memcmp(q->name, c1 + 1, namelen) == 0) {
            p = q;
            *policy_out = i;
        }
    }
    if (!p)
        return add_note(r, IMG_NOTE_UNKNOWN_POLICY, line, marker, "unknown image policy \"%s\"",
                        marker);
    r->used[*policy_out] = true;
    field = c2 ? c2 + 1 : "";
    digest = p->digest && *p->digest;
    if (!*field) {
        *field_out = IMG_SETTER_IMAGE;
        *value_out =
            core_sprintf("%s%s%s%s%s", p->image ? p->image : "", p->tag && *p->tag ? ":" : "",
                         p->tag ? p->tag : "", digest ? "@" : "", digest ? p->digest : "");
    } else if (strcmp(field, "tag") == 0) {
        *field_out = IMG_SETTER_TAG;
        *value_out = core_sprintf("%s%s%s", p->tag ? p->tag : "", digest ? "@" : "",
                                  digest ? p->digest : "");
    } else if (strcmp(field, "name") == 0) {
        *field_out = IMG_SETTER_NAME;
        *value_out = core_strdup(p->image ? p->image : "");
    } else if (strcmp(field, "digest") == 0 && digest) {
        *field_out = IMG_SETTER_DIGEST;
        *value_out = core_strdup(p->digest);
    } else if (strcmp(field, "digest") == 0) {
        return add_note(r, IMG_NOTE_UNKNOWN_FIELD, line, marker,
                        "marker \"%s\": the policy has no digest (set digestReflectionPolicy)",
                        marker);
    } else {
        return add_note(r, IMG_NOTE_UNKNOWN_FIELD, line, marker,
                        "marker \"%s\": unknown field (want tag, name or digest)", marker);
    }
    if (!*value_out)
        return oom(r);
    return 1;
}

/* A value scalar: apply the marker on its line, if any. */
static int visit_value(run *r, const yaml_event_t *ev)
{
    const scalar_tok *t;
    size_t bs, be, cs, cn, policy = 0;
    char *marker = NULL, *value = NULL;
    img_setter_field field = IMG_SETTER_IMAGE;
    yaml_scalar_style_t style = ev->data.scalar.style;
    berth_buf b = BERTH_BUF_INIT;
    img_setter_change *ch;
    edit *ed;
    mark_kind mk;
    int rc = 0;

    if (ev->start_mark.index == ev->end_mark.index || !(t = find_tok(r, ev->end_mark.index)))
        return 0; /* an empty scalar the parser made up: nothing to rewrite */
    bs = byte_at(r, t->start);
    be = byte_at(r, t->end);
    if (style == YAML_LITERAL_SCALAR_STYLE || style == YAML_FOLDED_SCALAR_STYLE) {
        /* the header line: "| # marker", "|-2 # marker" */
        if (line_comment(r, bs + 1, "+-0123456789", &cs, &cn))
            return note_marker(r, cs, cn, t->line, IMG_NOTE_BLOCK_SCALAR);
        return 0;
    }
    if (!line_comment(r, be, ",]}", &cs, &cn))
        return 0;
    if ((mk = parse_marker(&marker, r->text + cs, cn)) != MARK_OK) {
        core_free(marker);
        return mk == MARK_NONE ? 0 : note_marker(r, cs, cn, ev->end_mark.line, IMG_NOTE_MALFORMED);
    }
    if ((rc = resolve(r, &value, &policy, &field, marker, ev->end_mark.line)) <= 0)
        goto out;
    rc = 0;
    if (strlen(value) == ev->data.scalar.length &&
        memcmp(value, ev->data.scalar.value, ev->data.scalar.length) == 0)
        goto out; /* already current */
    /* "&anchor:old" is an anchor and a plain scalar; "&anchornew" would be one anchor */
    if (bs > 0 && !strchr(" \t\r\n[{,:?", r->text[bs - 1]) && berth_buf_put(&b, " ", 1) < 0) {
        rc = oom(r);
        goto out;
    }
    if (render(&b, value, style, r->flow_depth > 0) < 0 ||
        !(ed = grow(r->edits, r->nedits, sizeof(*ed)))) {
        rc = oom(r);
        goto out;
    }
    r->edits = ed;
    ed = &ed[r->nedits++];
    ed->start = bs;
    ed->end = be;
    ed->text = b.ptr;
    b.ptr = NULL;
    if (!(ch = grow(r->rep.changes, r->rep.n_changes, sizeof(*ch)))) {
        rc = oom(r);
        goto out;
    }
    r->rep.changes = ch;
    ch = &ch[r->rep.n_changes++];
    ch->line = t->line + 1;
    ch->column = t->column + 1;
    ch->offset = bs;
    ch->doc = r->doc;
    ch->policy = policy;
    ch->field = field;
    ch->marker = marker;
    ch->new_value = value;
    marker = value = NULL;
    if (!(ch->old_value =
              core_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length)))
        rc = oom(r);
out:
    berth_buf_dispose(&b);
    core_free(marker);
    core_free(value);
    return rc;
}

/* A key scalar: a marker after "key:" with nothing else on the line is noted. */
static int visit_key(run *r, const yaml_event_t *ev)
{
    const scalar_tok *t;
    size_t p, cs, cn;

    if (ev->start_mark.index == ev->end_mark.index || !(t = find_tok(r, ev->end_mark.index)))
        return 0;
    p = byte_at(r, t->end);
    while (p < r->len && (r->text[p] == ' ' || r->text[p] == '\t'))
        p++;
    if (p >= r->len || r->text[p] != ':')
        return 0;
    if (!line_comment(r, p + 1, "", &cs, &cn))
        return 0;
    return note_marker(r, cs, cn, ev->end_mark.line, IMG_NOTE_NOT_A_SCALAR);
}

static int visit_alias(run *r, const yaml_event_t *ev)
{
    size_t cs, cn;
    if (!line_comment(r, byte_at(r, ev->end_mark.index), ",]}", &cs, &cn))
        return 0;
    return note_marker(r, cs, cn, ev->end_mark.line, IMG_NOTE_ALIAS);
}

static int yaml_fail(run *r, const yaml_parser_t *p)
{
    return core_error_set(r->err, BERTH_EINVAL, "invalid yaml at line %zu column %zu: %s%s%s",
                          p->problem_mark.line + 1, p->problem_mark.column + 1,
                          p->problem ? p->problem : "syntax error", p->context ? " " : "",
                          p->context ? p->context : "");
}

static int scan_tokens(run *r)
{
    yaml_parser_t p;
    yaml_token_t t;
    bool done = false;
    int rc = 0;

    if (!yaml_parser_initialize(&p))
        return oom(r);
    yaml_parser_set_input_string(&p, (const unsigned char *)r->text, r->len);
    while (!done) {
        if (!yaml_parser_scan(&p, &t)) {
            rc = p.error == YAML_MEMORY_ERROR ? oom(r) : yaml_fail(r, &p);
            break;
        }
        if (t.type == YAML_SCALAR_TOKEN) {
            scalar_tok *s = grow(r->toks, r->ntoks, sizeof(*s));
            if (!s) {
                yaml_token_delete(&t);
                rc = oom(r);
                break;
            }
            r->toks = s;
            s = &s[r->ntoks++];
            s->start = t.start_mark.index;
            s->end = t.end_mark.index;
            s->line = t.start_mark.line;
            s->column = t.start_mark.column;
        }
        done = t.type == YAML_STREAM_END_TOKEN;
        yaml_token_delete(&t);
    }
    yaml_parser_delete(&p);
    return rc;
}

/* Count a new node in the current collection; true when it is a mapping key. */
static bool enter_node(run *r)
{
    frame *f;
    if (r->depth == 0)
        return false;
    f = &r->stack[r->depth - 1];
    return f->mapping && f->children++ % 2 == 0;
}

static int walk_events(run *r)
{
    yaml_parser_t p;
    yaml_event_t ev;
    bool done = false;
    size_t cap = 0;
    int rc = 0;

    if (!yaml_parser_initialize(&p))
        return oom(r);
    yaml_parser_set_input_string(&p, (const unsigned char *)r->text, r->len);
    while (!done && rc == 0) {
        bool key;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = p.error == YAML_MEMORY_ERROR ? oom(r) : yaml_fail(r, &p);
            break;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            r->depth = r->flow_depth = 0;
            break;
        case YAML_DOCUMENT_END_EVENT:
            r->doc++;
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            enter_node(r);
            if (r->depth == cap) {
                frame *s = core_realloc(r->stack, (cap ? cap * 2 : 16) * sizeof(*s));
                if (!s) {
                    rc = oom(r);
                    break;
                }
                r->stack = s;
                cap = cap ? cap * 2 : 16;
            }
            r->stack[r->depth].mapping = ev.type == YAML_MAPPING_START_EVENT;
            r->stack[r->depth].flow =
                ev.type == YAML_MAPPING_START_EVENT
                    ? ev.data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                    : ev.data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
            r->stack[r->depth].children = 0;
            r->flow_depth += r->stack[r->depth].flow;
            r->depth++;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (BERTH_ALWAYS(r->depth > 0)) {
                r->depth--;
                r->flow_depth -= r->stack[r->depth].flow;
            }
            break;
        case YAML_SCALAR_EVENT:
            key = enter_node(r);
            rc = key ? visit_key(r, &ev) : visit_value(r, &ev);
            break;
        case YAML_ALIAS_EVENT:
            key = enter_node(r);
            if (!key)
                rc = visit_alias(r, &ev);
            break;
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

static void run_dispose(run *r)
{
    for (size_t i = 0; i < r->nedits; i++)
        core_free(r->edits[i].text);
    core_free(r->edits);
    core_free(r->toks);
    core_free(r->stack);
    core_free(r->used);
    img_setter_report_dispose(&r->rep);
}

int img_setters_apply(berth_buf *out, const char *yaml, size_t len,
                      const img_policy_result *policies, size_t n, img_setter_report *report,
                      berth_error **err)
{
    run r;
    berth_buf b = BERTH_BUF_INIT;
    size_t bom = 0, at = 0;
    int rc = 0;

    BERTH_ARG_CHECK(out && (yaml || len == 0) && (policies || n == 0));
    memset(&r, 0, sizeof(r));
    r.err = err;
    if (!yaml)
        yaml = "";
    if (len >= 2 && (((unsigned char)yaml[0] == 0xFE && (unsigned char)yaml[1] == 0xFF) ||
                     ((unsigned char)yaml[0] == 0xFF && (unsigned char)yaml[1] == 0xFE)))
        return core_error_set(err, BERTH_EINVAL, "invalid yaml: UTF-16 text is not supported");
    if (len >= 3 && memcmp(yaml, "\xEF\xBB\xBF", 3) == 0)
        bom = 3; /* libyaml skips it without counting it in its marks */
    r.text = yaml + bom;
    r.len = len - bom;
    r.pol = policies;
    r.npol = n;
    if (!(r.used = core_calloc(n ? n : 1, sizeof(*r.used)))) {
        rc = oom(&r);
        goto out;
    }
    if ((rc = scan_tokens(&r)) < 0 || (rc = walk_events(&r)) < 0)
        goto out;
    if (out->max)
        berth_buf_init(&b, out->max);
    if ((rc = berth_buf_put(&b, yaml, bom)) < 0)
        goto fail_out;
    for (size_t i = 0; i < r.nedits; i++) {
        if ((rc = berth_buf_put(&b, r.text + at, r.edits[i].start - at)) < 0 ||
            (rc = berth_buf_puts(&b, r.edits[i].text)) < 0)
            goto fail_out;
        at = r.edits[i].end;
    }
    if ((rc = berth_buf_put(&b, r.text + at, r.len - at)) < 0 ||
        (rc = berth_buf_put(out, b.ptr ? b.ptr : "", b.len)) < 0)
        goto fail_out;
    for (size_t i = 0; i < n; i++) {
        size_t *u;
        if (!r.used[i])
            continue;
        if (!(u = grow(r.rep.used, r.rep.n_used, sizeof(*u)))) {
            rc = oom(&r);
            goto out;
        }
        r.rep.used = u;
        u[r.rep.n_used++] = i;
    }
    if (report && report_merge(report, &r.rep) < 0)
        rc = oom(&r);
    goto out;
fail_out:
    if (rc == BERTH_ENOMEM)
        rc = oom(&r);
    else
        rc = core_error_set(err, rc, "rewritten yaml exceeds %zu bytes", out->max);
out:
    berth_buf_dispose(&b);
    run_dispose(&r);
    return rc;
}

/* ------------------------------------------------------------------ directories */

void img_setter_files_dispose(img_setter_files *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        core_free(f->files[i].path);
        img_setter_report_dispose(&f->files[i].report);
    }
    core_free(f->files);
    f->files = NULL;
    f->n = 0;
}

typedef struct walker {
    img_setter_files *out;
    const img_policy_result *pol;
    size_t npol;
    berth_error **err;
} walker;

static bool has_marker(const berth_buf *b)
{
    size_t k = sizeof(MARKER_KEY) - 1;
    for (size_t i = 0; i + k <= b->len; i++)
        if (b->ptr[i] == '$' && memcmp(b->ptr + i, MARKER_KEY, k) == 0)
            return true;
    return false;
}

static int update_file(walker *w, const char *path, const char *rel, mode_t mode)
{
    berth_buf in = BERTH_BUF_INIT, out = BERTH_BUF_INIT;
    img_setter_report rep;
    img_setter_file *f;
    int rc;

    img_setter_report_init(&rep);
    if ((rc = core_fs_read_file(&in, path, IMG_SETTERS_MAX_FILE, w->err)) < 0)
        goto out;
    if (!has_marker(&in))
        goto out;
    if ((rc = img_setters_apply(&out, in.ptr, in.len, w->pol, w->npol, &rep, w->err)) < 0) {
        rc = core_error_wrap(w->err, "updating image setters in \"%s\"", path);
        goto out;
    }
    if (rep.n_changes == 0 && rep.n_notes == 0)
        goto out;
    if (rep.n_changes > 0 &&
        (rc = core_fs_write_atomic(path, out.ptr, out.len, mode & 07777, w->err)) < 0)
        goto out;
    if (!(f = grow(w->out->files, w->out->n, sizeof(*f)))) {
        rc = core_error_set(w->err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    w->out->files = f;
    f = &f[w->out->n];
    if (!(f->path = core_strdup(rel))) {
        rc = core_error_set(w->err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    w->out->n++;
    f->changed = rep.n_changes > 0;
    f->report = rep;
    img_setter_report_init(&rep);
out:
    img_setter_report_dispose(&rep);
    berth_buf_dispose(&in);
    berth_buf_dispose(&out);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(walker *w, const char *dir, const char *rel, int depth)
{
    DIR *d = NULL;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    int rc = 0;

    if (depth > MAX_DIR_DEPTH)
        return core_error_set(w->err, BERTH_EINVAL, "directory \"%s\" is nested too deeply", dir);
    if (!(d = opendir(dir)))
        return core_error_errno(w->err, errno, "opening directory \"%s\"", dir);
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        char **grown;
        if (de->d_name[0] == '.')
            continue;
        if (!(grown = grow(names, n, sizeof(*names)))) {
            rc = core_error_set(w->err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        names = grown;
        if (!(names[n] = core_strdup(de->d_name))) {
            rc = core_error_set(w->err, BERTH_ENOMEM, "out of memory");
            goto out;
        }
        n++;
    }
    if (n)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct stat st;
        char *path = core_sprintf("%s/%s", dir, names[i]);
        char *sub = *rel ? core_sprintf("%s/%s", rel, names[i]) : core_strdup(names[i]);
        if (!path || !sub)
            rc = core_error_set(w->err, BERTH_ENOMEM, "out of memory");
        else if (lstat(path, &st) < 0)
            rc = core_error_errno(w->err, errno, "reading \"%s\"", path);
        else if (S_ISDIR(st.st_mode))
            rc = walk_dir(w, path, sub, depth + 1);
        else if (S_ISREG(st.st_mode) &&
                 (core_str_has_suffix(names[i], ".yaml") || core_str_has_suffix(names[i], ".yml")))
            rc = update_file(w, path, sub, st.st_mode);
        core_free(path);
        core_free(sub);
    }
out:
    for (size_t i = 0; i < n; i++)
        core_free(names[i]);
    core_free(names);
    closedir(d);
    return rc;
}

int img_setters_apply_dir(img_setter_files *out, const char *dir, const img_policy_result *policies,
                          size_t n, berth_error **err)
{
    walker w = {out, policies, n, err};

    BERTH_ARG_CHECK(out && dir && (policies || n == 0));
    if (!core_fs_is_dir(dir))
        return core_error_set(err, BERTH_ENOTFOUND, "update path \"%s\" is not a directory", dir);
    return walk_dir(&w, dir, "", 0);
}
