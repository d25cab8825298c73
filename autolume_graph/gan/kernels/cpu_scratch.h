/* Per-thread scratch memory for our CPU kernels, kept between calls.
 *
 * A kernel's shares run on pool threads that live as long as the process (cpu_parallel.h); buffers of a
 * few megabytes allocated per share would be fresh pages, faulted in and zeroed by the kernel on every
 * call. Each thread keeps its one buffer instead and grows it when a call needs more.
 */
#pragma once
#include <stdlib.h>

/* This thread's scratch of at least `floats` (its earlier contents not kept), or NULL where it cannot grow. */
static float *thread_scratch(size_t floats) {
    static _Thread_local float *held;
    static _Thread_local size_t capacity;
    if (capacity < floats) {
        free(held);  /* nothing in it is kept: no copy, as realloc would make */
        held = malloc(floats * sizeof(float));
        capacity = held ? floats : 0;
    }
    return held;
}
