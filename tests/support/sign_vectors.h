/*
 * Helpers for the sign/ unit tests (header-only: each test file is its own binary): finding the
 * shared interop vectors and the repository, reading files, running a program with fork/exec.
 *
 * The vectors are never copied into the repository. They are found through $BERTH_VECTORS, else
 * "../shared/vectors" next to the repository root (from $BERTH_SRC, from $BERTH_TESTDATA's
 * parent, or from the working directory). Tests that need them call SIGN_NEED_VECTORS(), which
 * prints "SKIP: vectors not found at PATH" and skips when they are absent.
 */
#ifndef BERTH_TESTS_SUPPORT_SIGN_VECTORS_H
#define BERTH_TESTS_SUPPORT_SIGN_VECTORS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <berth/buf.h>

static char sv_vectors[2048];
static char sv_root[1024];

static inline int sv_is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The repository root: $BERTH_SRC, else $BERTH_TESTDATA/.., else the working directory. */
static inline const char *sv_repo_root(void)
{
    const char *src = getenv("BERTH_SRC");
    const char *td = getenv("BERTH_TESTDATA");
    if (sv_root[0])
        return sv_root;
    if (src && src[0])
        snprintf(sv_root, sizeof(sv_root), "%s", src);
    else if (td && td[0])
        snprintf(sv_root, sizeof(sv_root), "%s/..", td);
    else
        snprintf(sv_root, sizeof(sv_root), ".");
    return sv_root;
}

/* The vectors directory (may not exist). */
static inline const char *sv_vectors_dir(void)
{
    const char *env = getenv("BERTH_VECTORS");
    if (sv_vectors[0])
        return sv_vectors;
    if (env && env[0])
        snprintf(sv_vectors, sizeof(sv_vectors), "%s", env);
    else
        snprintf(sv_vectors, sizeof(sv_vectors), "%s/../shared/vectors", sv_repo_root());
    return sv_vectors;
}

static inline int sv_have_vectors(void)
{
    return sv_is_dir(sv_vectors_dir());
}

#define SIGN_NEED_VECTORS()                                                                        \
    do {                                                                                           \
        if (!sv_have_vectors()) {                                                                  \
            printf("SKIP: vectors not found at %s\n", sv_vectors_dir());                           \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* "<vectors>/<rel>" in a static rotating buffer (8 slots). */
static inline const char *sv_path(const char *rel)
{
    static char slots[8][4096];
    static int next;
    char *p = slots[next++ % 8];
    snprintf(p, 4096, "%s/%s", sv_vectors_dir(), rel);
    return p;
}

/* Read a whole file into b (NUL-terminated); 0 or -1. */
static inline int sv_read(berth_buf *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    size_t n;
    if (!f)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (berth_buf_put(b, chunk, n) < 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    if (!b->ptr)
        berth_buf_put(b, "", 0);
    return 0;
}

/* Read a vector file, trimming one trailing newline when trim is set. */
static inline char *sv_read_vector(const char *rel, size_t *len_out, int trim)
{
    berth_buf b = BERTH_BUF_INIT;
    if (sv_read(&b, sv_path(rel)) < 0) {
        berth_buf_dispose(&b);
        return NULL;
    }
    if (trim && b.len && b.ptr[b.len - 1] == '\n')
        b.ptr[--b.len] = '\0';
    if (len_out)
        *len_out = b.len;
    return berth_buf_detach(&b);
}

static inline int sv_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    if (len && fwrite(data, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

/*
 * Run argv[0] (PATH search) with fork/exec; its stdout and stderr go to out (may be NULL: then
 * discarded). Returns the exit status, or -1 when it could not run or died from a signal.
 */
static inline int sv_run(char *const argv[], berth_buf *out)
{
    int fds[2];
    pid_t pid;
    int status = 0;
    if (pipe(fds) != 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        char chunk[4096];
        ssize_t n = read(fds[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out)
            berth_buf_put(out, chunk, (size_t)n);
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Is a program on PATH? */
static inline int sv_have_program(const char *name)
{
    char sh[] = "sh", dash_c[] = "-c";
    char *argv[] = {sh, dash_c, NULL, NULL};
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
    argv[2] = cmd;
    return sv_run(argv, NULL) == 0;
}

#endif
