/*
 * Docker credential helpers: run `docker-credential-<name> get`, hand it the server URL on
 * stdin and read {"ServerURL","Username","Secret"} from stdout (oci-artifacts.md 3.11).
 *
 * Design: the helper is started with posix_spawnp (never a shell: the helper name comes from a
 * config file). Its stdin is one end of a socketpair so that writing to a helper that already
 * exited gives EPIPE through send(MSG_NOSIGNAL) instead of killing us with SIGPIPE (a library
 * must not touch signal dispositions). stdout and stderr are read together with poll() into
 * bounded buffers; a helper that runs longer than HELPER_TIMEOUT_MS is killed. The reply holds
 * a secret, so every buffer that saw it is wiped.
 */
#include "oci/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#define HELPER_TIMEOUT_MS 30000
#define HELPER_OUT_MAX (64u * 1024u)
#define HELPER_ERR_MAX (4u * 1024u)

extern char **environ;

static bool valid_helper_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

/* Read from whichever of out/err is ready until both are at EOF or the deadline passes. */
static int pump(int out_fd, int err_fd, berth_buf *out, berth_buf *errb, berth_mono_ms deadline)
{
    char chunk[4096];
    int fds[2] = {out_fd, err_fd};
    berth_buf *bufs[2] = {out, errb};
    size_t caps[2] = {HELPER_OUT_MAX, HELPER_ERR_MAX};
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd pfd[2];
        nfds_t n = 0;
        int which[2];
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0) {
                pfd[n].fd = fds[i];
                pfd[n].events = POLLIN;
                pfd[n].revents = 0;
                which[n] = i;
                n++;
            }
        }
        berth_mono_ms left = deadline - core_mono_now();
        if (left <= 0)
            return BERTH_ETIMEOUT;
        int r = poll(pfd, n, (int)(left > 1000 ? 1000 : left));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return BERTH_EIO;
        }
        for (nfds_t k = 0; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            int i = which[k];
            ssize_t got = read(fds[i], chunk, sizeof(chunk));
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                fds[i] = -1; /* closed by the caller */
                continue;
            }
            if (bufs[i]->len + (size_t)got > caps[i]) {
                sodium_memzero(chunk, sizeof(chunk));
                return BERTH_EINVAL;
            }
            if (berth_buf_put(bufs[i], chunk, (size_t)got) < 0) {
                sodium_memzero(chunk, sizeof(chunk));
                return BERTH_ENOMEM;
            }
        }
    }
    sodium_memzero(chunk, sizeof(chunk));
    return 0;
}

static bool contains(const berth_buf *b, const char *needle)
{
    size_t nl = strlen(needle);
    if (!b->ptr)
        return false;
    for (size_t i = 0; i + nl <= b->len; i++)
        if (core_strncasecmp(b->ptr + i, needle, nl) == 0)
            return true;
    return false;
}

/* First line of helper output for an error message (no secrets expected on failure). */
static void first_line(char *dst, size_t cap, const berth_buf *b)
{
    size_t n = 0;
    if (b->ptr)
        while (n + 1 < cap && n < b->len && b->ptr[n] != '\n' && b->ptr[n] != '\r') {
            unsigned char c = (unsigned char)b->ptr[n];
            dst[n] = (c < 0x20 || c > 0x7e) ? '?' : (char)c;
            n++;
        }
    dst[n] = '\0';
}

static int parse_reply(oci_creds *out, const berth_buf *b, const char *prog, berth_error **err)
{
    json_error_t jerr;
    json_t *root = json_loadb(b->ptr ? b->ptr : "", b->len, 0, &jerr);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = core_error_set(err, BERTH_EAUTH, "credential helper \"%s\": reply is not JSON", prog);
        goto out;
    }
    json_t *user = json_object_get(root, "Username");
    json_t *secret = json_object_get(root, "Secret");
    if (!json_is_string(secret) || json_string_length(secret) == 0)
        goto out; /* no secret: anonymous */
    if (json_is_string(user) && strcmp(json_string_value(user), "<token>") == 0) {
        out->identity_token = core_strdup(json_string_value(secret));
        if (!out->identity_token)
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    } else {
        out->username = core_strdup(json_is_string(user) ? json_string_value(user) : "");
        out->password = core_strdup(json_string_value(secret));
        if (!out->username || !out->password)
            rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
out:
    if (json_is_object(root)) {
        json_t *s = json_object_get(root, "Secret");
        if (json_is_string(s))
            sodium_memzero((void *)(uintptr_t)json_string_value(s), json_string_length(s));
    }
    json_decref(root);
    if (rc < 0)
        oci_creds_dispose(out);
    return rc;
}

