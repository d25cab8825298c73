/* What our CPU kernels share: the vector types they compute with, as wide as the CPU's registers (GCC's
 * and Clang's vector extensions, which the compiler maps onto AVX-512, AVX2, SSE or NEON for the machine
 * it builds on), and how a tensor's layout is passed in. */
#pragma once
#include <stddef.h>

/* One tensor's element strides, in floats: (batch, channel, row, column), as torch's `stride()`. */
typedef struct {
    ptrdiff_t batch, channel, row, column;
} Strides;

/* Both are the build machine's unless given (cpu_build.py's AUTOLUME_CPU_VECTORS, which the tests use to
 * run another CPU's lane count and tiles here: the compiler splits or narrows the vectors it lacks). */
#ifndef VECTOR_BYTES
#if defined(__AVX512F__)
#define VECTOR_BYTES 64
#else
#define VECTOR_BYTES 32
#endif
#endif
#ifndef VECTOR_REGISTERS
#if defined(__AVX512F__) || defined(__aarch64__)
#define VECTOR_REGISTERS 32
#else
#define VECTOR_REGISTERS 16
#endif
#endif
typedef float vec __attribute__((vector_size(VECTOR_BYTES)));
typedef float vec_unaligned __attribute__((vector_size(VECTOR_BYTES), aligned(4)));
typedef int ivec __attribute__((vector_size(VECTOR_BYTES)));
#define LANES ((int)(VECTOR_BYTES / sizeof(float)))

/* Lane by lane: yes where mask is set (all ones), else no. */
static inline vec pick(ivec mask, vec yes, vec no) { return (vec)(((ivec)yes & mask) | ((ivec)no & ~mask)); }
