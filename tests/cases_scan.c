/* Op-table cases: the selective scan in 1, 2 and 4 (cross-scan) directions, with one parameter
 * set shared by the directions or one set per direction, and with a padding mask. */
#include "optest.h"
#include "elementwise.h"
#include "scan.h"
#include <stdlib.h>

/* p[0..2] = u, delta, a; p[3], p[4] = B, C; then the optional D, bias, z in that order. The
 * op sees A = -a*a, negative like Mamba's -exp(A_log), so the states decay and exp stays
 * moderate under finite differences; dA is still checked, through the product. K = parameter
 * sets (1 or dirs); mask = a [Bt, L] padding mask with zeros at the end of the last sample
 * and one inside it. */
typedef struct { int64_t Bt, Dm, L, N, G; int D, bias, z, dirs; int64_t H, W; int K, mask; } scan_cfg;

static void scan_declare(imb_ctx *c, optest *t, const scan_cfg *s) {
    int64_t K = s->K;
    OPT_P(c, t, "u", 1, s->Bt, s->Dm, s->L);
    OPT_P(c, t, "delta", 1, s->Bt, K * s->Dm, s->L);
    OPT_P(c, t, "a", 1, K * s->Dm, s->N);
    OPT_P(c, t, "B", 1, s->Bt, K * s->G, s->N, s->L);
    OPT_P(c, t, "C", 1, s->Bt, K * s->G, s->N, s->L);
    if (s->D) OPT_P(c, t, "D", 1, K * s->Dm);
    if (s->bias) OPT_P(c, t, "bias", 0.5f, K * s->Dm);
    if (s->z) OPT_P(c, t, "z", 1, s->Bt, s->Dm, s->L);
}

static imb_tensor *padding_mask(imb_ctx *c, int64_t Bt, int64_t L) {
    float *m = malloc(sizeof *m * (size_t)(Bt * L));
    if (!m) return NULL;
    for (int64_t i = 0; i < Bt * L; i++) m[i] = 1.0f;
    float *last = m + (Bt - 1) * L;
    last[L - 1] = last[L - 2] = last[1] = 0.0f;
    imb_tensor *t = imb_input(c, IMB_F32, 2, IMB_SHAPE(Bt, L), m);
    free(m);
    return t;
}

static imb_tensor *scan_run(imb_ctx *c, optest *t, const scan_cfg *s) {
    imb_tensor *A = imb_scale(c, imb_mul(c, t->p[2], t->p[2]), -1.0f);
    int k = 5;
    imb_tensor *D = s->D ? t->p[k++] : NULL, *bias = s->bias ? t->p[k++] : NULL, *z = s->z ? t->p[k++] : NULL;
    imb_tensor *mask = s->mask ? padding_mask(c, s->Bt, s->L) : NULL;
    return imb_selective_scan(c, t->p[0], t->p[1], A, t->p[3], t->p[4], D, bias, z, mask, s->dirs, s->H, s->W);
}

#define SCAN_CASE(name, ...)                                                                        \
    static const scan_cfg name##_cfg = { __VA_ARGS__ };                                             \
    static void name##_setup(imb_ctx *c, optest *t) { scan_declare(c, t, &name##_cfg); }            \
    static imb_tensor *name##_fwd(imb_ctx *c, optest *t) { return scan_run(c, t, &name##_cfg); }

