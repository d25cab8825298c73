/* The data transforms of Winograd's F(4x4, 3x3) convolution for the CPU (see winograd.py).
 *
 * The products in the middle are 36 matrix products that torch's BLAS runs near the CPU's peak; the
 * transforms around them touch every input and output value a few times and, written with torch
 * operators (small matrix products, strided copies), cost as much as the products. Here each
 * transform is one pass: each thread (cpu_parallel.h) takes a range of tiles, and for each tile and each group of
 * channels (one vector's worth) reads the 6x6 input patch once, transforms it in registers and
 * writes the 36 transformed values where the matrix products read them; the output transform reads
 * the 36 products of a tile and writes its 4x4 pixels. Tiles go in raster order, so the rows they
 * read and write stay in cache between neighbouring tiles, whatever the tensor's layout (strides are
 * passed; a channels-last tensor reads and writes whole vectors).
 *
 * B^T and A^T below are the interpolation points 0, 1, -1, 2, -2 and infinity, as in winograd.py,
 * written out so that no multiplication by 0 or 1 is spent. Transformed position (row i, column j) is
 * matrix j * 6 + i, the order of winograd.transform_weight's filters.
 */
#include <stddef.h>

#include "cpu_parallel.h"
#include "cpu_common.h"
#include "cpu_epilogue.h"
#include "cpu_scratch.h"
#include "cpu_gemm.h"
#include "cpu_transpose.h"


