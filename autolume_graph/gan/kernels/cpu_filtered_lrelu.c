/* StyleGAN3's filtered leaky ReLU on the CPU, one channel plane at a time while it sits in cache.
 *
 * Written with torch operators, each step of the activation (upsample rows, upsample columns,
 * leaky ReLU, downsample columns, downsample rows) reads and writes every channel's whole map in
 * main memory; at 256 px that traffic, not arithmetic, is most of a frame. Here one thread takes a
 * channel plane through all the steps in buffers of a few hundred kilobytes, so the data stays in
 * the caches between steps.
 *
 * Every step is the same primitive: each output row is a weighted sum of a few input rows, the
 * rows and weights given by a table (`combine_rows`). Upsampling (zero-stuffing, padding and the
 * low-pass at the raised rate) and downsampling (low-pass, keep every down-th sample) are both
 * such banded operators along one axis; the tables are built in Python from the definition; the
 * leaky ReLU and clamp are applied as the last upsampling step stores its rows. Rows
 * are contiguous, so the sums run along them with the compiler's vector instructions; the
 * horizontal steps run on the transposed plane. A radial down filter comes as a sum of separable
 * terms (its singular value decomposition), each a pair of row and column steps.
 *
 * Built at first use with the machine's own instruction set (`-march=native`, see cpu_build.py).
 * Called once a layer through ctypes (which releases the GIL); the planes are shared out between threads
 * here (cpu_parallel.h).
 */
#include <stddef.h>

#include "cpu_parallel.h"
#include "cpu_common.h"
#include "cpu_scratch.h"
#include "cpu_transpose.h"


static inline vec load(const float *p) { return *(const vec_unaligned *)p; }
static inline void store(float *p, vec v) { *(vec_unaligned *)p = v; }

/* Leaky ReLU (slope), then clamp to [-clamp, clamp] unless clamp < 0; NaN stays NaN. Applied by
 * `combine_rows` as it stores the last upsampling pass, so the upsampled plane is not read and written
 * once more for it. */
typedef struct {
    float slope, clamp;
} Activation;

static inline vec activated(vec x, const Activation *f) {
    const vec zero = {0};
    x = pick(x < zero, x * (f->slope - zero), x);
    if (f->clamp >= 0.0f) x = pick(x > f->clamp - zero, f->clamp - zero, pick(x < -f->clamp - zero, -f->clamp - zero, x));
    return x;
}

static inline float activated1(float x, const Activation *f) {
    x = x < 0.0f ? x * f->slope : x;
    if (f->clamp >= 0.0f) x = x > f->clamp ? f->clamp : (x < -f->clamp ? -f->clamp : x);
    return x;
}

/* out[r][x] (+)= sum_t w[r][t] * in[idx[r][t]][x] for r < rows, x < width, then the activation f unless
 * NULL; four vectors of a row are summed in registers over all taps before they are stored. */
static void combine_rows(const float *restrict in, int width, const int *restrict idx,
                         const float *restrict w, int rows, int taps, float *restrict out, int accumulate,
                         const Activation *f) {
    for (int r = 0; r < rows; r++) {
        const int *ri = idx + (size_t)r * taps;
        const float *rw = w + (size_t)r * taps;
        float *o = out + (size_t)r * width;
        int x = 0;
        for (; x + 4 * LANES <= width; x += 4 * LANES) {
            vec a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int t = 0; t < taps; t++) {
                const float *src = in + (size_t)ri[t] * width + x;
                const vec wt = rw[t] - (vec){0};
                a0 += wt * load(src);
                a1 += wt * load(src + LANES);
                a2 += wt * load(src + 2 * LANES);
                a3 += wt * load(src + 3 * LANES);
            }
            if (accumulate) {
                a0 += load(o + x); a1 += load(o + x + LANES); a2 += load(o + x + 2 * LANES); a3 += load(o + x + 3 * LANES);
            }
            if (f) {
                a0 = activated(a0, f); a1 = activated(a1, f); a2 = activated(a2, f); a3 = activated(a3, f);
            }
            store(o + x, a0); store(o + x + LANES, a1); store(o + x + 2 * LANES, a2); store(o + x + 3 * LANES, a3);
        }
        for (; x + LANES <= width; x += LANES) {
            vec a = {0};
            for (int t = 0; t < taps; t++) a += (rw[t] - (vec){0}) * load(in + (size_t)ri[t] * width + x);
            if (accumulate) a += load(o + x);
            store(o + x, f ? activated(a, f) : a);
        }
        for (; x < width; x++) {
            float a = 0.0f;
            for (int t = 0; t < taps; t++) a += rw[t] * in[(size_t)ri[t] * width + x];
            if (accumulate) a += o[x];
            o[x] = f ? activated1(a, f) : a;
        }
    }
}


