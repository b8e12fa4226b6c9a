/*
 * The berth CLI's shared run-time pieces: error printing and exit codes, JSON/YAML scalars,
 * the progress bar, registry clients from flags, the --timeout deadline and allocation that
 * aborts on failure (the CLI may; the library may not).
 *
 * Design: the progress bar keeps one slot per transfer name, so concurrent uploads and a
 * library that reports the same transfer through two callbacks (client and copy) are summed
 * without double counting. It redraws at most every 100 ms and only when stderr is a terminal.
 * The deadline is a SIGALRM whose handler only write()s a prepared message and _exit()s.
 */
#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void *cli_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("berth: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *cli_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("berth: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *cli_xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;
    return memcpy(cli_xmalloc(len), s, len);
}

static const cli_flag *find_flag(const cli_cmd *cmd, const char *name)
{
    for (const cli_flag *f = cmd->flags; f->name; f++) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

/* ---------------------------------------------------------------- errors */
int cli_exit_code(int rc)
{
    return rc == BERTH_EVERIFY ? CLI_EXIT_VERIFY : CLI_EXIT_FAIL;
}

int cli_fail(const cli_cmd *cmd, int rc, berth_error *err)
{
    const cli_flag *debug = find_flag(cmd, "debug");
    berth_buf text = BERTH_BUF_INIT;

    if (err && berth_error_render(err, &text) == 0 && text.ptr)
        fprintf(stderr, "berth: %s", text.ptr);
    else
        fprintf(stderr, "berth: %s failed", cmd->path);
    if (debug && debug->set && strcmp(debug->value, "true") == 0)
        fprintf(stderr, " [%s]", berth_code_name(err ? berth_error_code(err) : rc));
    fputc('\n', stderr);
    berth_buf_dispose(&text);
    berth_error_free(err);
    return cli_exit_code(rc);
}

/* ---------------------------------------------------------------- output */
cli_out cli_output_format(const cli_cmd *cmd)
{
    const cli_flag *f = find_flag(cmd, "output-format");

    if (!f || !f->set)
        return CLI_OUT_TEXT;
    if (strcmp(f->value, "json") == 0)
        return CLI_OUT_JSON;
    if (strcmp(f->value, "yaml") == 0)
        return CLI_OUT_YAML;
    return CLI_OUT_TEXT;
}

void cli_json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_json_object(FILE *f, int indent, const char *const *keys, const char *const *vals,
                     size_t n)
{
    fprintf(f, "%*s{\n", indent, "");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%*s  ", indent, "");
        cli_json_str(f, keys[i]);
        fputs(": ", f);
        cli_json_str(f, vals[i]);
        fputs(i + 1 < n ? ",\n" : "\n", f);
    }
    fprintf(f, "%*s}", indent, "");
}

void cli_table(FILE *f, const char *const *heads, size_t n_cols, size_t stride, char *const *cells,
               size_t n_rows)
{
    size_t *w = cli_xmalloc(n_cols * sizeof(size_t));

    for (size_t k = 0; k < n_cols; k++) {
        w[k] = strlen(heads[k]);
        for (size_t i = 0; i < n_rows; i++)
            w[k] = strlen(cells[i * stride + k]) > w[k] ? strlen(cells[i * stride + k]) : w[k];
    }
    for (size_t i = 0; i <= n_rows; i++) {
        const char *const *row = i == 0 ? heads : (const char *const *)cells + (i - 1) * stride;
        size_t last = n_cols - 1; /* no padding after the last non-empty cell */
        while (last > 0 && row[last][0] == '\0')
            last--;
        for (size_t k = 0; k < last; k++)
            fprintf(f, "%-*s   ", (int)w[k], row[k]);
        fprintf(f, "%s\n", row[last]);
    }
    free(w);
}

void cli_yaml_str(FILE *f, const char *s)
{
    static const char *const reserved[] = {"true", "false", "yes", "no", "on",
                                           "off",  "null",  "y",   "n"};
    size_t len = s ? strlen(s) : 0;
    bool plain = len > 0 && (isalpha((unsigned char)s[0]) || s[0] == '/') && s[len - 1] != ':';

    for (size_t i = 0; plain && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        plain = isalnum(c) || strchr("._/:@+=-", c) != NULL;
    }
    for (size_t i = 0; plain && i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        size_t k = 0;
        while (k < len && reserved[i][k] && tolower((unsigned char)s[k]) == reserved[i][k])
            k++;
        plain = !(k == len && reserved[i][k] == '\0');
    }
    if (plain)
        fputs(s, f);
    else
        cli_json_str(f, s ? s : ""); /* a JSON string is a valid YAML double-quoted scalar */
}