int oci_credhelper_get(oci_creds *out, const char *helper, const char *server_url,
                       berth_error **err)
{
    int in_sv[2] = {-1, -1};
    int out_p[2] = {-1, -1};
    int err_p[2] = {-1, -1};
    char *prog = NULL;
    berth_buf obuf = BERTH_BUF_INIT, ebuf = BERTH_BUF_INIT;
    posix_spawn_file_actions_t fa;
    bool fa_init = false;
    pid_t pid = -1;
    int rc = 0, status = 0;

    memset(out, 0, sizeof(*out));
    if (!valid_helper_name(helper))
        return core_error_set(err, BERTH_EINVAL, "invalid credential helper name \"%.64s\"",
                              helper);
    if (!(prog = core_sprintf("docker-credential-%s", helper)))
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, in_sv) < 0 || pipe(out_p) < 0 || pipe(err_p) < 0) {
        rc = core_error_errno(err, errno, "credential helper \"%s\"", prog);
        goto out;
    }
    for (int i = 0; i < 2; i++)
        if (set_cloexec(in_sv[i]) < 0 || set_cloexec(out_p[i]) < 0 || set_cloexec(err_p[i]) < 0) {
            rc = core_error_errno(err, errno, "credential helper \"%s\"", prog);
            goto out;
        }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    fa_init = true;
    if (posix_spawn_file_actions_adddup2(&fa, in_sv[1], 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, out_p[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, err_p[1], 2) != 0) {
        rc = core_error_set(err, BERTH_ENOMEM, "out of memory");
        goto out;
    }
    char *argv[] = {prog, (char *)(uintptr_t) "get", NULL};
    int se = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    if (se != 0) {
        pid = -1;
        if (se == ENOENT)
            rc = core_error_set(err, BERTH_EAUTH, "credential helper \"%s\" not found in PATH",
                                prog);
        else
            rc = core_error_errno(err, se, "starting credential helper \"%s\"", prog);
        goto out;
    }
    close_fd(&in_sv[1]);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);

    /* the server URL, then EOF */
    size_t len = strlen(server_url), off = 0;
    while (off < len) {
        ssize_t w = send(in_sv[0], server_url + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* the helper exited early: its status tells */
        off += (size_t)w;
    }
    close_fd(&in_sv[0]);

    int prc = pump(out_p[0], err_p[0], &obuf, &ebuf, core_mono_now() + HELPER_TIMEOUT_MS);
    if (prc < 0)
        kill(pid, SIGKILL); /* timed out or too much output: it must not block us */
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = -1;
            break;
        }
    }
    pid = -1;
    if (prc == BERTH_ETIMEOUT) {
        rc = core_error_set(err, BERTH_ETIMEOUT, "credential helper \"%s\" timed out", prog);
        goto out;
    }
    if (prc < 0) {
        rc = core_error_set(err, BERTH_EAUTH, "credential helper \"%s\": reading its output failed",
                            prog);
        goto out;
    }
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (contains(&obuf, "credentials not found") || contains(&ebuf, "credentials not found"))
            goto out; /* anonymous */
        char line[120];
        first_line(line, sizeof(line), ebuf.len ? &ebuf : &obuf);
        rc = core_error_set(err, BERTH_EAUTH, "credential helper \"%s\" failed: %s", prog,
                            line[0] ? line : "no output");
        goto out;
    }
    rc = parse_reply(out, &obuf, prog, err);
out:
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++) {
        close_fd(&in_sv[i]);
        close_fd(&out_p[i]);
        close_fd(&err_p[i]);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    if (obuf.ptr)
        sodium_memzero(obuf.ptr, obuf.len);
    berth_buf_dispose(&obuf);
    berth_buf_dispose(&ebuf);
    core_free(prog);
    return rc;
}