/* A banded operator along one axis: `rows` outputs, each the sum of `taps` weighted inputs. */
typedef struct {
    int rows, taps;
    const int *idx;
    const float *w;
} Band;

enum { GROUP = 16 };  /* channels gathered together: one cache line of a channels-last pixel */

/* Channel planes [c0, c0 + count) of sample n: from x (strides xs) into contiguous planes [count][h][w],
 * times factor[k] plus shift[k]; a blocked transpose where channels are adjacent and pixels evenly spaced
 * (channels-last), pixel by pixel where only channels are adjacent, else row by row. */
static void gather_planes(const float *x, Strides xs, int n, int c0, int count, int h, int w,
                          const float *factor, const float *shift, float *planes) {
    const float *base = x + n * xs.batch + c0 * xs.channel;
    const size_t size = (size_t)h * w;
    if (xs.channel == 1 && xs.row == w * xs.column) {
        transpose(base, xs.column, h * w, count, planes, size, factor, shift);
        return;
    }
    if (xs.channel == 1) {
        for (int y = 0; y < h; y++)
            for (int i = 0; i < w; i++) {
                const float *pixel = base + y * xs.row + i * xs.column;
                for (int k = 0; k < count; k++) planes[k * size + (size_t)y * w + i] = pixel[k] * factor[k] + shift[k];
            }
        return;
    }
    for (int k = 0; k < count; k++)
        for (int y = 0; y < h; y++) {
            const float *row = base + k * xs.channel + y * xs.row;
            float *dst = planes + k * size + (size_t)y * w;
            for (int i = 0; i < w; i++) dst[i] = row[i * xs.column] * factor[k] + shift[k];
        }
}

/* One call's arguments, shared by the threads that take its groups. */
typedef struct {
    const float *x, *scale, *bias;
    Strides xs;
    int channels, h, w, terms;
    Band up_y, up_x;
    const Band *down_x, *down_y;
    Activation activation;
    float *out;
    int out_pixels;  /* 0: out is planes [batch][channels][hd][wd]; else channels-last [batch][hd][wd][channels] */
    atomic_int failed;
} Job;

/* Groups [group0, group1) of the job; group g is channels [GROUP * (g % groups_per_sample), +GROUP) of
 * sample g / groups_per_sample. */
