/* A separable FIR filter over channels-last maps with the layer's finish in the same pass, for the CPU
 * (cpu_fir.py): StyleGAN2's up-sampling layers filter their transposed convolution's output, then scale,
 * add bias and noise, activate and clamp it. As torch operators that is five passes over a map of up to
 * tens of megabytes; here each output row is made in cache: the vertical taps summed into one row of
 * the thread's scratch, then the horizontal taps and the finish (cpu_epilogue.h) as it is stored.
 *
 * y[b][r][c][o] = finish(sum_i sum_j wy[i] wx[j] t[b][r + i - pad][c + j - pad][o]), t zero outside its map
 * (a correlation: cpu_fir.py flips a true convolution's filter). One tap each side is the finish alone.
 */
#include <stddef.h>

#include "cpu_parallel.h"
#include "cpu_common.h"
#include "cpu_epilogue.h"
#include "cpu_scratch.h"

typedef struct {
    const float *t;
    ptrdiff_t t_batch;  /* t is channels-last and contiguous: rows of tw * channels floats */
    int channels, th, tw;
    const float *wy, *wx;
    int taps_y, taps_x, pad;
    float *y;
    ptrdiff_t y_batch;  /* y likewise: rows of out_w * channels floats */
    int out_h, out_w;
    const Epilogue *e;
    atomic_int failed;
} FirJob;

/* dst[0..n) (+)= w * src[0..n): the whole-row steps, which the compiler vectorises. */
static inline void scaled_add(float *restrict dst, const float *restrict src, float w, size_t n, int accumulate) {
    if (accumulate) {
        for (size_t k = 0; k < n; k++) dst[k] += w * src[k];
    } else {
        for (size_t k = 0; k < n; k++) dst[k] = w * src[k];
    }
}

/* Output rows [unit0, unit1) over all samples: unit u is row u % out_h of sample u / out_h. Each row: its
 * vertical taps over whole input rows into `column_sums`, its horizontal taps as shifted whole-row sums
 * into `sums`, then the finish as it is stored. */
static void fir_rows(void *context, int unit0, int unit1) {
    FirJob *job = context;
    const int channels = job->channels, tw = job->tw, out_w = job->out_w, pad = job->pad;
    const size_t in_row = (size_t)tw * channels, out_row = (size_t)out_w * channels;
    float *column_sums = thread_scratch(in_row + out_row);
    if (!column_sums) {
        job->failed = 1;
        return;
    }
    float *sums = column_sums + in_row;
    for (int unit = unit0; unit < unit1; unit++) {
        const int b = unit / job->out_h, r = unit % job->out_h;
        const float *t = job->t + b * job->t_batch;
        int started = 0;
        for (int i = 0; i < job->taps_y; i++) {
            const int row = r + i - pad;
            if (row < 0 || row >= job->th) continue;
            scaled_add(column_sums, t + (size_t)row * in_row, job->wy[i], in_row, started);
            started = 1;
        }
        if (!started)
            for (size_t k = 0; k < in_row; k++) column_sums[k] = 0.0f;
        for (size_t k = 0; k < out_row; k++) sums[k] = 0.0f;
        for (int j = 0; j < job->taps_x; j++) {  /* output column c takes input column c + j - pad */
            const int first = pad - j > 0 ? pad - j : 0, last = tw + pad - j < out_w ? tw + pad - j : out_w;
            if (last > first)
                scaled_add(sums + (size_t)first * channels, column_sums + (size_t)(first + j - pad) * channels,
                           job->wx[j], (size_t)(last - first) * channels, 1);
        }
        float *out = job->y + b * job->y_batch + (size_t)r * out_row;
        const float *noise = job->e->noise ? job->e->noise + b * job->e->noise_batch + (size_t)r * out_w : NULL;
        for (int c = 0; c < out_w; c++) {
            const float *in = sums + (size_t)c * channels;
            float *dst = out + (size_t)c * channels;
            const float here = noise ? noise[c] : 0.0f;
            for (int o = 0; o < channels; o += LANES) {
                const int n = channels - o < LANES ? channels - o : LANES;
                const vec v = finish(first_lanes(in + o, n), job->e, b, o, n, channels, here);
                if (n == LANES) {
                    *(vec_unaligned *)(dst + o) = v;
                } else {
                    for (int k = 0; k < n; k++) dst[o + k] = v[k];
                }
            }
        }
    }
}

/* t [batch][th][tw][channels] filtered by wy (taps_y, vertical) and wx (taps_x, horizontal) with `pad`
 * zeros before each axis, finished by e, into y [batch][out_h][out_w][channels]. Returns 0, or -1 when a
 * thread's row buffers cannot be allocated. */
int fir_finish(const float *t, int batch, int channels, int th, int tw, const float *wy, int taps_y,
               const float *wx, int taps_x, int pad, float *y, int out_h, int out_w, const Epilogue *e, int threads) {
    FirJob job = {t, (ptrdiff_t)th * tw * channels, channels, th, tw, wy, wx, taps_y, taps_x, pad, y,
                  (ptrdiff_t)out_h * out_w * channels, out_h, out_w, e, 0};
    parallel(fir_rows, &job, batch * out_h, threads);
    return job.failed ? -1 : 0;
}