/* d[0..5] -> B^T d */
static inline void input_1d(const vec d[6], vec out[6]) {
    out[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    out[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
    out[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
    out[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
    out[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    out[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

/* m[0..5] -> A^T m */
static inline void output_1d(const vec m[6], vec out[4]) {
    const vec s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    out[0] = m[0] + s12 + s34;
    out[1] = d12 + 2.0f * d34;
    out[2] = s12 + 4.0f * s34;
    out[3] = d12 + 8.0f * d34 + m[5];
}

/* Channels [c, c + n) at one pixel as a vector (n <= LANES; the rest zero), times gains[c..]. */
static inline vec gather(const float *p, ptrdiff_t step, int n, const float *gains) {
    vec v = {0};
    if (n == LANES && step == 1) {
        v = *(const vec_unaligned *)p;
    } else {
        for (int k = 0; k < n; k++) v[k] = p[k * step];
    }
    if (gains) {
        vec g = {0};
        for (int k = 0; k < n; k++) g[k] = gains[k];
        v *= g;
    }
    return v;
}

static inline void scatter(float *p, ptrdiff_t step, int n, vec v) {
    if (n == LANES && step == 1) {
        *(vec_unaligned *)p = v;
    } else {
        for (int k = 0; k < n; k++) p[k * step] = v[k];
    }
}

/* Tiles first + [0, tiles) (a block) from x (batch, channels, h, w; strides s) into
 * v [36][tiles][channels], each input channel times gains[batch][channel] unless gains is NULL.
 * Tile number first + t is (b, ty, tx) in raster order; its 6x6 patch starts at row 4 ty - pad,
 * column 4 tx - pad; outside the map reads zero. */
typedef struct {
    const float *x, *gains;
    Strides s;
    int channels, h, w, pad, tiles_y, tiles_x, first, tiles;
    float *v;
} InputJob;

static void input_tiles(void *context, int tile0, int tile1) {
    const InputJob *job = context;
    const float *x = job->x, *gains = job->gains;
    const Strides s = job->s;
    const int channels = job->channels, h = job->h, w = job->w, pad = job->pad, tiles_y = job->tiles_y;
    const int tiles_x = job->tiles_x, first = job->first, tiles = job->tiles;
    float *v = job->v;
    const size_t plane = (size_t)tiles * channels;  /* floats between transformed positions */
    for (int t = tile0; t < tile1; t++) {
        const int tile = first + t;
        const int b = tile / (tiles_y * tiles_x), ty = tile / tiles_x % tiles_y, tx = tile % tiles_x;
        const int y0 = 4 * ty - pad, x0 = 4 * tx - pad;
        const int inside = y0 >= 0 && x0 >= 0 && y0 + 6 <= h && x0 + 6 <= w;  /* no zero padding to read */
        for (int c = 0; c < channels; c += LANES) {
            const int n = channels - c < LANES ? channels - c : LANES;
            const vec gain = gains ? gather(gains + (size_t)b * channels + c, 1, n, NULL) : (vec){0} + 1.0f;
            const float *origin = x + b * s.batch + c * s.channel;
            vec rows[6][6];
            for (int j = 0; j < 6; j++) {  /* B^T d, column by column of the 6x6 patch */
                vec column[6], out[6];
                const int xx = x0 + j;
                if (inside && n == LANES && s.channel == 1) {  /* most tiles of a channels-last map */
                    for (int i = 0; i < 6; i++)
                        column[i] = *(const vec_unaligned *)(origin + (y0 + i) * s.row + xx * s.column) * gain;
                } else {
                    for (int i = 0; i < 6; i++) {
                        const int y = y0 + i;
                        column[i] = y < 0 || y >= h || xx < 0 || xx >= w ? (vec){0}
                                    : gather(origin + y * s.row + xx * s.column, s.channel, n, NULL) * gain;
                    }
                }
                input_1d(column, out);
                for (int i = 0; i < 6; i++) rows[i][j] = out[i];
            }
            for (int i = 0; i < 6; i++) {  /* (B^T d) B, row by row */
                vec out[6];
                input_1d(rows[i], out);
                for (int j = 0; j < 6; j++) scatter(v + (size_t)(j * 6 + i) * plane + (size_t)t * channels + c, 1, n, out[j]);
            }
        }
    }
}

void winograd_input(const float *x, Strides s, const float *gains, int channels, int h, int w, int pad,
                    int tiles_y, int tiles_x, int first, int tiles, float *v, int threads) {
    InputJob job = {x, gains, s, channels, h, w, pad, tiles_y, tiles_x, first, tiles, v};
    parallel(input_tiles, &job, tiles, threads);
}

/* Planar maps (batch, channels, pixels contiguous) to channels-last pixels. Read from planes, each
 * channel vector of a tile takes LANES loads a whole plane apart; one blocked transpose first costs
 * less than that (half the input transform's time at 181-512 channels on 148-276 px maps). */
typedef struct {
    const float *x;
    int channels, pixels;
    float *out;
} PlanesJob;

enum { PIXEL_BLOCK = 256 };  /* a thread's share is whole blocks of pixels of one sample */

static void planes_to_pixels(void *context, int unit0, int unit1) {
    const PlanesJob *job = context;
    const int blocks = (job->pixels + PIXEL_BLOCK - 1) / PIXEL_BLOCK;
    for (int unit = unit0; unit < unit1; unit++) {
        const int b = unit / blocks, p0 = unit % blocks * PIXEL_BLOCK;
        const int count = job->pixels - p0 < PIXEL_BLOCK ? job->pixels - p0 : PIXEL_BLOCK;
        const size_t sample = (size_t)b * job->channels * job->pixels;
        transpose(job->x + sample + p0, job->pixels, job->channels, count,
                  job->out + sample + (size_t)p0 * job->channels, job->channels, NULL, NULL);
    }
}

/* out [batch][pixels][channels] = x [batch][channels][pixels]. */
void to_channels_last(const float *x, int batch, int channels, int pixels, float *out, int threads) {
    PlanesJob job = {x, channels, pixels, out};
    parallel(planes_to_pixels, &job, batch * ((pixels + PIXEL_BLOCK - 1) / PIXEL_BLOCK), threads);
}

/* Tiles first + [0, tiles) (a block): its products m [36][tiles][stride] (up * up * channels of each row
 * used) into y (batch,
 * channels, up * h, up * w; strides s): A^T m A, the 4x4 pixels of the tile that fall inside the map,
 * finished by e. With up 2 the products hold four phases of channels, phase p = 2 py + px first, and
 * phase p's pixel (row, column) of the h x w grid is y's (2 row + py, 2 column + px): an up-sampling
 * convolution split into four 3x3 convolutions of the low-resolution map. Noise maps are up * h x up * w. */
typedef struct {
    const float *m;
    int stride, channels, up, h, w, tiles_y, tiles_x, first, tiles;
    float *y;
    Strides s;
    const Epilogue *e;
} OutputJob;

static void output_tiles(void *context, int tile0, int tile1) {
    const OutputJob *job = context;
    const float *m = job->m;
    const int channels = job->channels, up = job->up, h = job->h, w = job->w, tiles_y = job->tiles_y;
    const int tiles_x = job->tiles_x, first = job->first, tiles = job->tiles;
    const int stride = job->stride, noise_w = w * up;
    float *y = job->y;
    const Strides s = job->s;
    const Epilogue *e = job->e;
    const size_t plane = (size_t)tiles * stride;
    for (int t = tile0; t < tile1; t++) {
        const int tile = first + t;
        const int b = tile / (tiles_y * tiles_x), ty = tile / tiles_x % tiles_y, tx = tile % tiles_x;
        const int rows_in = h - 4 * ty < 4 ? h - 4 * ty : 4, cols_in = w - 4 * tx < 4 ? w - 4 * tx : 4;
        for (int phase = 0; phase < up * up; phase++) {
            const int py = phase / up, px = phase % up;
            const float *mp = m + (size_t)t * stride + (size_t)phase * channels;
            for (int c = 0; c < channels; c += LANES) {
                const int n = channels - c < LANES ? channels - c : LANES;
                vec half[4][6];
                for (int j = 0; j < 6; j++) {  /* A^T m, column by column */
                    vec column[6], out[4];
                    for (int i = 0; i < 6; i++) column[i] = gather(mp + (size_t)(j * 6 + i) * plane + c, 1, n, NULL);
                    output_1d(column, out);
                    for (int i = 0; i < 4; i++) half[i][j] = out[i];
                }
                for (int i = 0; i < rows_in; i++) {  /* (A^T m) A, row by row */
                    vec out[4];
                    output_1d(half[i], out);
                    const int row = (4 * ty + i) * up + py, column = 4 * tx * up + px;
                    float *dst = y + b * s.batch + c * s.channel + row * s.row + column * s.column;
                    const float *noise = e->noise ? e->noise + b * e->noise_batch + (size_t)row * noise_w + column : NULL;
                    for (int j = 0; j < cols_in; j++)
                        scatter(dst + j * up * s.column, s.channel, n,
                                finish(out[j], e, b, c, n, channels, noise ? noise[j * up] : 0.0f));
                }
            }
        }
    }
}

void winograd_output(const float *m, int stride, int channels, int up, int h, int w, int tiles_y, int tiles_x,
                     int first, int tiles, float *y, Strides s, const Epilogue *e, int threads) {
    OutputJob job = {m, stride, channels, up, h, w, tiles_y, tiles_x, first, tiles, y, s, e};
    parallel(output_tiles, &job, tiles, threads);
}

/* The whole convolution in one call, chunk by chunk: each thread takes chunks of `chunk` tiles and runs
 * the input transform, the 36 products (cpu_gemm.h, filters packed) and the output pass on one chunk at
 * a time in a buffer of its own, small enough to stay in its caches; only x, the filters and y travel
 * to and from memory. For CPUs whose memory is slow next to their arithmetic (most, on big maps). */
typedef struct {
    InputJob in;
    const float *filters;
    int width;  /* the packed filters' columns */
    OutputJob out;
    int chunk, tiles;
    atomic_int failed;
} FusedJob;

static void fused_chunks(void *context, int chunk0, int chunk1) {
    FusedJob *job = context;
    const int channels = job->in.channels, width = job->width, chunk = job->chunk;
    float *v = thread_scratch((size_t)36 * chunk * (channels + width));
    if (!v) {
        job->failed = 1;
        return;
    }
    float *m = v + (size_t)36 * chunk * channels;
    for (int c = chunk0; c < chunk1; c++) {
        const int first = c * chunk, count = job->tiles - first < chunk ? job->tiles - first : chunk;
        InputJob in = job->in;
        in.first = first, in.tiles = count, in.v = v;
        input_tiles(&in, 0, count);
        GemmJob product = gemm_job(v, job->filters, m, count, channels, width);
        gemm_units(&product, 0, 36 * product.blocks);
        OutputJob out = job->out;
        out.m = m, out.first = first, out.tiles = count;
        output_tiles(&out, 0, count);
    }
}

/* winograd_input, the products with `filters` (packed, `width` columns) and winograd_output over all
 * `tiles` tiles, `chunk` at a time. Returns 0, or -1 when a thread's scratch cannot be allocated. */
int winograd_fused(const float *x, Strides xs, const float *gains, int channels, int h, int w, int pad,
                   const float *filters, int width, int out_channels, int up, int out_h, int out_w, int tiles_y,
                   int tiles_x, int tiles, float *y, Strides ys, const Epilogue *e, int chunk, int threads) {
    FusedJob job = {{x, gains, xs, channels, h, w, pad, tiles_y, tiles_x, 0, 0, NULL}, filters, width,
                    {NULL, width, out_channels, up, out_h, out_w, tiles_y, tiles_x, 0, 0, y, ys, e}, chunk, tiles, 0};
    parallel(fused_chunks, &job, (tiles + chunk - 1) / chunk, threads);
    return job.failed ? -1 : 0;
}
