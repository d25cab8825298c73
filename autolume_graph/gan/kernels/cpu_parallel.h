/* Work split between threads inside one C call, for our CPU kernels.
 *
 * Python threads would have to take the GIL to pick up and hand back each share; while an OSC flood
 * keeps another thread busy in Python, every such hand-over can wait a whole switch interval (5 ms).
 * Here the caller releases the GIL once (ctypes does) and the shares run on other threads: torch's own
 * OpenMP team where cpu_build.py links the runtime torch loaded (built with -fopenmp), so no thread of
 * ours competes with torch's for the cores; else a pool of threads of ours that live as long as the
 * process, woken per call, the calling thread taking shares too (one call at a time uses that pool; a
 * second caller waits for it).
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>

typedef void (*share_fn)(void *context, int first, int last);

/* Shares per thread: threads take the next share as they finish one, so a core slowed by a neighbour
 * (shared machines) does less of the work instead of holding up the call (one share per thread left
 * our product 10-30% slower on a 2-core VM). */
enum { SHARES_PER_THREAD = 8 };

/* Share `part` of `parts`: fn over its contiguous slice of [0, total). */
static inline void run_share(share_fn fn, void *context, int total, int part, int parts) {
    fn(context, (int)((long long)total * part / parts), (int)((long long)total * (part + 1) / parts));
}

#ifdef _OPENMP
/* Shares [0, parts) of fn over [0, total) on torch's OpenMP team. */
static void spread(share_fn fn, void *context, int total, int parts, int threads) {
    atomic_int next = 0;
#pragma omp parallel num_threads(threads)
    for (int part; (part = atomic_fetch_add(&next, 1)) < parts;)
        run_share(fn, context, total, part, parts);
}
#else
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    int workers;
    unsigned long job;  /* bumped for each call: workers wake for a new one */
    share_fn fn;
    void *context;
    int total, parts, taken, finished;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0};
static pthread_mutex_t pool_callers = PTHREAD_MUTEX_INITIALIZER;

/* Runs the shares not yet taken; called and returns with pool.lock held. */
static void take_shares(void) {
    while (pool.taken < pool.parts) {
        const int part = pool.taken++;
        const share_fn fn = pool.fn;
        void *context = pool.context;
        const int total = pool.total, parts = pool.parts;
        pthread_mutex_unlock(&pool.lock);
        run_share(fn, context, total, part, parts);
        pthread_mutex_lock(&pool.lock);
        if (++pool.finished == pool.parts) pthread_cond_signal(&pool.done);
    }
}

static void *pool_worker(void *unused) {
    (void)unused;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.job == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.job;
        take_shares();
    }
    return NULL;
}

/* Shares [0, parts) of fn over [0, total) on our pool and the calling thread. */
static void spread(share_fn fn, void *context, int total, int parts, int threads) {
    pthread_mutex_lock(&pool_callers);
    pthread_mutex_lock(&pool.lock);
    while (pool.workers < threads - 1) {  /* too few threads started (or none could be): the caller does more */
        pthread_t thread;
        if (pthread_create(&thread, NULL, pool_worker, NULL) != 0) break;
        pthread_detach(thread);
        pool.workers++;
    }
    pool.fn = fn;
    pool.context = context;
    pool.total = total;
    pool.parts = parts;
    pool.taken = pool.finished = 0;
    pool.job++;
    pthread_cond_broadcast(&pool.wake);
    take_shares();
    while (pool.finished < pool.parts) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool_callers);
}
#endif

/* fn(context, first, last) over [0, total) in contiguous shares taken by up to `threads` threads; returns
 * when all are done. */
static void parallel(share_fn fn, void *context, int total, int threads) {
    const int parts = threads <= 1 ? 1 : threads * SHARES_PER_THREAD < total ? threads * SHARES_PER_THREAD : total;
    if (parts <= 1) {
        if (total > 0) fn(context, 0, total);
        return;
    }
    spread(fn, context, total, parts, threads);
}