static void filtered_lrelu_groups(void *context, int group0, int group1) {
    Job *job = context;
    const Band up_y = job->up_y, up_x = job->up_x, *down_x = job->down_x, *down_y = job->down_y;
    const int channels = job->channels, h = job->h, w = job->w;
    const int hu = up_y.rows, wu = up_x.rows, wd = down_x[0].rows, hd = down_y[0].rows;
    const int groups_per_sample = (channels + GROUP - 1) / GROUP;
    const size_t row_major = (size_t)hu * (w > wd ? w : wd);  /* [hu][w] after up_y, [wd][hu] after down_x */
    const size_t out_plane = (size_t)hd * wd;
    const int pixels_out = job->out_pixels;
    float *planes = thread_scratch((size_t)GROUP * h * w + 2 * row_major + (size_t)wu * hu
                                   + (pixels_out ? GROUP * out_plane : 0));
    if (!planes) {
        job->failed = 1;
        return;
    }
    float *a = planes + (size_t)GROUP * h * w, *b = a + row_major, *up = b + row_major;
    float *results = up + (size_t)wu * hu;  /* the group's finished planes, channels-last output only */
    for (int g = group0; g < group1; g++) {
        const int n = g / groups_per_sample, c0 = GROUP * (g % groups_per_sample);
        const int count = channels - c0 < GROUP ? channels - c0 : GROUP;
        float factor[GROUP];
        for (int k = 0; k < count; k++) factor[k] = job->scale ? job->scale[(size_t)n * channels + c0 + k] : 1.0f;
        /* Channels-last: the group's planes in one pass over its pixels' cache lines. Otherwise each plane
         * just before its turn, so that it is still in the nearest cache. */
        const int together = job->xs.channel == 1;
        if (together) gather_planes(job->x, job->xs, n, c0, count, h, w, factor, job->bias + c0, planes);
        for (int k = 0; k < count; k++) {
            float *result = pixels_out ? results + k * out_plane : job->out + ((size_t)n * channels + c0 + k) * out_plane;
            if (!together) gather_planes(job->x, job->xs, n, c0 + k, 1, h, w, factor + k, job->bias + c0 + k, planes);
            const float *plane = together ? planes + (size_t)k * h * w : planes;
            combine_rows(plane, w, up_y.idx, up_y.w, hu, up_y.taps, a, 0, NULL);                  /* [hu][w] */
            transpose(a, w, hu, w, b, hu, NULL, NULL);                                           /* [w][hu] */
            combine_rows(b, hu, up_x.idx, up_x.w, wu, up_x.taps, up, 0, &job->activation);      /* [wu][hu] */
            for (int t = 0; t < job->terms; t++) {
                combine_rows(up, hu, down_x[t].idx, down_x[t].w, wd, down_x[t].taps, a, 0, NULL);
                transpose(a, hu, wd, hu, b, wd, NULL, NULL);                                    /* [hu][wd] */
                combine_rows(b, wd, down_y[t].idx, down_y[t].w, hd, down_y[t].taps, result, t > 0, NULL);
            }
        }
        if (pixels_out)  /* whole cache lines of each pixel's channels, while the planes are in cache */
            transpose(results, out_plane, count, (int)out_plane, job->out + (size_t)n * out_plane * channels + c0,
                      channels, NULL, NULL);
    }
}

/* x (batch, channels, h, w; strides xs) into out [batch][channels][hd][wd], on `threads` threads.
 * Each plane: x * scale[sample][channel] (the demodulation, unless scale is NULL) + bias, up_y, transpose,
 * up_x, the activation, then for each of `terms` separable down filters down_x, transpose, down_y (summed).
 * x in any layout (planes are gathered into contiguous copies); out is contiguous planes, written plane by
 * plane as they are finished, or with channels_last [batch][hd][wd][channels], each group of channels
 * transposed into it from the thread's cache (the layout our Winograd and 1x1 layers read; a pass of
 * their own over planes cost 4-5% of a StyleGAN3 frame).
 * Returns 0, or -1 when the buffers cannot be allocated. */
int filtered_lrelu(const float *x, Strides xs, const float *scale, const float *bias, int batch, int channels,
                   int h, int w, Band up_y, Band up_x, float slope, float clamp, int terms, const Band *down_x,
                   const Band *down_y, float *out, int channels_last, int threads) {
    Job job = {x, scale, bias, xs, channels, h, w, terms, up_y, up_x, down_x, down_y, {slope, clamp}, out,
               channels_last, 0};
    parallel(filtered_lrelu_groups, &job, batch * ((channels + GROUP - 1) / GROUP), threads);
    return job.failed ? -1 : 0;
}
