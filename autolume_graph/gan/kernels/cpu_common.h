/* What our CPU kernels share: the vector types they compute with, as wide as the CPU's registers (GCC's
 * and Clang's vector extensions, which the compiler maps onto AVX-512, AVX2, SSE or NEON for the machine
 * it builds on), and how a tensor's layout is passed in. */
#pragma once
#include <stddef.h>

/* One tensor's element strides, in floats: (batch, channel, row, column), as torch's `stride()`. */
typedef struct {
    ptrdiff_t batch, channel, row, column;
} Strides;

#if defined(__AVX512F__)
#define VECTOR_BYTES 64
#else
#define VECTOR_BYTES 32
#endif
typedef float vec __attribute__((vector_size(VECTOR_BYTES)));
typedef float vec_unaligned __attribute__((vector_size(VECTOR_BYTES), aligned(4)));
typedef int ivec __attribute__((vector_size(VECTOR_BYTES)));
#define LANES ((int)(VECTOR_BYTES / sizeof(float)))

/* Lane by lane: yes where mask is set (all ones), else no. */
static inline vec pick(ivec mask, vec yes, vec no) { return (vec)(((ivec)yes & mask) | ((ivec)no & ~mask)); }
