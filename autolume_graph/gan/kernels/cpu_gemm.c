/* Batched matrix products C_j = A_j B_j (j in [0, batch)) for the Winograd convolution's middle step,
 * on torch's tensors (cpu_gemm.py); the product itself is in cpu_gemm.h.
 *
 * BLAS libraries do the same in assembly; this exists because the one torch ships with picks slow code
 * paths on some CPUs: which one runs is measured at first use (cpu_gemm.py), never assumed.
 */
#include "cpu_parallel.h"
#include "cpu_gemm.h"

/* Columns per strip of the packed B, for cpu_gemm.py. */
int gemm_strip(void) { return NR; }

/* Rows of A per register tile: a product of fewer rows (or the last rows of one) costs a whole tile. */
int gemm_tile_rows(void) { return MR; }

void gemm_batched(const float *a, const float *b_packed, float *c, int batch, int m, int k, int n, int threads) {
    GemmJob job = gemm_job(a, b_packed, c, m, k, n);
    parallel(gemm_units, &job, batch * job.blocks, threads);
}
