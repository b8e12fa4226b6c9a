/*
 * YAML <-> jansson for the build stage (engine/yaml.h). Manifests arrive as YAML, the build
 * works on JSON trees, and the result goes out as YAML again; this file is the only place that
 * talks to libyaml.
 *
 * Design: reading walks libyaml's event stream with one recursive function per node kind and
 * resolves plain scalars the way go-yaml v3 does for kustomize (resolve.go): the null and
 * boolean words of the YAML 1.2 core schema, integers through Go's ParseInt with base 0 after
 * removing underscores (so 0x1F, 0o17, 0b11 and 017 are numbers), then the float pattern
 * ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$. Anchors are per document and an alias
 * is a deep copy, charged to a node budget so a billion-laughs file fails instead of eating
 * memory. Writing goes through libyaml's emitter; a string is quoted when a plain scalar would
 * read back as something else under YAML 1.2 or 1.1 (the API server and Flux's post-build
 * parser use YAML 1.1). Thread-safe: no shared state.
 */
#include "engine/yaml.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/core.h"

#define MARK_LEN 4 /* NUL, ESC, 'q', style */
#define EMIT_MAX_DEPTH 1000

static const char mark_magic[3] = {'\0', '\x1b', 'q'};

/* ------------------------------------------------------------------ scalar resolution */

typedef enum { K_STR, K_NULL, K_BOOL, K_INT, K_REAL } scalar_kind;

typedef struct scalar_val {
    json_int_t i;
    double d;
    int b;
} scalar_val;

static bool is_word(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++) {
        if (strlen(*words) == n && memcmp(s, *words, n) == 0)
            return true;
    }
    return false;
}

static const char *const null_words[] = {"~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"true", "True", "TRUE", NULL};
static const char *const false_words[] = {"false", "False", "FALSE", NULL};
static const char *const true11_words[] = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", NULL};
static const char *const false11_words[] = {"n", "N", "no", "No", "NO", "off", "Off", "OFF", NULL};

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 99;
}

/* Base and digits of an unsigned Go integer literal with base 0 (prefix 0x, 0o, 0b or 0). */
static unsigned go_int_base(const char **s)
{
    const char *p = *s;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        *s = p + 2;
        return 16;
    }
    if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        *s = p + 2;
        return 8;
    }
    if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        *s = p + 2;
        return 2;
    }
    if (p[0] == '0' && p[1] != '\0') {
        *s = p + 1;
        return 8;
    }
    return 10;
}

