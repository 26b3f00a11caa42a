/* Concept-bottleneck ops of InfoMamba's linear filtering layer (DESIGN.md section 4): candidate
 * concepts per hash bucket, the sparse soft assignment with a token-wise entropy budget, sparse
 * token->concept aggregation and concept->token scatter, and row entropy (for the InfoMax hash loss).
 *
 * A sparse assignment A [B, L, K] is kept as S slots per token row: idx int32 [B, L, S] (concept
 * index, -1 in an unused slot) and val f32 [B, L, S] (0 in an unused slot). No op here ever holds
 * a dense L x K matrix: cost is O(L S D) per batch row plus O(K D) per concept. */
#ifndef IMB_CONCEPT_H
#define IMB_CONCEPT_H
#include "ctx.h"

/* Candidate concepts per bucket (no gradient). Concept k belongs to the bucket whose embedding
 * E [Bk, D] is nearest (squared Euclidean distance, ties to the lower bucket) to its centre
 * C [K, D]; a bucket holding fewer than kmin concepts lists the kmin concepts nearest to its
 * embedding instead (ties to the lower concept), so no bucket is empty. 1 <= kmin <= K.
 * -> int32 [Bk, K + 1]: row b = n_b, then n_b concept indices in ascending order, then -1s. */
imb_tensor *imb_concept_buckets(imb_ctx *ctx, imb_tensor *C, imb_tensor *E, int kmin);

/* Sparse soft assignment. Token i picks bucket b_i = argmax hash[i, :] (ties to the lower
 * bucket; hash may be logits or probabilities) and scores the n = n_{b_i} candidates of cand
 * (from imb_concept_buckets): s_j = scale * q_i . C_j; A0 = softmax over the candidates (the
 * masked softmax over concepts); budget u = H(A0) / log n (0 when n = 1) and
 * k_i = clamp(round(kmin + u (kmax - kmin)), 1, n); the k_i largest entries of A0 are kept
 * (ties to the lower concept), renormalised, and written in descending order.
 * q [B, L, D], C [K, D], hash [B, L, Bk], cand int32 [Bk, K + 1], mask NULL or f32 [B, L] (a token
 * with mask 0 gets an empty row); 1 <= kmin <= kmax. Returns val [B, L, kmax] and sets *idx to
 * int32 [B, L, kmax]. The gradient reaches q and C through the kept entries only: renormalised,
 * they are the softmax of their own scores, so dS_j = A_j (dA_j - sum_kept A dA). */
imb_tensor *imb_concept_assign(imb_ctx *ctx, imb_tensor *q, imb_tensor *C, imb_tensor *hash, imb_tensor *cand,
                               imb_tensor *mask, int kmin, int kmax, float scale, imb_tensor **idx);

/* Z = diag(1 / (A^T 1 + eps)) A^T x per batch row: idx int32 [B, L, S] or NULL (dense rows: slot j
 * is concept j, S = K), val [B, L, S], x [B, L, D], mask NULL or [B, L] (tokens with mask 0 are
 * left out) -> [B, K, D]. Gradients reach val and x. */
imb_tensor *imb_concept_aggregate(imb_ctx *ctx, imb_tensor *idx, imb_tensor *val, imb_tensor *x, imb_tensor *mask,
                                  int K, float eps);
/* G = A Z per batch row: idx, val, mask as above, z [B, K, D] -> [B, L, D] (zero rows for masked
 * tokens). Gradients reach val and z. */
imb_tensor *imb_concept_scatter(imb_ctx *ctx, imb_tensor *idx, imb_tensor *val, imb_tensor *z, imb_tensor *mask);

/* Row entropy -sum_j p_j log p_j of probability rows p [..., n] (0 log 0 = 0) -> [...] ([1] for a
 * 1-D p). The gradient -(log p + 1) is taken at max(p, 1e-12), so a zero entry stays finite. */
imb_tensor *imb_entropy(imb_ctx *ctx, imb_tensor *p);

/* Sizes shared by the raw kernels: B batch rows of L tokens, S slots per token, K concepts of
 * width D; Bk buckets, budget kmin..kmax (S = kmax for the assignment). */
typedef struct imb_concept_geom {
    int64_t B, L, S, K, D, Bk;
    int kmin, kmax;
    float scale, eps;
} imb_concept_geom;

/* Raw kernels. idx NULL means dense rows (slot j is concept j); mask NULL means no padding.
 * Forward kernels overwrite their outputs; backward kernels ADD into every non-NULL gradient. */
