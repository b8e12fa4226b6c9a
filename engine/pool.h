/*
 * engine/pool.h: the engine's worker pool (internal, prefix eng_pool_), style.md 2.7.
 *
 * A fixed number of threads take jobs from one queue and put finished jobs on a done queue; each
 * finish writes a byte to a pipe whose read end the loop polls together with the control
 * socket, so the loop wakes on a completion and handles it on its own thread. Workers never
 * touch the loop's state: a job carries copies or borrowed pointers that the loop keeps alive
 * until it takes the job back. The worker threads start with every signal blocked, so signals
 * reach the loop thread and interrupt its poll.
 */
#ifndef BERTH_ENGINE_POOL_H
#define BERTH_ENGINE_POOL_H

#include <stddef.h>

#include <berth/error.h>

typedef struct eng_job eng_job;
/** What a worker does with a job; worker is the payload given for that worker. */
typedef void (*eng_job_fn)(eng_job *job, void *worker);

/** A unit of work; embed it as the first member of the caller's job struct. */
struct eng_job {
    eng_job_fn run; /* called on a worker thread */
    eng_job *next;  /* the pool's queues */
};

typedef struct eng_pool eng_pool;

/**
 * Start n threads (1..64); thread i gets workers[i] as its payload (borrowed until
 * eng_pool_free). Returns 0, BERTH_EINVAL, BERTH_EIO (no pipe or thread) or BERTH_ENOMEM.
 */
int eng_pool_new(eng_pool **out, size_t n, void *const *workers, berth_error **err);
/** Queue a job (loop thread). It comes back through eng_pool_take_done. */
void eng_pool_submit(eng_pool *p, eng_job *job);
/** The read end of the wake pipe, to poll for POLLIN (loop thread). */
int eng_pool_fd(const eng_pool *p);
/** Empty the wake pipe and return the finished jobs, oldest first (a list through next). */
eng_job *eng_pool_take_done(eng_pool *p);
/**
 * Let the queued and running jobs finish, stop the threads and free the pool. Jobs still on the
 * done queue are returned through *left (a list; left may be NULL only when none can be).
 * Accepts NULL.
 */
void eng_pool_free(eng_pool *p, eng_job **left);

#endif