/* strconv.ParseUint(s, 0, 64): false on syntax error or overflow. */
static bool go_parse_uint(const char *s, uint64_t *out)
{
    unsigned base = go_int_base(&s);
    uint64_t v = 0;
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned d = (unsigned)digit_value(*s);
        if (d >= base || v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

/* strconv.ParseInt(s, 0, 64). */
static bool go_parse_int(const char *s, json_int_t *out)
{
    bool neg = (*s == '-');
    uint64_t u;
    if (*s == '-' || *s == '+')
        s++;
    if (!go_parse_uint(s, &u))
        return false;
    if (!neg && u > (uint64_t)INT64_MAX)
        return false;
    if (neg && u > (uint64_t)INT64_MAX + 1)
        return false;
    *out = neg ? (json_int_t)(0 - u) : (json_int_t)u;
    return true;
}

static size_t skip_digits(const char *s)
{
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool yaml_style_float(const char *s)
{
    size_t n;
    if (*s == '-' || *s == '+')
        s++;
    if (*s == '.') {
        if ((n = skip_digits(s + 1)) == 0)
            return false;
        s += 1 + n;
    } else {
        if ((n = skip_digits(s)) == 0)
            return false;
        s += n;
        if (*s == '.')
            s += 1 + skip_digits(s + 1);
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if ((n = skip_digits(s)) == 0)
            return false;
        s += n;
    }
    return *s == '\0';
}

/* Numbers as go-yaml v3 reads them: int, then uint (kept as a double), then float. */
static scalar_kind classify_number(const char *s, size_t n, scalar_val *v)
{
    char buf[80];
    size_t k = 0;
    uint64_t u;
    if (n >= sizeof(buf))
        return K_STR;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0')
            return K_STR;
        if (s[i] != '_')
            buf[k++] = s[i];
    }
    buf[k] = '\0';
    if (go_parse_int(buf, &v->i))
        return K_INT;
    if (go_parse_uint(buf, &u)) {
        v->d = (double)u;
        return K_REAL;
    }
    if (yaml_style_float(buf)) {
        v->d = strtod(buf, NULL);
        return isfinite(v->d) ? K_REAL : K_STR;
    }
    return K_STR;
}

static scalar_kind classify(const char *s, size_t n, bool yaml11, scalar_val *v)
{
    if (n == 0 || is_word(s, n, null_words))
        return K_NULL;
    if (is_word(s, n, true_words) || (yaml11 && is_word(s, n, true11_words))) {
        v->b = 1;
        return K_BOOL;
    }
    if (is_word(s, n, false_words) || (yaml11 && is_word(s, n, false11_words))) {
        v->b = 0;
        return K_BOOL;
    }
    if (memchr("+-.0123456789", s[0], 13))
        return classify_number(s, n, v);
    return K_STR;
}

static json_t *resolve_plain(const char *s, size_t n, bool yaml11)
{
    scalar_val v = {0, 0, 0};
    switch (classify(s, n, yaml11, &v)) {
    case K_NULL:
        return json_null();
    case K_BOOL:
        return json_boolean(v.b);
    case K_INT:
        return json_integer(v.i);
    case K_REAL:
        return json_real(v.d);
    case K_STR:
        break;
    }
    return json_stringn(s, n);
}

/* 2001-12-14, 2001-12-14t21:59:43.10-05:00 ...: a timestamp for YAML 1.1 readers. */
static bool looks_like_timestamp(const char *s, size_t n)
{
    size_t m, d;
    if (n < 8 || skip_digits(s) != 4 || s[4] != '-')
        return false;
    m = skip_digits(s + 5);
    if (m < 1 || m > 2 || s[5 + m] != '-')
        return false;
    d = skip_digits(s + 6 + m);
    return d >= 1 && d <= 2;
}

/* YAML 1.1 sexagesimal numbers (190:20:30) and .inf/.nan. */
static bool looks_like_yaml11_number(const char *s, size_t n)
{
    static const char *const special[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                          "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                          ".NaN",  ".NAN",  NULL};
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    bool colon = false;
    if (is_word(s, n, special))
        return true;
    if (i >= n || s[i] < '0' || s[i] > '9')
        return false;
    for (; i < n; i++) {
        if (s[i] == ':')
            colon = true;
        else if (!memchr("0123456789_.", s[i], 12))
            return false;
    }
    return colon;
}

bool eng_yaml_plain_is_ambiguous(const char *s, size_t len)
{
    scalar_val v;
    if (len == 0 || looks_like_timestamp(s, len) || looks_like_yaml11_number(s, len))
        return true;
    if ((len == 2 && memcmp(s, "<<", 2) == 0) || (len == 1 && s[0] == '='))
        return true;
    return classify(s, len, true, &v) != K_STR;
}

/* ------------------------------------------------------------------ marks */

char eng_yaml_mark(const json_t *s)
{
    const char *v;
    size_t vis;
    if (!json_is_string(s))
        return 0;
    v = json_string_value(s);
    vis = strlen(v);
    if (json_string_length(s) != vis + MARK_LEN || memcmp(v + vis, mark_magic, 3) != 0)
        return 0;
    return v[vis + 3];
}

size_t eng_yaml_strlen(const json_t *s)
{
    if (!json_is_string(s))
        return 0;
    return eng_yaml_mark(s) ? strlen(json_string_value(s)) : json_string_length(s);
}

static json_t *marked_string(const char *v, size_t n, char style)
{
    char *tmp = core_malloc(n + MARK_LEN);
    json_t *s;
    if (!tmp)
        return NULL;
    memcpy(tmp, v, n);
    memcpy(tmp + n, mark_magic, 3);
    tmp[n + 3] = style;
    s = json_stringn(tmp, n + MARK_LEN);
    core_free(tmp);
    return s;
}

static json_t *unmarked_copy(const json_t *s)
{
    return json_stringn(json_string_value(s), strlen(json_string_value(s)));
}

static int unmark_child(json_t *parent, const char *key, size_t index, json_t *child)
{
    json_t *clean;
    if (!eng_yaml_mark(child))
        return eng_yaml_unmark(child);
    if (!(clean = unmarked_copy(child)))
        return BERTH_ENOMEM;
    if (key)
        return json_object_set_new(parent, key, clean) < 0 ? BERTH_ENOMEM : 0;
    return json_array_set_new(parent, index, clean) < 0 ? BERTH_ENOMEM : 0;
}

int eng_yaml_unmark(json_t *v)
{
    const char *key;
    json_t *child;
    size_t i;
    int rc;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child)
        {
            if ((rc = unmark_child(v, key, 0, child)) < 0)
                return rc;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
        {
            if ((rc = unmark_child(v, NULL, i, child)) < 0)
                return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ reading */

typedef struct anchor {
    char *name;
    json_t *node;
    size_t size; /* nodes it holds, charged again for each alias */
} anchor;

typedef struct reader {
    yaml_parser_t parser;
    unsigned flags;
    const char *name;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    size_t nodes;
    int depth;
    berth_error **err;
} reader;

static int read_node(reader *r, yaml_event_t *ev, json_t **out);

static int fail_at(reader *r, const yaml_mark_t *m, const char *what)
{
    return core_error_set(r->err, BERTH_EINVAL, "parsing \"%s\": line %zu column %zu: %s", r->name,
                          m->line + 1, m->column + 1, what);
}

static int oom(reader *r)
{
    return core_error_set(r->err, BERTH_ENOMEM, "parsing \"%s\": out of memory", r->name);
}

static int next_event(reader *r, yaml_event_t *ev)
{
    if (yaml_parser_parse(&r->parser, ev))
        return 0;
    if (r->parser.error == YAML_MEMORY_ERROR)
        return oom(r);
    return fail_at(r, &r->parser.problem_mark,
                   r->parser.problem ? r->parser.problem : "malformed yaml");
}

static int charge(reader *r, const yaml_mark_t *at, size_t n)
{
    if (n > ENG_YAML_MAX_NODES - r->nodes)
        return fail_at(r, at, "too many nodes (aliases expand too far)");
    r->nodes += n;
    return 0;
}

static void drop_anchors(reader *r)
{
    for (size_t i = 0; i < r->n_anchors; i++) {
        core_free(r->anchors[i].name);
        json_decref(r->anchors[i].node);
    }
    r->n_anchors = 0;
}

static int add_anchor(reader *r, const char *name, json_t *node, size_t size)
{
    anchor *a;
    if (r->n_anchors == r->cap_anchors) {
        size_t cap = r->cap_anchors ? r->cap_anchors * 2 : 8;
        anchor *grown = core_realloc(r->anchors, cap * sizeof(*grown));
        if (!grown)
            return oom(r);
        r->anchors = grown;
        r->cap_anchors = cap;
    }
    a = &r->anchors[r->n_anchors];
    if (!(a->name = core_strdup(name)))
        return oom(r);
    a->node = json_incref(node);
    a->size = size;
    r->n_anchors++;
    return 0;
}

static int read_alias(reader *r, const yaml_event_t *ev, json_t **out)
{
    const char *name = (const char *)ev->data.alias.anchor;
    int rc;
    for (size_t i = r->n_anchors; i-- > 0;) {
        if (strcmp(r->anchors[i].name, name) != 0)
            continue;
        if ((rc = charge(r, &ev->start_mark, r->anchors[i].size)) < 0)
            return rc;
        if (!(*out = json_deep_copy(r->anchors[i].node)))
            return oom(r);
        return 0;
    }
    return fail_at(r, &ev->start_mark, "unknown anchor");
}

static bool tag_is(const char *tag, const char *name)
{
    return tag && strcmp(tag, name) == 0;
}

/* An explicit !!int, !!float, !!bool or !!null tag: the text must be of that type. */
static int read_tagged(reader *r, const yaml_event_t *ev, const char *tag, json_t **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    json_t *j = resolve_plain(v, n, false);
    bool ok;
    if (!j)
        return oom(r);
    if (tag_is(tag, YAML_INT_TAG))
        ok = json_is_integer(j);
    else if (tag_is(tag, YAML_FLOAT_TAG))
        ok = json_is_number(j);
    else if (tag_is(tag, YAML_BOOL_TAG))
        ok = json_is_boolean(j);
    else
        ok = json_is_null(j);
    if (ok && json_is_integer(j) && tag_is(tag, YAML_FLOAT_TAG)) {
        json_t *real = json_real((double)json_integer_value(j));
        json_decref(j);
        if (!(j = real))
            return oom(r);
    }
    if (!ok) {
        json_decref(j);
        return fail_at(r, &ev->start_mark, "scalar does not match its explicit tag");
    }
    *out = j;
    return 0;
}

static char style_letter(yaml_scalar_style_t style)
{
    switch (style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
        return 's';
    case YAML_LITERAL_SCALAR_STYLE:
        return 'l';
    case YAML_FOLDED_SCALAR_STYLE:
        return 'f';
    default:
        return 'd';
    }
}

static json_t *quoted_string(reader *r, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    bool has_var = n >= 2 && strstr(v, "${") != NULL;
    if ((r->flags & ENG_YAML_MARK_QUOTED) && has_var)
        return marked_string(v, n, style_letter(ev->data.scalar.style));
    return json_stringn(v, n);
}

static int read_scalar(reader *r, const yaml_event_t *ev, json_t **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    size_t n = ev->data.scalar.length;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    bool typed_tag = tag_is(tag, YAML_INT_TAG) || tag_is(tag, YAML_FLOAT_TAG) ||
                     tag_is(tag, YAML_BOOL_TAG) || tag_is(tag, YAML_NULL_TAG);
    bool string_tag =
        tag_is(tag, "!") || tag_is(tag, YAML_STR_TAG) || tag_is(tag, "tag:yaml.org,2002:binary");

    if (strlen(v) != n)
        return fail_at(r, &ev->start_mark, "a NUL character in a scalar is not supported");
    if (typed_tag && !(r->flags & ENG_YAML_TEXT_SCALARS))
        return read_tagged(r, ev, tag, out);
    if (!plain || string_tag)
        *out = quoted_string(r, ev);
    else if (r->flags & ENG_YAML_TEXT_SCALARS)
        *out = (n == 0 || is_word(v, n, null_words)) ? json_null() : json_stringn(v, n);
    else
        *out = resolve_plain(v, n, (r->flags & ENG_YAML_YAML11_BOOLS) != 0);
    return *out ? 0 : oom(r);
}

static int read_seq(reader *r, const yaml_mark_t *at, json_t **out)
{
    yaml_event_t ev;
    json_t *arr, *item;
    int rc = 0;
    if (!(arr = json_array()))
        return oom(r);
    for (;;) {
        if ((rc = next_event(r, &ev)) < 0)
            break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if ((rc = read_node(r, &ev, &item)) < 0)
            break;
        if (json_array_append_new(arr, item) < 0) {
            rc = oom(r);
            break;
        }
    }
    if (rc < 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return charge(r, at, 1);
}

/* `<<: *base` or `<<: [*a, *b]`: collect keys, the first source of a key wins. */
static int collect_merge(reader *r, const yaml_mark_t *at, json_t *merged, json_t *src)
{
    const char *key;
    json_t *val;
    size_t i;
    int rc;
    if (json_is_array(src)) {
        json_array_foreach(src, i, val)
        {
            if (!json_is_object(val))
                return fail_at(r, at, "merge key value must be a mapping or a list of mappings");
            if ((rc = collect_merge(r, at, merged, val)) < 0)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(src))
        return fail_at(r, at, "merge key value must be a mapping or a list of mappings");
    json_object_foreach(src, key, val)
    {
        if (!json_object_get(merged, key) && json_object_set(merged, key, val) < 0)
            return oom(r);
    }
    return 0;
}

static int apply_merge(reader *r, json_t *obj, json_t *merged)
{
    const char *key;
    json_t *val;
    json_object_foreach(merged, key, val)
    {
        if (!json_object_get(obj, key) && json_object_set(obj, key, val) < 0)
            return oom(r);
    }
    return 0;
}

/* Read a key event; *key_out is heap (core_free), *merge_out tells a plain `<<`. */
static int read_key(reader *r, const yaml_event_t *ev, char **key_out, bool *merge_out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (ev->type != YAML_SCALAR_EVENT)
        return fail_at(r, &ev->start_mark, "only scalar mapping keys are supported");
    if (strlen(v) != n)
        return fail_at(r, &ev->start_mark, "mapping key contains a NUL byte");
    *merge_out = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(v, "<<") == 0;
    if (!(*key_out = core_strndup(v, n)))
        return oom(r);
    return 0;
}

static int read_entry(reader *r, const yaml_event_t *kev, json_t *obj, json_t *merged)
{
    yaml_event_t vev;
    yaml_mark_t at = kev->start_mark;
    char *key = NULL, msg[160];
    bool is_merge = false;
    json_t *val = NULL;
    int rc;
    if ((rc = read_key(r, kev, &key, &is_merge)) < 0)
        return rc;
    if ((rc = next_event(r, &vev)) < 0 || (rc = read_node(r, &vev, &val)) < 0)
        goto out;
    if (is_merge) {
        rc = collect_merge(r, &at, merged, val);
    } else if (json_object_get(obj, key)) {
        snprintf(msg, sizeof(msg), "mapping key \"%.100s\" already defined", key);
        rc = fail_at(r, &at, msg);
    } else if (json_object_set(obj, key, val) < 0) {
        rc = oom(r);
    }
out:
    json_decref(val);
    core_free(key);
    return rc;
}

static int read_map(reader *r, const yaml_mark_t *at, json_t **out)
{
    yaml_event_t ev;
    json_t *obj = json_object(), *merged = json_object();
    int rc = 0;
    if (!obj || !merged) {
        rc = oom(r);
        goto out;
    }
    for (;;) {
        if ((rc = next_event(r, &ev)) < 0)
            goto out;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        rc = read_entry(r, &ev, obj, merged);
        yaml_event_delete(&ev);
        if (rc < 0)
            goto out;
    }
    if ((rc = apply_merge(r, obj, merged)) == 0 && (rc = charge(r, at, 1)) == 0) {
        *out = obj;
        obj = NULL;
    }
out:
    json_decref(obj);
    json_decref(merged);
    return rc;
}

static int read_collection(reader *r, const yaml_event_t *ev, json_t **out)
{
    int rc;
    if (++r->depth > ENG_YAML_MAX_DEPTH)
        rc = fail_at(r, &ev->start_mark, "nesting too deep");
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        rc = read_seq(r, &ev->start_mark, out);
    else
        rc = read_map(r, &ev->start_mark, out);
    r->depth--;
    return rc;
}

/* Read the node that starts with *ev (which this call deletes) into a new *out. */
static int read_node(reader *r, yaml_event_t *ev, json_t **out)
{
    const yaml_char_t *anchor_name = NULL;
    size_t before = r->nodes;
    int rc;
    *out = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        rc = read_alias(r, ev, out);
        break;
    case YAML_SCALAR_EVENT:
        anchor_name = ev->data.scalar.anchor;
        if ((rc = read_scalar(r, ev, out)) == 0)
            rc = charge(r, &ev->start_mark, 1);
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor_name = ev->data.sequence_start.anchor;
        rc = read_collection(r, ev, out);
        break;
    case YAML_MAPPING_START_EVENT:
        anchor_name = ev->data.mapping_start.anchor;
        rc = read_collection(r, ev, out);
        break;
    default:
        rc = fail_at(r, &ev->start_mark, "unexpected yaml event");
        break;
    }
    if (rc == 0 && anchor_name)
        rc = add_anchor(r, (const char *)anchor_name, *out, r->nodes - before);
    yaml_event_delete(ev);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* After DOCUMENT-START: the root node, then DOCUMENT-END. */
static int read_document(reader *r, json_t **out)
{
    yaml_event_t ev;
    int rc;
    *out = NULL;
    if ((rc = next_event(r, &ev)) < 0 || (rc = read_node(r, &ev, out)) < 0)
        return rc;
    if ((rc = next_event(r, &ev)) < 0)
        goto fail;
    if (ev.type != YAML_DOCUMENT_END_EVENT) {
        rc = fail_at(r, &ev.start_mark, "expected the end of the document");
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
    drop_anchors(r);
    return 0;
fail:
    json_decref(*out);
    *out = NULL;
    return rc;
}

static int read_stream(reader *r, json_t *docs)
{
    yaml_event_t ev;
    json_t *doc;
    int rc;
    for (;;) {
        if ((rc = next_event(r, &ev)) < 0)
            return rc;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type != YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        yaml_event_delete(&ev);
        if ((rc = read_document(r, &doc)) < 0)
            return rc;
        if (json_is_null(doc))
            json_decref(doc);
        else if (json_array_append_new(docs, doc) < 0)
            return oom(r);
    }
}

int eng_yaml_parse(json_t **docs_out, const char *data, size_t len, unsigned flags,
                   const char *name, berth_error **err)
{
    reader r;
    json_t *docs = NULL;
    int rc;

    BERTH_ARG_CHECK(docs_out && (data || len == 0));
    *docs_out = NULL;
    memset(&r, 0, sizeof(r));
    r.flags = flags;
    r.name = name ? name : "<input>";
    r.err = err;
    if (!yaml_parser_initialize(&r.parser))
        return oom(&r);
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)(data ? data : ""), len);
    if (!(docs = json_array())) {
        rc = oom(&r);
        goto out;
    }
    if ((rc = read_stream(&r, docs)) == 0) {
        *docs_out = docs;
        docs = NULL;
    }
out:
    drop_anchors(&r);
    core_free(r.anchors);
    yaml_parser_delete(&r.parser);
    json_decref(docs);
    return rc;
}

/* ------------------------------------------------------------------ writing */

typedef struct writer {
    yaml_emitter_t em;
    berth_buf *out;
    bool out_of_memory;
    berth_error **err;
} writer;

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    writer *w = data;
    if (berth_buf_put(w->out, buffer, size) < 0) {
        w->out_of_memory = true;
        return 0;
    }
    return 1;
}

/* yaml_emitter_emit takes the event in every case. */
static int emit(writer *w, yaml_event_t *ev)
{
    if (yaml_emitter_emit(&w->em, ev))
        return 0;
    if (w->out_of_memory || w->em.error == YAML_MEMORY_ERROR)
        return core_error_set(w->err, BERTH_ENOMEM, "emitting yaml: out of memory");
    return core_error_set(w->err, BERTH_EINVAL, "emitting yaml: %s",
                          w->em.problem ? w->em.problem : "emitter error");
}

static int emit_scalar(writer *w, const char *v, size_t n, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)v, (int)n, 1, 1,
                                      style))
        return core_error_set(w->err, BERTH_ENOMEM, "emitting yaml: out of memory");
    return emit(w, &ev);
}

static yaml_scalar_style_t string_style(const char *v, size_t n, char mark)
{
    switch (mark) {
    case 'd':
        return YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    case 's':
        return YAML_SINGLE_QUOTED_SCALAR_STYLE;
    case 'l':
    case 'f': /* same text for substitution; libyaml's folding does not always read back */
        return YAML_LITERAL_SCALAR_STYLE;
    default:
        break;
    }
    if (memchr(v, '\n', n))
        return YAML_LITERAL_SCALAR_STYLE;
    if (eng_yaml_plain_is_ambiguous(v, n))
        return YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    return YAML_ANY_SCALAR_STYLE;
}

static int emit_string(writer *w, const char *v, size_t n, char mark)
{
    if (n > INT32_MAX)
        return core_error_set(w->err, BERTH_EINVAL, "emitting yaml: string too long");
    return emit_scalar(w, v, n, string_style(v, n, mark));
}

/* Shortest text that reads back as the same double, always with a '.' or an exponent. */
static void format_real(char out[48], double d)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 48, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (!strpbrk(out, ".eEn"))
        memcpy(out + strlen(out), ".0", 3);
}

static int emit_value(writer *w, const json_t *v, int depth);

static int emit_object(writer *w, const json_t *v, int depth)
{
    yaml_event_t ev;
    const char *key;
    const json_t *val;
    int rc;
    yaml_mapping_style_t style =
        json_object_size(v) ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE;
    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, style);
    if ((rc = emit(w, &ev)) < 0)
        return rc;
    json_object_foreach((json_t *)(uintptr_t)v, key, val)
    {
        if ((rc = emit_string(w, key, strlen(key), 0)) < 0 ||
            (rc = emit_value(w, val, depth + 1)) < 0)
            return rc;
    }
    yaml_mapping_end_event_initialize(&ev);
    return emit(w, &ev);
}

