/* A float matrix transposed in blocks that stay in the first-level cache, for our CPU kernels: the
 * activation's passes along the other axis (cpu_filtered_lrelu.c), channel planes to channels-last
 * pixels for the Winograd transforms (cpu_winograd.c). */
#pragma once
#include <stddef.h>

#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define HAVE_SHUFFLES 1
typedef float quad __attribute__((vector_size(16)));
typedef float quad_unaligned __attribute__((vector_size(16), aligned(4)));

/* out[c][r] = in[r][c] * scale[c] + shift[c] (neither where scale is NULL) for one 4 x 4 block, in
 * registers (four loads, eight shuffles, four stores). */
static inline void transpose4(const float *in, size_t in_row, float *out, size_t out_row, const float *scale,
                              const float *shift) {
    const quad r0 = *(const quad_unaligned *)in, r1 = *(const quad_unaligned *)(in + in_row);
    const quad r2 = *(const quad_unaligned *)(in + 2 * in_row), r3 = *(const quad_unaligned *)(in + 3 * in_row);
    const quad lo01 = __builtin_shufflevector(r0, r1, 0, 4, 1, 5), hi01 = __builtin_shufflevector(r0, r1, 2, 6, 3, 7);
    const quad lo23 = __builtin_shufflevector(r2, r3, 0, 4, 1, 5), hi23 = __builtin_shufflevector(r2, r3, 2, 6, 3, 7);
    quad c[4] = {__builtin_shufflevector(lo01, lo23, 0, 1, 4, 5), __builtin_shufflevector(lo01, lo23, 2, 3, 6, 7),
                 __builtin_shufflevector(hi01, hi23, 0, 1, 4, 5), __builtin_shufflevector(hi01, hi23, 2, 3, 6, 7)};
    for (int k = 0; k < 4; k++) {
        if (scale) c[k] = c[k] * scale[k] + shift[k];
        *(quad_unaligned *)(out + k * out_row) = c[k];
    }
}
#endif

/* out[c * out_row + r] = in[r * in_row + c] (times scale[c] plus shift[c] where scale is not NULL) for
 * r < rows, c < cols, in 16 x 16 tiles; 4 x 4 blocks in registers where the compiler has vector
 * shuffles, the edges element by element. */
static void transpose(const float *restrict in, size_t in_row, int rows, int cols, float *restrict out,
                      size_t out_row, const float *scale, const float *shift) {
    enum { TILE = 16 };
    for (int r0 = 0; r0 < rows; r0 += TILE) {
        const int r1 = r0 + TILE < rows ? r0 + TILE : rows;
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            const int c1 = c0 + TILE < cols ? c0 + TILE : cols;
#ifdef HAVE_SHUFFLES
            if (r1 - r0 == TILE && c1 - c0 == TILE) {
                for (int r = r0; r < r1; r += 4)
                    for (int c = c0; c < c1; c += 4)
                        transpose4(in + (size_t)r * in_row + c, in_row, out + (size_t)c * out_row + r, out_row,
                                   scale ? scale + c : NULL, scale ? shift + c : NULL);
                continue;
            }
#endif
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++) {
                    const float v = in[(size_t)r * in_row + c];
                    out[(size_t)c * out_row + r] = scale ? v * scale[c] + shift[c] : v;
                }
        }
    }
}
