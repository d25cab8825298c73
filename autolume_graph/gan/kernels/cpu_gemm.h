/* The register-tiled product of cpu_gemm.c, as static functions for the kernels that call it on their
 * own threads' data (cpu_gemm.c for torch's tensors, cpu_winograd.c between its transforms).
 *
 * C_j = A_j B_j for j in [0, batch): A_j [m][k] row-major, B_j packed into strips of NR columns, each
 * strip [k][NR] contiguous; C_j [m][n] row-major, n a whole number of strips. Work units are (j, block
 * of MC rows); a block's MC x KC slice of A stays in the core's L2 while every strip of B runs over it,
 * and one strip's KC x NR slice (16 KB) stays in L1 while MC / MR register tiles of C (MR rows x NR
 * columns: 2 MR vector accumulators) take their KC multiply-adds from it. The next strip is prefetched
 * while the current one's tiles run: its first tile would otherwise wait on memory for each row of it
 * (x1.05-1.25 measured on a 2-core AVX2 EPYC, most where A has few rows).
 */
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast") /* a * b + c as one fused multiply-add (Clang contracts by default) */
#endif
#include <stddef.h>

#include "cpu_common.h"

/* A tile's 2 MR accumulators, its two vectors of B and the broadcast of A fill the vector registers:
 * 6 rows with 16 registers (AVX2), 12 with 32 (AVX-512, Arm). A strip's slice stays 16 KB, which every
 * first-level cache holds with room for A's rows (KC 256 with AVX2, 128 with AVX-512). */
#define MR (VECTOR_REGISTERS >= 32 ? 12 : 6)
#define NR (2 * LANES)
#define KC (16384 / (NR * (int)sizeof(float)))
#define MC 96 /* a multiple of MR */

/* c[0..rows)[0..NR) (row stride ldc) = (accumulate ? c : 0) + a[0..rows)[0..k) b[0..k)[0..NR). */
static inline void tile(int k, const float *a, ptrdiff_t lda, const float *b, float *c, ptrdiff_t ldc, int rows,
                        int accumulate) {
    const float *a_row[MR];
    for (int r = 0; r < MR; r++) a_row[r] = a + (r < rows ? r : 0) * lda;  /* spare rows recompute row 0 */
    vec acc[MR][2] = {{{0}}};
    for (int p = 0; p < k; p++) {
        const vec b0 = *(const vec_unaligned *)(b + (size_t)p * NR);
        const vec b1 = *(const vec_unaligned *)(b + (size_t)p * NR + LANES);
        for (int r = 0; r < MR; r++) {
            const vec a_value = a_row[r][p] - (vec){0};  /* a broadcast (x - 0 is x exactly) */
            acc[r][0] += a_value * b0;
            acc[r][1] += a_value * b1;
        }
    }
    for (int r = 0; r < rows; r++) {
        vec_unaligned *out = (vec_unaligned *)(c + r * ldc);
        out[0] = accumulate ? out[0] + acc[r][0] : acc[r][0];
        out[1] = accumulate ? out[1] + acc[r][1] : acc[r][1];
    }
}

typedef struct {
    const float *a, *b;
    float *c;
    int m, k, n, blocks;
} GemmJob;

/* Units [first, last) of the product: unit u is row block u % blocks of matrix u / blocks. */
static void gemm_units(void *context, int first, int last) {
    const GemmJob *job = context;
    const int m = job->m, k = job->k, n = job->n;
    for (int unit = first; unit < last; unit++) {
        const int j = unit / job->blocks, row0 = unit % job->blocks * MC;
        const int row1 = row0 + MC < m ? row0 + MC : m;
        const float *a = job->a + (size_t)j * m * k, *b = job->b + (size_t)j * k * n;
        float *c = job->c + (size_t)j * m * n;
        for (int p0 = 0; p0 < k; p0 += KC) {
            const int depth = k - p0 < KC ? k - p0 : KC;
            for (int col = 0; col < n; col += NR) {
                const float *strip = b + (size_t)col * k + (size_t)p0 * NR;
                /* the next strip's slice, fetched a share per tile while this one's tiles run */
                const char *next = (const char *)(col + NR < n ? strip + (size_t)NR * k
                                                  : p0 + KC < k ? b + (size_t)(p0 + KC) * NR : strip);
                const int lines = depth * NR * (int)sizeof(float) / 64, tiles = (row1 - row0 + MR - 1) / MR;
                const int per_tile = tiles > 1 ? (lines + tiles - 1) / tiles : 0;  /* one tile: nothing to hide it behind */
                for (int row = row0, line = 0; row < row1; row += MR) {
                    for (const int end = line + per_tile < lines ? line + per_tile : lines; line < end; line++)
                        __builtin_prefetch(next + (size_t)line * 64);
                    tile(depth, a + (size_t)row * k + p0, k, strip, c + (size_t)row * n + col, n,
                         row1 - row < MR ? row1 - row : MR, p0 > 0);
                }
            }
        }
    }
}

static inline GemmJob gemm_job(const float *a, const float *b_packed, float *c, int m, int k, int n) {
    GemmJob job = {a, b_packed, c, m, k, n, (m + MC - 1) / MC};
    return job;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
