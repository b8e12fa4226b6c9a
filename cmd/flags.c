/*
 * The berth CLI's flag parser and help printer, shared by every verb.
 *
 * Design: a verb declares a table of cli_flag (name, shorthand, kind, help) and cli_parse fills
 * the results into the same table, so a verb reads its flags by name and the help is generated
 * from the table. Accepted forms follow pflag (what Flux users know): --name=value, --name value,
 * -n value, -nvalue, -n=value, boolean --name / --name=false, combined boolean shorthands (-qh),
 * repeatable list flags, and "--" ending the flags. Values of flags marked CLI_SECRET are copied
 * and wiped from argv at once, so credentials do not linger in /proc/PID/cmdline.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static char true_text[] = "true"; /* the value of a boolean flag given without one */

static cli_flag *find_long(cli_cmd *cmd, const char *name, size_t len)
{
    for (cli_flag *f = cmd->flags; f->name; f++) {
        if ((strlen(f->name) == len && memcmp(f->name, name, len) == 0) ||
            (f->alias && strlen(f->alias) == len && memcmp(f->alias, name, len) == 0))
            return f;
    }
    return NULL;
}

static cli_flag *find_short(cli_cmd *cmd, char c)
{
    for (cli_flag *f = cmd->flags; f->name; f++) {
        if (f->shorthand && f->shorthand == c)
            return f;
    }
    return NULL;
}

const cli_flag *cli_flag_get(const cli_cmd *cmd, const char *name)
{
    for (const cli_flag *f = cmd->flags; f->name; f++) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    fprintf(stderr, "berth: internal error: %s has no flag --%s\n", cmd->path, name);
    abort();
}

const char *cli_str(const cli_cmd *cmd, const char *name)
{
    const cli_flag *f = cli_flag_get(cmd, name);
    return f->set ? f->value : f->def;
}

bool cli_bool(const cli_cmd *cmd, const char *name)
{
    const cli_flag *f = cli_flag_get(cmd, name);
    return f->set && strcmp(f->value, "true") == 0;
}

char *cli_list_join(const cli_cmd *cmd, const char *name)
{
    const cli_flag *f = cli_flag_get(cmd, name);
    size_t len = 1;
    char *s;

    if (!f->set)
        return NULL;
    for (size_t i = 0; i < f->n; i++)
        len += strlen(f->values[i]) + 1;
    s = cli_xmalloc(len);
    s[0] = '\0';
    for (size_t i = 0, at = 0; i < f->n; i++) {
        size_t l = strlen(f->values[i]);
        if (i > 0)
            s[at++] = ',';
        memcpy(s + at, f->values[i], l + 1);
        at += l;
    }
    return s;
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;

    fputs("berth: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun '%s --help' for usage.\n", cmd->path);
    return CLI_EXIT_USAGE;
}

static void wipe(char *s)
{
    volatile char *p = s;
    while (*p)
        *p++ = '\0';
}

static void list_add(cli_flag *f, const char *v, size_t len)
{
    char *copy = cli_xmalloc(len + 1);

    memcpy(copy, v, len);
    copy[len] = '\0';
    f->values = cli_xrealloc(f->values, (f->n + 1) * sizeof(*f->values));
    f->values[f->n++] = copy;
}

static bool choice_ok(const char *choices, const char *v)
{
    size_t len = strlen(v);

    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == len && memcmp(p, v, l) == 0)
            return true;
        p += l + (bar ? 1 : 0);
    }
    return false;
}

/* Record value (a pointer into argv) for f; shown is how the user spelled the flag. */
static int set_value(cli_cmd *cmd, cli_flag *f, char *value, const char *shown)
{
    if (f->kind == CLI_BOOL) {
        if (strcmp(value, "true") && strcmp(value, "1") && strcmp(value, "false") &&
            strcmp(value, "0"))
            return cli_usage_error(cmd, "invalid value \"%s\" for %s: want true or false", value,
                                   shown);
        f->value = (value[0] == 't' || value[0] == '1') ? "true" : "false";
    } else if (f->kind == CLI_STR) {
        if (f->choices && !choice_ok(f->choices, value))
            return cli_usage_error(cmd, "invalid value \"%s\" for %s: want one of %s", value, shown,
                                   f->choices);
        f->value = value;
        if (f->attrs & CLI_SECRET) {
            char *copy = cli_xstrdup(value);
            cmd->secrets = cli_xrealloc(cmd->secrets, (cmd->n_secrets + 1) * sizeof(char *));
            cmd->secrets[cmd->n_secrets++] = copy;
            f->value = copy;
            wipe(value);
        }
    } else if (f->attrs & CLI_CSV) {
        for (const char *p = value;;) {
            const char *comma = strchr(p, ',');
            size_t l = comma ? (size_t)(comma - p) : strlen(p);
            if (l > 0 || !comma)
                list_add(f, p, l);
            if (!comma)
                break;
            p = comma + 1;
        }
    } else {
        list_add(f, value, strlen(value));
    }
    f->set = true;
    return CLI_CONTINUE;
}

/* One argument starting with "--" (not "--" itself); *i may advance past a separate value. */
static int parse_long(cli_cmd *cmd, int argc, char **argv, int *i)
{
    char *name = argv[*i] + 2;
    char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    cli_flag *f = find_long(cmd, name, len);

    if (!f)
        return cli_usage_error(cmd, "unknown flag \"--%.*s\" for \"%s\"", (int)len, name,
                               cmd->path);
    if (eq)
        return set_value(cmd, f, eq + 1, argv[*i]);
    if (f->kind == CLI_BOOL)
        return set_value(cmd, f, true_text, argv[*i]);
    if (*i + 1 >= argc)
        return cli_usage_error(cmd, "flag needs an argument: --%s", f->name);
    *i += 1;
    return set_value(cmd, f, argv[*i], f->name);
}