/*        Bt Dm  L  N  G  D bias z dirs H  W  K mask */
SCAN_CASE(s1, 2, 4, 7, 3, 1, 1, 1, 1, 1, 0, 0, 1, 0)
SCAN_CASE(s1n, 2, 4, 7, 1, 2, 0, 1, 0, 1, 0, 0, 1, 0)
SCAN_CASE(s2, 2, 4, 7, 3, 2, 1, 1, 1, 2, 0, 0, 1, 0)
SCAN_CASE(s4, 2, 4, 6, 3, 2, 1, 1, 1, 4, 2, 3, 1, 0)
SCAN_CASE(s4n, 1, 2, 6, 2, 1, 0, 0, 0, 4, 3, 2, 1, 0)
SCAN_CASE(s1m, 2, 4, 7, 3, 2, 1, 1, 1, 1, 0, 0, 1, 1)
SCAN_CASE(s2k, 2, 4, 7, 3, 2, 1, 1, 1, 2, 0, 0, 2, 0)
SCAN_CASE(s2km, 2, 4, 7, 2, 1, 1, 1, 0, 2, 0, 0, 2, 1)
SCAN_CASE(s4k, 2, 4, 6, 3, 2, 1, 1, 1, 4, 2, 3, 4, 0)
SCAN_CASE(s4kn, 2, 4, 6, 1, 1, 1, 1, 0, 4, 3, 2, 4, 1)
/* Longer sequences (parity only, below), for the CUDA kernels' chunking: test_parity re-runs the scan
 * cases with chunks of 128 and 256 steps (IMB_SCAN_CFG), where these span 2 or 3 chunks with a partial
 * last one (131 = 128 + 3, 133 = 128 + 5); the last one, 4 directions over 2112 steps, spans 3 chunks
 * of 1024 in the default plan (its dA and dB sum 8448 steps: the CPU reference keeps those sums and the
 * state adjoint in double, so that it is the accurate side). A 1-direction masked case over 2051 steps
 * still differed by 1.0e-5 .. 1.4e-5 on the H100 (grad of A, C), every plan, the simple kernel too: the
 * reference's remaining float sums (dC over the steps) are the next thing to make double. */
SCAN_CASE(l1, 2, 4, 131, 16, 1, 1, 1, 1, 1, 0, 0, 1, 1)
SCAN_CASE(l2, 1, 4, 300, 1, 2, 0, 1, 1, 2, 0, 0, 2, 0)
SCAN_CASE(l4k, 1, 4, 133, 16, 1, 1, 1, 0, 4, 7, 19, 4, 1)
SCAN_CASE(l4, 2, 3, 300, 1, 1, 1, 0, 1, 4, 15, 20, 1, 0)
SCAN_CASE(n64, 1, 2, 20, 64, 1, 1, 1, 1, 2, 0, 0, 1, 0)
SCAN_CASE(big4, 1, 2, 2112, 16, 1, 1, 1, 1, 4, 44, 48, 4, 1)

const op_case optest_scan[] = {
    { "scan_1dir", s1_setup, s1_fwd, 0, 0 },
    { "scan_1dir_noz_N1", s1n_setup, s1n_fwd, 0, 0 },
    { "scan_2dir", s2_setup, s2_fwd, 0, 0 },
    { "scan_4dir", s4_setup, s4_fwd, 0, 0 },
    { "scan_4dir_plain", s4n_setup, s4n_fwd, 0, 0 },
    { "scan_1dir_mask", s1m_setup, s1m_fwd, 0, 0 },
    { "scan_2dir_K2", s2k_setup, s2k_fwd, 0, 0 },
    { "scan_2dir_K2_mask_noz", s2km_setup, s2km_fwd, 0, 0 },
    { "scan_4dir_K4", s4k_setup, s4k_fwd, 0, 0 },
    { "scan_4dir_K4_N1_mask_noz", s4kn_setup, s4kn_fwd, 0, 0 },
    { "scan_2dir_N64", n64_setup, n64_fwd, 0, 0 },
    { 0 },
};

/* the long sequences: float finite differences over hundreds of steps come near the grad check's
 * tolerance, and the CPU op is checked on the short ones */
const op_case optest_scan_parity[] = {
    { "scan_1dir_L131_N16_mask", l1_setup, l1_fwd, 0, 0 },
    { "scan_2dir_K2_L300_N1", l2_setup, l2_fwd, 0, 0 },
    { "scan_4dir_K4_L133_N16_noz", l4k_setup, l4k_fwd, 0, 0 },
    { "scan_4dir_L300_N1_nobias", l4_setup, l4_fwd, 0, 0 },
    { "scan_4dir_K4_L2112_N16", big4_setup, big4_fwd, 0, 0 },
    { 0 },
};