/* ---------------------------------------------------------------- ignore paths */
char *cli_ignore_paths(const cli_cmd *cmd)
{
    char *base = cli_list_join(cmd, "ignore-paths");
    char *add = cli_list_join(cmd, "add-ignore-paths");
    char *all;

    if (!add)
        return base;
    if (!base)
        base = cli_xstrdup(BERTH_ARTIFACT_DEFAULT_IGNORE);
    all = cli_xmalloc(strlen(base) + strlen(add) + 2);
    snprintf(all, strlen(base) + strlen(add) + 2, "%s%s%s", base, *base ? "," : "", add);
    free(base);
    free(add);
    return all;
}

/* ---------------------------------------------------------------- progress */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_progress_init(cli_progress *p, const cli_cmd *cmd)
{
    const cli_flag *quiet = find_flag(cmd, "quiet");

    memset(p, 0, sizeof(*p));
    p->enabled = isatty(2) && !(quiet && quiet->set && strcmp(quiet->value, "true") == 0);
}

static void progress_draw(cli_progress *p, const char *what, int64_t now)
{
    int64_t done = 0, total = 0;
    double secs = (double)(now - p->start_ms) / 1000.0;
    char bar[23] = "";

    for (size_t i = 0; i < p->n; i++) {
        done += p->slot[i].done;
        total = (total < 0 || p->slot[i].total < 0) ? -1 : total + p->slot[i].total;
    }
    if (total > 0) {
        int fill = (int)(20 * (done > total ? total : done) / total);
        bar[0] = '[';
        for (int i = 0; i < 20; i++)
            bar[1 + i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[21] = ']';
        bar[22] = '\0';
    }
    fprintf(stderr, "\r%-24.24s %s %.1f", what, bar, (double)done / 1e6);
    if (total >= 0)
        fprintf(stderr, "/%.1f", (double)total / 1e6);
    fprintf(stderr, " MB  %.1f MB/s\033[K", secs > 0.05 ? (double)done / 1e6 / secs : 0.0);
    p->drawn = true;
    p->last_draw_ms = now;
}

void cli_progress_cb(void *payload, const char *what, int64_t done, int64_t total)
{
    cli_progress *p = payload;
    size_t keylen = sizeof(p->slot[0].what) - 1;
    int64_t now;
    size_t i;

    if (!p || !p->enabled)
        return;
    now = mono_ms();
    if (!p->start_ms)
        p->start_ms = now;
    what = what ? what : "transfer";
    /* the client names a blob by its short hex, a copy by "sha256:<hex>": one slot for both */
    if (strncmp(what, "sha256:", 7) == 0 && strlen(what) > 19)
        what += 7;
    if (strspn(what, "0123456789abcdef") >= 12)
        keylen = 12;
    for (i = 0; i < p->n; i++) {
        if (strncmp(p->slot[i].what, what, keylen) == 0)
            break;
    }
    if (i == p->n && p->n < CLI_PROGRESS_SLOTS) {
        snprintf(p->slot[i].what, sizeof(p->slot[i].what), "%.*s", (int)keylen, what);
        p->n++;
    } else if (i == p->n) {
        i = CLI_PROGRESS_SLOTS - 1; /* full: later transfers share the last slot */
    }
    p->slot[i].done = done;
    p->slot[i].total = total;
    if (p->drawn && now - p->last_draw_ms < 100)
        return;
    progress_draw(p, p->slot[i].what, now);
}

void cli_progress_end(cli_progress *p)
{
    if (p && p->drawn)
        fputs("\r\033[K", stderr);
    if (p)
        p->drawn = false;
}

/* ---------------------------------------------------------------- clients */
/* The side-specific flag (--src-creds) when given, else the global one (--creds). */
static const char *side_str(const cli_cmd *cmd, const char *side, const char *name)
{
    char full[64];
    const cli_flag *f;

    if (side) {
        snprintf(full, sizeof(full), "%s-%s", side, name);
        f = find_flag(cmd, full);
        if (f && f->set)
            return f->value;
    }
    f = find_flag(cmd, name);
    return f ? (f->set ? f->value : f->def) : NULL;
}

static bool flag_true(const cli_cmd *cmd, const char *name)
{
    const cli_flag *f = find_flag(cmd, name);
    return f && f->set && strcmp(f->value, "true") == 0;
}

int cli_client_new(berth_oci_client **out, const cli_cmd *cmd, const char *side, cli_progress *prog,
                   berth_error **err)
{
    berth_oci_client_opts o = {.version = BERTH_OCI_CLIENT_OPTS_VERSION};
    char name[64];
    const cli_flag *f = NULL;

    o.creds = side_str(cmd, side, "creds");
    o.ca_file = side_str(cmd, side, "ca-file");
    o.cert_file = side_str(cmd, side, "cert-file");
    o.key_file = side_str(cmd, side, "key-file");
    o.docker_config = side_str(cmd, side, "docker-config");
    const char *chunk = side_str(cmd, side, "chunk-size");
    if (chunk) {
        char *end = NULL;
        long long v = strtoll(chunk, &end, 10);
        if (!*chunk || *end || v < 0)
            exit(cli_usage_error(cmd, "invalid --chunk-size \"%s\": want a byte count", chunk));
        o.chunk_size = v == 0 ? -1 : v;
    }
    if (side) {
        snprintf(name, sizeof(name), "%s-insecure", side);
        f = find_flag(cmd, name);
    }
    o.insecure =
        (f && f->set) ? strcmp(f->value, "true") == 0 : flag_true(cmd, "insecure-registry");
    o.debug = flag_true(cmd, "debug");
    if (prog && prog->enabled) {
        o.progress = cli_progress_cb;
        o.progress_payload = prog;
    }
    return berth_oci_client_new(out, &o, err);
}

int cli_ref_parse(berth_oci_ref *out, const cli_cmd *cmd, const char *text)
{
    berth_error *err = NULL;
    int rc = berth_oci_ref_parse(out, text, &err);

    if (rc == 0)
        return CLI_CONTINUE;
    cli_fail(cmd, rc, err);
    return CLI_EXIT_USAGE;
}

/* ---------------------------------------------------------------- --timeout */
bool cli_duration_parse(int64_t *ms_out, const char *text)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1.0},
                 {"s", 1e3},   {"m", 6e4},   {"h", 3.6e6}};
    const char *p = text;
    double total = 0.0;

    if (strcmp(text, "0") == 0) {
        *ms_out = 0;
        return true;
    }
    if (!*p)
        return false;
    while (*p) {
        double v = 0.0, scale = 1.0;
        size_t u, digits = 0;
        for (; isdigit((unsigned char)*p); p++, digits++)
            v = v * 10.0 + (*p - '0');
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++, digits++)
                v += (*p - '0') * (scale /= 10.0);
        if (digits == 0)
            return false;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t l = strlen(units[u].unit);
            if (strncmp(p, units[u].unit, l) == 0 && (l > 1 || p[1] != 's'))
                break;
        }
        if (u == sizeof(units) / sizeof(units[0]))
            return false;
        total += v * units[u].ms;
        p += strlen(units[u].unit);
    }
    if (total > 1e12)
        return false;
    *ms_out = (int64_t)total + ((double)(int64_t)total < total ? 1 : 0);
    return true;
}

static char deadline_msg[160];
static size_t deadline_len;

static void on_deadline(int sig)
{
    ssize_t n;
    (void)sig;
    n = write(2, deadline_msg, deadline_len);
    (void)n;
    _exit(CLI_EXIT_FAIL);
}

void cli_deadline_arm(int64_t ms, const char *text)
{
    struct sigaction sa;
    int n;

    if (ms <= 0)
        return;
    n = snprintf(deadline_msg, sizeof(deadline_msg), "%sberth: timed out after %s (--timeout)\n",
                 isatty(2) ? "\r\033[K" : "", text);
    deadline_len = n > 0 && (size_t)n < sizeof(deadline_msg) ? (size_t)n : 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_deadline;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned int)((ms + 999) / 1000));
}
