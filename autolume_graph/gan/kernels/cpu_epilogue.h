/* What a layer does to each output value after its convolution, in the pass that writes the value
 * (cpu_winograd.c's output transform, cpu_fir.c's filter): value * scale[b][o] + bias[o] +
 * noise[b][row][column] (each skipped where NULL; noise_batch 0 shares one map), then a leaky ReLU of
 * `slope` (1: none) and a clamp to [-clamp, clamp] (clamp < 0: none). Mirrored by cpu_epilogue.py. */
#pragma once
#include <stddef.h>

#include "cpu_common.h"

typedef struct {
    const float *scale, *bias, *noise;
    ptrdiff_t noise_batch;
    float slope, clamp;
} Epilogue;

/* p[0..n) as a vector (n <= LANES; the rest zero). */
static inline vec first_lanes(const float *p, int n) {
    if (n == LANES) return *(const vec_unaligned *)p;
    vec v = {0};
    for (int k = 0; k < n; k++) v[k] = p[k];
    return v;
}

/* Channels [o, o + n) of sample b (of `channels`), whose noise value here is `noise`. */
static inline vec finish(vec v, const Epilogue *e, int b, int o, int n, int channels, float noise) {
    if (e->scale) v *= first_lanes(e->scale + (size_t)b * channels + o, n);
    if (e->bias) v += first_lanes(e->bias + o, n);
    if (e->noise) v += noise;
    if (e->slope != 1.0f) v = pick(v < (vec){0}, v * e->slope, v);
    if (e->clamp >= 0.0f) {
        const vec hi = e->clamp - (vec){0}, lo = -e->clamp - (vec){0};
        v = pick(v > hi, hi, pick(v < lo, lo, v));
    }
    return v;
}