/* One argument "-x...": a shorthand, possibly several booleans or a value glued on. */
static int parse_short(cli_cmd *cmd, int argc, char **argv, int *i)
{
    char *a = argv[*i];

    for (size_t k = 1; a[k]; k++) {
        cli_flag *f = find_short(cmd, a[k]);
        char shown[3] = {'-', a[k], '\0'};
        if (!f)
            return cli_usage_error(cmd, "unknown shorthand flag \"-%c\" in \"%s\" for \"%s\"", a[k],
                                   a, cmd->path);
        if (a[k + 1] == '=')
            return set_value(cmd, f, a + k + 2, shown);
        if (f->kind == CLI_BOOL) {
            int rc = set_value(cmd, f, true_text, shown);
            if (rc != CLI_CONTINUE)
                return rc;
            continue;
        }
        if (a[k + 1])
            return set_value(cmd, f, a + k + 1, shown);
        if (*i + 1 >= argc)
            return cli_usage_error(cmd, "flag needs an argument: -%c", a[k]);
        *i += 1;
        return set_value(cmd, f, argv[*i], shown);
    }
    return CLI_CONTINUE;
}

static int arm_timeout(cli_cmd *cmd)
{
    const char *text;
    int64_t ms;

    if (!find_long(cmd, "timeout", 7))
        return CLI_CONTINUE;
    text = cli_str(cmd, "timeout");
    if (!text || !cli_duration_parse(&ms, text))
        return cli_usage_error(cmd, "invalid duration \"%s\" for --timeout (e.g. 30s, 5m, 1h30m)",
                               text ? text : "");
    cli_deadline_arm(ms, text);
    return CLI_CONTINUE;
}

int cli_parse(cli_cmd *cmd, int argc, char **argv)
{
    bool only_args = false;
    int rc;

    cmd->args = cli_xmalloc(((size_t)argc + 1) * sizeof(char *));
    cmd->n_args = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == '\0') {
            cmd->args[cmd->n_args++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = true;
            continue;
        }
        rc = a[1] == '-' ? parse_long(cmd, argc, argv, &i) : parse_short(cmd, argc, argv, &i);
        if (rc != CLI_CONTINUE)
            return rc;
    }
    if (cli_bool(cmd, "help")) {
        cli_help(cmd, stdout);
        return CLI_EXIT_OK;
    }
    for (const cli_flag *f = cmd->flags; f->name; f++) {
        if ((f->attrs & CLI_REQUIRED) && !f->set)
            return cli_usage_error(cmd, "required flag \"--%s\" not set for \"%s\"", f->name,
                                   cmd->path);
    }
    if (cmd->n_args < cmd->min_args || cmd->n_args > cmd->max_args) {
        fprintf(stderr, "berth: \"%s\" takes %d argument%s, got %d\nUsage: %s %s\n", cmd->path,
                cmd->max_args, cmd->max_args == 1 ? "" : "s", cmd->n_args, cmd->path, cmd->usage);
        return CLI_EXIT_USAGE;
    }
    return arm_timeout(cmd);
}

void cli_cmd_dispose(cli_cmd *cmd)
{
    if (!cmd)
        return;
    for (cli_flag *f = cmd->flags; f && f->name; f++) {
        for (size_t i = 0; i < f->n; i++)
            free(f->values[i]);
        free(f->values);
        f->values = NULL;
        f->n = 0;
    }
    for (size_t i = 0; i < cmd->n_secrets; i++) {
        wipe(cmd->secrets[i]);
        free(cmd->secrets[i]);
    }
    free(cmd->secrets);
    free(cmd->args);
    cmd->secrets = NULL;
    cmd->args = NULL;
}

/* "  -o, --output-format=FORMAT" into buf. */
static void flag_spec(char *buf, size_t size, const cli_flag *f)
{
    char shorty[8] = "    ";

    if (f->shorthand)
        snprintf(shorty, sizeof(shorty), "-%c, ", f->shorthand);
    snprintf(buf, size, "  %s--%s%s%s", shorty, f->name, f->kind == CLI_BOOL ? "" : "=",
             f->kind == CLI_BOOL ? "" : (f->meta ? f->meta : "VALUE"));
}

void cli_help(const cli_cmd *cmd, FILE *f)
{
    char spec[96];
    size_t width = 0;

    fprintf(f, "%s\n\nUsage:\n  %s %s\n", cmd->summary, cmd->path, cmd->usage);
    if (cmd->details)
        fprintf(f, "\n%s\n", cmd->details);
    if (cmd->examples)
        fprintf(f, "\nExamples:\n%s\n", cmd->examples);
    for (const cli_flag *fl = cmd->flags; fl->name; fl++) {
        flag_spec(spec, sizeof(spec), fl);
        if (strlen(spec) > width)
            width = strlen(spec);
    }
    fputs("\nFlags:\n", f);
    for (const cli_flag *fl = cmd->flags; fl->name; fl++) {
        flag_spec(spec, sizeof(spec), fl);
        fprintf(f, "%-*s  %s", (int)width, spec, fl->help);
        if (fl->choices)
            fprintf(f, " (%s)", fl->choices);
        if (fl->alias)
            fprintf(f, " (also --%s)", fl->alias);
        if (fl->def)
            fprintf(f, " (default %s)", fl->def);
        if (fl->attrs & CLI_REQUIRED)
            fputs(" (required)", f);
        if (fl->kind == CLI_LIST)
            fputs(" (repeatable)", f);
        fputc('\n', f);
    }
}