void imb_concept_buckets_cpu(int32_t *cand, const float *C, const float *E, int64_t K, int64_t Bk, int64_t D,
                             int kmin);
void imb_concept_assign_fwd_cpu(const imb_concept_geom *g, int32_t *idx, float *val, const float *q,
                                const float *C, const float *hash, const int32_t *cand, const float *mask);
/* ws: scratch of B*L*S floats (the score gradients of the kept entries) */
void imb_concept_assign_bwd_cpu(const imb_concept_geom *g, float *dq, float *dC, float *ws, const float *dval,
                                const int32_t *idx, const float *val, const float *q, const float *C);
/* out [B, K, D] = (A^T x) / cnt, cnt [B, K] = A^T 1 + eps (kept for the backward) */
void imb_concept_agg_fwd_cpu(const imb_concept_geom *g, float *out, float *cnt, const int32_t *idx,
                             const float *val, const float *x, const float *mask);
/* dx_i += sum_j a_ij dz_k / cnt_k;  dval_ij += (x_i - z_k) . dz_k / cnt_k  (k = idx_ij) */
void imb_concept_agg_bwd_cpu(const imb_concept_geom *g, float *dx, float *dval, const int32_t *idx,
                             const float *val, const float *x, const float *z, const float *cnt, const float *dz,
                             const float *mask);
/* out [B, K, D] += scale * A^T x, unnormalised (the scatter's dZ and the assignment's dC) */
void imb_concept_agg_add_cpu(const imb_concept_geom *g, float *out, const int32_t *idx, const float *val,
                             const float *x, const float *mask, float scale);
/* out [B, L, D] = A z */
void imb_concept_scatter_fwd_cpu(const imb_concept_geom *g, float *out, const int32_t *idx, const float *val,
                                 const float *z, const float *mask);
/* dval_ij += z_k . dout_i;  dz += A^T dout */
void imb_concept_scatter_bwd_cpu(const imb_concept_geom *g, float *dz, float *dval, const int32_t *idx,
                                 const float *val, const float *z, const float *dout, const float *mask);
/* out [rows] = -sum p log p over rows of n;  dp += dout * -(log max(p, 1e-12) + 1) */
void imb_entropy_fwd_cpu(float *out, const float *p, int64_t rows, int64_t n);
void imb_entropy_bwd_cpu(float *dp, const float *p, const float *dout, int64_t rows, int64_t n);

#ifdef IMB_HAVE_CUDA
/* The CUDA twins (kernels/cuda/concept.cu): same arguments, device pointers, queued on the
 * backend stream; failures go to the backend's sticky error (see op.h, IMB_RUN). No atomics:
 * every output element is summed by one thread in a fixed order. */
void imb_concept_buckets_cuda(int32_t *cand, const float *C, const float *E, int64_t K, int64_t Bk, int64_t D,
                              int kmin);
void imb_concept_assign_fwd_cuda(const imb_concept_geom *g, int32_t *idx, float *val, const float *q,
                                 const float *C, const float *hash, const int32_t *cand, const float *mask);
void imb_concept_assign_bwd_cuda(const imb_concept_geom *g, float *dq, float *dC, float *ws, const float *dval,
                                 const int32_t *idx, const float *val, const float *q, const float *C);
void imb_concept_agg_fwd_cuda(const imb_concept_geom *g, float *out, float *cnt, const int32_t *idx,
                              const float *val, const float *x, const float *mask);
void imb_concept_agg_bwd_cuda(const imb_concept_geom *g, float *dx, float *dval, const int32_t *idx,
                              const float *val, const float *x, const float *z, const float *cnt, const float *dz,
                              const float *mask);
void imb_concept_agg_add_cuda(const imb_concept_geom *g, float *out, const int32_t *idx, const float *val,
                              const float *x, const float *mask, float scale);
void imb_concept_scatter_fwd_cuda(const imb_concept_geom *g, float *out, const int32_t *idx, const float *val,
                                  const float *z, const float *mask);
void imb_concept_scatter_bwd_cuda(const imb_concept_geom *g, float *dz, float *dval, const int32_t *idx,
                                  const float *val, const float *z, const float *dout, const float *mask);
void imb_entropy_fwd_cuda(float *out, const float *p, int64_t rows, int64_t n);
void imb_entropy_bwd_cuda(float *dp, const float *p, const float *dout, int64_t rows, int64_t n);
#endif
#endif
