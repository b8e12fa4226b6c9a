/*
 * berth events [--for=Kind/name]: the events the engine recorded in the state directory
 * (events.jsonl and its rotated files), oldest first, as a table (TIME, OBJECT, REASON,
 * MESSAGE) or, with -o json, the recorded lines as a JSON array. Needs no lock, so it works
 * while `berth run` is running.
 */
#include <stdlib.h>
#include <string.h>

#include <berth/engine.h>

#include "cli.h"

#define MESSAGE_CELL_MAX 160

/* A message as one table cell (heap): newlines become "; ", long ones end in "...". */
static char *one_line(const char *msg)
{
    char *out = cli_xmalloc(MESSAGE_CELL_MAX + 8); /* + "; " + "..." + NUL */
    size_t o = 0;

    for (; *msg && o < MESSAGE_CELL_MAX; msg++) {
        if (*msg == '\n' && !msg[1])
            break;
        if (*msg == '\n') {
            out[o++] = ';';
            out[o++] = ' ';
        } else {
            out[o++] = *msg;
        }
    }
    if (*msg && !(*msg == '\n' && !msg[1])) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

int cli_events(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "state-dir",
         .kind = CLI_STR,
         .meta = "DIR",
         .def = "./.berth",
         .help = "the state directory of `berth run`"},
        {.name = "for",
         .kind = CLI_STR,
         .meta = "Kind/name",
         .help = "only the events of this object (e.g. Kustomization/app)"},
        {.name = "namespace",
         .shorthand = 'n',
         .kind = CLI_STR,
         .meta = "NS",
         .help = "only the events of objects in this namespace (default: all)"},
        CLI_FLAG_FORMAT("table|json", "output"),
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {.path = "berth events",
                   .usage = "[--for=Kind/name] [-n NAMESPACE] [--state-dir=DIR] [-o json]",
                   .summary = "Show the events the engine recorded.",
                   .details = "Reads STATE/events.jsonl and its rotated files, oldest first.",
                   .examples = "  berth events --for=Kustomization/app --state-dir=./.berth\n"
                               "  berth events -o json",
                   .min_args = 0,
                   .max_args = 0,
                   .flags = flags};
    static const char *const heads[] = {"TIME", "OBJECT", "REASON", "MESSAGE"};
    berth_engine_event *ev = NULL;
    berth_error *err = NULL;
    char *kind = NULL, **cells = NULL;
    const char *name = NULL, *ns, *forv;
    size_t n = 0, shown = 0;
    int rc, code;

    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    if ((forv = cli_str(&cmd, "for")) != NULL) {
        const char *slash = strchr(forv, '/');
        if (!slash || slash == forv || !slash[1] || strchr(slash + 1, '/')) {
            code = cli_usage_error(&cmd, "--for \"%s\" is not Kind/name", forv);
            goto out;
        }
        kind = cli_xmalloc((size_t)(slash - forv) + 1);
        memcpy(kind, forv, (size_t)(slash - forv));
        kind[slash - forv] = '\0';
        name = slash + 1;
    }
    ns = cli_str(&cmd, "namespace");
    if ((rc = berth_engine_events_list(&ev, &n, cli_str(&cmd, "state-dir"), kind, name, &err)) <
        0) {
        code = cli_fail(&cmd, rc, err);
        goto out;
    }
    if (cli_output_format(&cmd) == CLI_OUT_JSON) {
        fputs("[", stdout);
        for (size_t i = 0; i < n; i++) {
            if (ns && strcmp(ev[i].ns, ns) != 0)
                continue;
            printf("%s\n  %s", shown++ ? "," : "", ev[i].json);
        }
        fputs(shown ? "\n]\n" : "]\n", stdout);
        code = CLI_EXIT_OK;
        goto out;
    }
    cells = cli_xmalloc((n + 1) * 4 * sizeof(*cells));
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ev[i].kind) + strlen(ev[i].ns) + strlen(ev[i].name) + 3;
        if (ns && strcmp(ev[i].ns, ns) != 0)
            continue;
        cells[shown * 4] = ev[i].timestamp;
        cells[shown * 4 + 1] = cli_xmalloc(len);
        snprintf(cells[shown * 4 + 1], len, "%s/%s/%s", ev[i].kind, ev[i].ns, ev[i].name);
        cells[shown * 4 + 2] = ev[i].reason;
        cells[shown * 4 + 3] = one_line(ev[i].message);
        shown++;
    }
    if (shown == 0)
        fputs("no events found\n", stderr);
    else
        cli_table(stdout, heads, 4, 4, cells, shown);
    for (size_t i = 0; i < shown; i++) {
        free(cells[i * 4 + 1]);
        free(cells[i * 4 + 3]);
    }
    code = CLI_EXIT_OK;
out:
    free(cells);
    free(kind);
    berth_engine_events_free(ev, n);
    cli_cmd_dispose(&cmd);
    return code;
}
