/*
 * berth generate-key-pair: write a cosign-compatible key pair, <prefix>.key (encrypted, 0600)
 * and <prefix>.pub, as `cosign generate-key-pair` does; cosign can sign and verify with them.
 * Also holds the password reader the signing verbs share (cosign's password sources).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <berth/sign.h>

#include "cli.h"

#define PASSWORD_MAX 1024

/* Read one line from the terminal without echo; the newline is dropped. */
static int prompt_line(char *buf, size_t size, const char *prompt)
{
    struct termios old, quiet;
    size_t n = 0;
    int rc = 0;

    fputs(prompt, stderr);
    fflush(stderr);
    if (tcgetattr(STDIN_FILENO, &old) != 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
        return -1;
    for (;;) {
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == '\n')
            break;
        if (n + 1 >= size) {
            rc = -1;
            break;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    return rc;
}

int cli_password_read(char *buf, size_t size, bool confirm)
{
    const char *env = getenv("BERTH_PASSWORD");
    size_t n = 0;

    if (!env)
        env = getenv("COSIGN_PASSWORD");
    if (env) {
        if (strlen(env) + 1 > size) {
            fputs("berth: the password is too long\n", stderr);
            return -1;
        }
        memcpy(buf, env, strlen(env) + 1);
        return 0;
    }
    if (isatty(STDIN_FILENO)) {
        char again[PASSWORD_MAX];
        int rc = 0;
        if (prompt_line(buf, size, "Enter password for private key: ") != 0) {
            fputs("berth: reading the password failed\n", stderr);
            return -1;
        }
        if (!confirm)
            return 0;
        if (prompt_line(again, sizeof(again), "Enter password for private key again: ") != 0) {
            fputs("berth: reading the password failed\n", stderr);
            rc = -1;
        } else if (strcmp(buf, again) != 0) {
            fputs("berth: passwords do not match\n", stderr);
            rc = -1;
        }
        berth_sign_secret_wipe(again, sizeof(again));
        return rc;
    }
    for (;;) {
        ssize_t r = read(STDIN_FILENO, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "berth: reading the password from stdin: %s\n", strerror(errno));
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n + 1 >= size) {
            fputs("berth: the password on stdin is too long\n", stderr);
            return -1;
        }
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        fputs("berth: the password on stdin contains a NUL byte\n", stderr);
        return -1;
    }
    return 0;
}

int cli_generate_key_pair(int argc, char **argv)
{
    cli_flag flags[] = {
        {.name = "output-key-prefix",
         .kind = CLI_STR,
         .meta = "PREFIX",
         .def = "cosign",
         .help = "write PREFIX.key and PREFIX.pub"},
        {.name = "force", .kind = CLI_BOOL, .help = "overwrite existing files"},
        CLI_FLAGS_COMMON,
        CLI_FLAG_END,
    };
    cli_cmd cmd = {
        .path = "berth generate-key-pair",
        .usage = "[--output-key-prefix=PREFIX] [--force] [flags]",
        .summary = "Generate an ECDSA P-256 key pair for signing, in cosign's format.",
        .details =
            "  The private key is encrypted with a password read from $BERTH_PASSWORD, else\n"
            "  $COSIGN_PASSWORD, else asked twice on the terminal, else read from stdin.\n"
            "  An empty password is allowed. cosign can use both files.",
        .examples = "  berth generate-key-pair\n"
                    "  BERTH_PASSWORD= berth generate-key-pair --output-key-prefix=ci/release",
        .min_args = 0,
        .max_args = 0,
        .flags = flags};
    char password[PASSWORD_MAX];
    const char *prefix;
    berth_error *err = NULL;
    int rc, code;

    password[0] = '\0';
    if ((code = cli_parse(&cmd, argc, argv)) != CLI_CONTINUE)
        goto out;
    prefix = cli_str(&cmd, "output-key-prefix");
    if (!prefix || !prefix[0]) {
        code = cli_usage_error(&cmd, "--output-key-prefix must not be empty");
        goto out;
    }
    if (cli_password_read(password, sizeof(password), true) != 0) {
        code = CLI_EXIT_FAIL;
        goto out;
    }
    if ((rc = berth_sign_key_pair_write(prefix, password, cli_bool(&cmd, "force"), &err)) < 0) {
        bool exists = berth_error_code(err) == BERTH_ECONFLICT;
        code = cli_fail(&cmd, rc, err);
        if (exists)
            fputs("hint: use --force to overwrite\n", stderr);
        goto out;
    }
    printf("Private key written to %s.key\n", prefix);
    printf("Public key written to %s.pub\n", prefix);
    code = CLI_EXIT_OK;
out:
    berth_sign_secret_wipe(password, sizeof(password));
    cli_cmd_dispose(&cmd);
    return code;
}