static int emit_array(writer *w, const json_t *v, int depth)
{
    yaml_event_t ev;
    size_t i;
    const json_t *val;
    int rc;
    yaml_sequence_style_t style =
        json_array_size(v) ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE;
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, style);
    if ((rc = emit(w, &ev)) < 0)
        return rc;
    json_array_foreach(v, i, val)
    {
        if ((rc = emit_value(w, val, depth + 1)) < 0)
            return rc;
    }
    yaml_sequence_end_event_initialize(&ev);
    return emit(w, &ev);
}

static int emit_value(writer *w, const json_t *v, int depth)
{
    char num[48];
    if (depth > EMIT_MAX_DEPTH)
        return core_error_set(w->err, BERTH_EINVAL, "emitting yaml: nesting too deep");
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return emit_object(w, v, depth);
    case JSON_ARRAY:
        return emit_array(w, v, depth);
    case JSON_STRING:
        return emit_string(w, json_string_value(v), eng_yaml_strlen(v), eng_yaml_mark(v));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(w, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        format_real(num, json_real_value(v));
        return emit_scalar(w, num, strlen(num), YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return emit_scalar(w, "true", 4, YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return emit_scalar(w, "false", 5, YAML_PLAIN_SCALAR_STYLE);
    case JSON_NULL:
        break;
    }
    return emit_scalar(w, "null", 4, YAML_PLAIN_SCALAR_STYLE);
}

static int emit_document(writer *w, const json_t *doc)
{
    yaml_event_t ev;
    int rc;
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    if ((rc = emit(w, &ev)) < 0 || (rc = emit_value(w, doc, 0)) < 0)
        return rc;
    yaml_document_end_event_initialize(&ev, 1);
    return emit(w, &ev);
}

/* Emit the documents docs[0..n) (or the single doc when docs is NULL). */
static int emit_stream(berth_buf *out, const json_t *docs, const json_t *single, berth_error **err)
{
    writer w;
    yaml_event_t ev;
    int rc = 0;
    memset(&w, 0, sizeof(w));
    w.out = out;
    w.err = err;
    if (!yaml_emitter_initialize(&w.em))
        return core_error_set(err, BERTH_ENOMEM, "emitting yaml: out of memory");
    yaml_emitter_set_output(&w.em, write_handler, &w);
    yaml_emitter_set_unicode(&w.em, 1);
    yaml_emitter_set_width(&w.em, -1);
    yaml_emitter_set_indent(&w.em, 2);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    if ((rc = emit(&w, &ev)) < 0)
        goto out;
    for (size_t i = 0; single ? i < 1 : i < json_array_size(docs); i++) {
        if ((rc = emit_document(&w, single ? single : json_array_get(docs, i))) < 0)
            goto out;
    }
    yaml_stream_end_event_initialize(&ev);
    if ((rc = emit(&w, &ev)) == 0 && !yaml_emitter_flush(&w.em))
        rc = core_error_set(err, BERTH_ENOMEM, "emitting yaml: out of memory");
out:
    yaml_emitter_delete(&w.em);
    return rc;
}

int eng_yaml_emit(berth_buf *out, const json_t *docs, berth_error **err)
{
    BERTH_ARG_CHECK(out && json_is_array(docs));
    if (json_array_size(docs) == 0)
        return 0;
    return emit_stream(out, docs, NULL, err);
}

int eng_yaml_emit_doc(berth_buf *out, const json_t *doc, berth_error **err)
{
    BERTH_ARG_CHECK(out && doc);
    return emit_stream(out, NULL, doc, err);
}
