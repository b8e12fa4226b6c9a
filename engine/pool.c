/*
 * engine/pool.c: the worker pool (engine/pool.h): a mutex-protected job queue and done queue,
 * a condition variable for idle workers and a non-blocking pipe that wakes the loop.
 */
#include "engine/pool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

#define POOL_MAX 64

typedef struct worker {
    eng_pool *pool;
    void *payload;
    pthread_t thread;
    bool started;
} worker;

struct eng_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    eng_job *todo_head, *todo_tail; /* guarded by mu */
    eng_job *done_head, *done_tail; /* guarded by mu */
    bool stopping;                  /* guarded by mu */
    int pipe_rd, pipe_wr;
    worker *workers;
    size_t n;
};

static void push(eng_job **head, eng_job **tail, eng_job *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    eng_pool *p = w->pool;

    for (;;) {
        eng_job *job;
        pthread_mutex_lock(&p->mu);
        while (!p->todo_head && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->todo_head) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        job = p->todo_head;
        p->todo_head = job->next;
        if (!p->todo_head)
            p->todo_tail = NULL;
        pthread_mutex_unlock(&p->mu);

        job->run(job, w->payload);

        pthread_mutex_lock(&p->mu);
        push(&p->done_head, &p->done_tail, job);
        pthread_mutex_unlock(&p->mu);
        /* A full pipe already wakes the loop: EAGAIN is fine. */
        while (write(p->pipe_wr, "", 1) < 0 && errno == EINTR)
            ;
    }
}

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

int eng_pool_new(eng_pool **out, size_t n, void *const *workers, berth_error **err)
{
    eng_pool *p;
    sigset_t all, old;
    int fds[2], rc = 0;

    *out = NULL;
    if (n < 1 || n > POOL_MAX)
        return core_error_set(err, BERTH_EINVAL, "workers must be 1..%d, got %zu", POOL_MAX, n);
    if (!(p = core_calloc(1, sizeof(*p))) || !(p->workers = core_calloc(n, sizeof(*p->workers)))) {
        core_free(p);
        return core_error_set(err, BERTH_ENOMEM, "out of memory");
    }
    p->pipe_rd = p->pipe_wr = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pipe(fds) < 0) {
        rc = core_error_errno(err, errno, "creating the worker pool's pipe");
        goto fail;
    }
    p->pipe_rd = fds[0];
    p->pipe_wr = fds[1];
    if (set_flags(p->pipe_rd) < 0 || set_flags(p->pipe_wr) < 0) {
        rc = core_error_errno(err, errno, "setting up the worker pool's pipe");
        goto fail;
    }
    /* Threads inherit the mask: block everything while creating them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (size_t i = 0; i < n; i++) {
        int e;
        p->workers[i].pool = p;
        p->workers[i].payload = workers ? workers[i] : NULL;
        if ((e = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) != 0) {
            rc = core_error_errno(err, e, "starting worker thread %zu", i + 1);
            break;
        }
        p->workers[i].started = true;
        p->n = i + 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    eng_pool_free(p, NULL);
    return rc;
}

void eng_pool_submit(eng_pool *p, eng_job *job)
{
    pthread_mutex_lock(&p->mu);
    push(&p->todo_head, &p->todo_tail, job);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int eng_pool_fd(const eng_pool *p)
{
    return p->pipe_rd;
}

eng_job *eng_pool_take_done(eng_pool *p)
{
    char buf[256];
    eng_job *list;

    while (read(p->pipe_rd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&p->mu);
    list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    return list;
}

void eng_pool_free(eng_pool *p, eng_job **left)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->n; i++)
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
    if (left)
        *left = p->done_head;
    if (p->pipe_rd >= 0)
        close(p->pipe_rd);
    if (p->pipe_wr >= 0)
        close(p->pipe_wr);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    core_free(p->workers);
    core_free(p);
}
