// CUDA selective scan: launch plan, workspace sizes, the simple kernels and the fixed-order reductions.
//
// Two implementations with the same results (up to rounding):
//   - fast (kernels/cuda/scan_fast.cu): chunked block scans, every direction fused in one block;
//   - simple (here): one thread per (batch, channel) runs the recurrence sequentially, exactly as the
//     CPU reference does (float state, double readout), with the same per-(batch, channel) scratch and
//     the same reduction orders. It serves shapes the fast kernels cannot hold in shared memory and,
//     with IMB_SCAN_KERNEL=simple, as a check of the fast ones on the GPU.
// Both forwards save the chunk-boundary states of the fast plan, so either backward can follow either
// forward. No atomics (unless IMB_SCAN_CFG asks for them, see scan_fast.cu): results are bit-identical
// from run to run.
#include "scan.cuh"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace imb_scan {
namespace {

thread_local char g_err[512];

int fail(const char *fmt, const char *what) {
    snprintf(g_err, sizeof g_err, fmt, what);
    return -1;
}

// ---- simple kernels ----

// Floats of the simple backward's scratch per (batch, channel): states [L, N], dB and dC terms
// [2, K, N, L], dt and ddt [2, K, L], the pre-gate output [L], the state [N], dA terms [K, N], and the
// dD, dbias terms [K, 2]: the CPU reference's layout.
__host__ __device__ inline int64_t simple_stride(int64_t N, int64_t L, int64_t K) {
    return N * L + 2 * K * N * L + 2 * K * L + L + N + K * N + 2 * K;
}

#define IMB_SCAN_FOR(i, n) \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

// One direction of one (batch, channel) from a zero state: adds C.h into y (when non-NULL), stores every
// state into hs [L, N] (when non-NULL) and the states at the fast plan's chunk ends into sv [nc-1, N]
// (when non-NULL). dt [L] is the direction's set's dt, or NULL: computed here from delta (set st).
__device__ void simple_dir(const Args &a, int64_t b, int st, int64_t d, int o, const float *u, const float *dt,
                           const float *Ad, const float *Bg, const float *Cg, float *h, float *hs, float *y, float *sv) {
    const int64_t N = a.N, L = a.L;
    for (int64_t n = 0; n < N; n++) h[n] = 0.0f;
    for (int64_t s = 0; s < L; s++) {
        const int64_t p = pos_of(a, o, s);
        const float dtp = dt ? dt[p] : dt_at(a, b, st, d, p), dtu = dtp * u[p];
        double acc = 0.0;
        for (int64_t n = 0; n < N; n++) {
            h[n] = expf(dtp * Ad[n]) * h[n] + dtu * Bg[n * L + p];
            acc += (double)Cg[n * L + p] * h[n];
        }
        if (hs)
            for (int64_t n = 0; n < N; n++) hs[s * N + n] = h[n];
        if (y) y[p] += (float)acc;
        if (sv && (s + 1) % a.T == 0 && (s + 1) / a.T < a.nc)
            for (int64_t n = 0; n < N; n++) sv[((s + 1) / a.T - 1) * N + n] = h[n];
    }
}

// The pre-gate output y [L] of one (batch, channel). dt [K, L] (or NULL: computed on the fly) gets the
// sets' dt first.
__device__ void simple_fwd_row(const Args &a, int64_t b, int64_t d, float *h, float *dt, float *y, float *sv) {
    const int64_t L = a.L, gi = d / a.cpg, row = (b * a.Dm + d) * L;
    if (dt)
        for (int st = 0; st < a.K; st++)
            for (int64_t p = 0; p < L; p++) dt[st * L + p] = dt_at(a, b, st, d, p);
    const float Ds = d_sum(a, d);
    for (int64_t p = 0; p < L; p++) y[p] = Ds * a.u[row + p];
    for (int k = 0; k < a.dirs; k++) {
        const int st = set_of(a.K, k);
        simple_dir(a, b, st, d, order_of(a.dirs, k), a.u + row, dt ? dt + st * L : nullptr,
                   a.A + (st * a.Dm + d) * a.N, a.B + grp_off(a, b, st, gi), a.C + grp_off(a, b, st, gi), h, nullptr,
                   y, sv ? sv + k * (a.nc - 1) * a.N : nullptr);
    }
}

// hws holds the running state [N] of each (batch, channel).
__global__ void scan_fwd_simple(Args a) {
    IMB_SCAN_FOR(idx, a.Bt * a.Dm) {
        const int64_t b = idx / a.Dm, d = idx % a.Dm, row = idx * a.L;
        float *sv = a.states && a.nc > 1 ? a.states + idx * a.dirs * (a.nc - 1) * a.N : nullptr;
        simple_fwd_row(a, b, d, a.hws + idx * a.N, nullptr, a.y + row, sv);
        if (a.z)
            for (int64_t p = 0; p < a.L; p++) {
                const float zz = a.z[row + p];
                a.y[row + p] *= zz * sigm_f(zz);
            }
    }
}

// Backward phase 1, per (batch, channel): the CPU reference's loop, terms of shared gradients into sws.
__global__ void scan_bwd_simple(Args a) {
    const int64_t N = a.N, L = a.L, K = a.K, Dm = a.Dm, S = simple_stride(N, L, K);
    IMB_SCAN_FOR(idx, a.Bt * Dm) {
        const int64_t b = idx / Dm, d = idx % Dm, gi = d / a.cpg, row = idx * L;
        float *hs = a.sws + idx * S, *dBp = hs + N * L, *dCp = dBp + K * N * L, *dt = dCp + K * N * L;
        float *ddt = dt + K * L, *ys = ddt + K * L, *gs = ys + L, *dAp = gs + N, *sc = dAp + K * N;
        const float *ur = a.u + row;
        simple_fwd_row(a, b, d, gs, dt, ys, nullptr);
        const float Ds = d_sum(a, d);
        double dDacc = 0.0;
        for (int64_t p = 0; p < L; p++) {
            float gy = a.dy[row + p];
            if (a.z) {
                const float zz = a.z[row + p], sg = sigm_f(zz);
                if (a.dz) a.dz[row + p] += gy * ys[p] * sg * (1.0f + zz * (1.0f - sg));
                gy *= zz * sg;
            }
            ys[p] = gy;   // from here on the gradient of the pre-gate output
            dDacc += (double)gy * ur[p];
            if (a.du && a.D) a.du[row + p] += gy * Ds;
        }
        for (int64_t i = 0; i < 2 * K * N * L; i++) dBp[i] = 0.0f;
        for (int64_t i = 0; i < K * L; i++) ddt[i] = 0.0f;
        for (int64_t i = 0; i < K * N; i++) dAp[i] = 0.0f;
        for (int k = 0; k < a.dirs; k++) {
            const int o = order_of(a.dirs, k), st = set_of(a.K, k);
            const int64_t grp = grp_off(a, b, st, gi);
            const float *Ad = a.A + (st * Dm + d) * N, *dts = dt + st * L;
            float *dBs = dBp + st * N * L, *dCs = dCp + st * N * L, *dAs = dAp + st * N, *ddts = ddt + st * L;
            simple_dir(a, b, st, d, o, ur, dts, Ad, a.B + grp, a.C + grp, gs, hs, nullptr, nullptr);
            for (int64_t n = 0; n < N; n++) gs[n] = 0.0f;   // now the state adjoint
            for (int64_t t = L - 1; t >= 0; t--) {
                const int64_t p = pos_of(a, o, t);
                const float gy = ys[p], dtp = dts[p], up = ur[p];
                double ddtacc = 0.0;
                for (int64_t n = 0; n < N; n++) {
                    const float hprev = t > 0 ? hs[(t - 1) * N + n] : 0.0f;
                    const float av = expf(dtp * Ad[n]), Bv = a.B[grp + n * L + p];
                    const float gn = gs[n] + gy * a.C[grp + n * L + p];
                    const float ga = gn * hprev * av;
                    dCs[n * L + p] += gy * hs[t * N + n];
                    dBs[n * L + p] += gn * dtp * up;
                    dAs[n] += ga * dtp;
                    ddtacc += (double)ga * Ad[n] + (double)gn * Bv * up;
                    if (a.du) a.du[row + p] += gn * dtp * Bv;
                    gs[n] = gn * av;
                }
                ddts[p] += (float)ddtacc;
            }
        }
        for (int64_t st = 0; st < K; st++) {
            const int64_t cd = st * Dm + d, drow = (b * K * Dm + cd) * L;
            const float bd = a.bias ? a.bias[cd] : 0.0f;
            double dbacc = 0.0;
            for (int64_t p = 0; p < L; p++) {
                float gx = ddt[st * L + p] * dsoftplus_f(a.delta[drow + p] + bd);
                if (a.mask) gx *= a.mask[b * L + p];
                if (a.ddelta) a.ddelta[drow + p] += gx;
                dbacc += gx;
            }
            sc[2 * st] = (float)dDacc;   // every set's D multiplies the same u
            sc[2 * st + 1] = (float)dbacc;
        }
    }
}

// Phase 2 of the simple backward: per-channel parameters summed over the batch in batch order.
__global__ void simple_reduce_params(Args a) {
    const int64_t N = a.N, Dm = a.Dm, S = simple_stride(N, a.L, a.K), off = N * a.L + 2 * a.K * N * a.L +
                                                                            2 * a.K * a.L + a.L + N;
    IMB_SCAN_FOR(i, a.K * Dm) {
        const int64_t st = i / Dm, d = i % Dm;
        for (int64_t b = 0; b < a.Bt; b++) {
            const float *dAp = a.sws + (b * Dm + d) * S + off, *sc = dAp + a.K * N;
            if (a.dA)
                for (int64_t n = 0; n < N; n++) a.dA[i * N + n] += dAp[st * N + n];
            if (a.dD) a.dD[i] += sc[2 * st];
            if (a.dbias) a.dbias[i] += sc[2 * st + 1];
        }
    }
}

// Phase 2: dB, dC summed over a group's channels in channel order.
__global__ void simple_reduce_bc(Args a) {
    const int64_t N = a.N, L = a.L, K = a.K, NL = N * L, S = simple_stride(N, L, K);
    IMB_SCAN_FOR(i, a.Bt * K * a.G * NL) {
        const int64_t e = i % NL, r = i / NL, gi = r % a.G, st = (r / a.G) % K, b = r / (a.G * K);
        for (int64_t d = gi * a.cpg; d < (gi + 1) * a.cpg; d++) {
            const float *dBp = a.sws + (b * a.Dm + d) * S + NL + st * NL, *dCp = dBp + K * NL;
            if (a.dB) a.dB[i] += dBp[e];
            if (a.dC) a.dC[i] += dCp[e];
        }
    }
}

// ---- the fast backward's reductions ----

// dB, dC: the tiles of a group in tile order (q is [Bt, G, tiles, K, 2, N, Lp]).
__global__ void fast_reduce_bc(Args a) {
    const int64_t N = a.N, L = a.L, K = a.K, accn = K * 2 * N * a.Lp;
    IMB_SCAN_FOR(i, a.Bt * K * a.G * 2 * N * L) {
        int64_t r = i;
        const int64_t l = r % L;
        r /= L;
        const int64_t n = r % N;
        r /= N;
        const int64_t which = r % 2;
        r /= 2;
        const int64_t gi = r % a.G;
        r /= a.G;
        const int64_t st = r % K, b = r / K;
        float *dst = which ? a.dC : a.dB;
        if (!dst) continue;
        const float *src = a.q + (b * a.G + gi) * a.tiles * accn + (st * 2 + which) * N * a.Lp + n * a.Lp + sk(l);
        float s = 0.0f;
        for (int64_t t = 0; t < a.tiles; t++) s += src[t * accn];
        dst[((b * K + st) * a.G + gi) * N * L + n * L + l] += s;
    }
}

// dA, dD, dbias: the batch in batch order (pp is [Bt, K, Dm, N + 2]).
__global__ void fast_reduce_params(Args a) {
    const int64_t N2 = a.N + 2, KD = a.K * a.Dm;
    IMB_SCAN_FOR(i, KD * N2) {
        const int64_t j = i % N2, cd = i / N2;
        float *dst = j < a.N ? (a.dA ? a.dA + cd * a.N + j : nullptr) : j == a.N ? (a.dD ? a.dD + cd : nullptr)
                                                                           : (a.dbias ? a.dbias + cd : nullptr);
        if (!dst) continue;
        float s = 0.0f;
        for (int64_t b = 0; b < a.Bt; b++) s += a.pp[(b * KD + cd) * N2 + j];
        *dst += s;
    }
}

template <typename Kern> int launch_flat(Kern kern, int64_t n, cudaStream_t st, const Args &a, const char *what) {
    int64_t blocks = (n + 127) / 128;
    if (blocks > 65536) blocks = 65536;
    if (blocks < 1) blocks = 1;
#ifdef IMB_CUDA_EMU
    (void)st;
    imb_emu_launch(dim3((unsigned)blocks), dim3(128), 0, [&] { kern(a); });
#else
    kern<<<(unsigned)blocks, 128, 0, st>>>(a);
#endif
    const cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    snprintf(g_err, sizeof g_err, "%s: %s", what, cudaGetErrorString(e));
    return -1;
}

// ---- the plan ----

struct Device {
    int sms, smem;   // multiprocessors, opt-in shared memory per block (bytes)
};

Device device_props() {
    Device dv = { 132, 227 * 1024 };
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) == cudaSuccess) {
        if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess && v > 0) dv.sms = v;
        if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess && v > 0)
            dv.smem = v;
    }
    cudaGetLastError();   // a failed query is not this op's error
    return dv;
}

// The value of key in IMB_SCAN_CFG ("nw=4,items=7,rf=2,rb=1,tiles=3,acc=global,rows=global,atomics=1"),
// or NULL.
const char *cfg_val(const char *key) {
    const char *s = getenv("IMB_SCAN_CFG");
    const size_t kl = strlen(key);
    while (s && *s) {
        if (!strncmp(s, key, kl) && s[kl] == '=') return s + kl + 1;
        s = strchr(s, ',');
        if (s) s++;
    }
    return nullptr;
}
int cfg_int(const char *key, int dflt) {
    const char *v = cfg_val(key);
    return v ? atoi(v) : dflt;
}

Args geom_args(const imb_scan_geom *g) {
    Args a;
    memset(&a, 0, sizeof a);
    a.Bt = g->Bt, a.Dm = g->Dm, a.N = g->N, a.G = g->G, a.L = g->L, a.H = g->H, a.W = g->W;
    a.dirs = g->dirs, a.K = g->K;
    a.cpg = g->G > 0 ? g->Dm / g->G : 0;
    a.Lp = row_pitch(g->L);
    return a;
}

const char *geom_error(const imb_scan_geom *g) {
    if (g->Bt < 1 || g->Dm < 1 || g->N < 1 || g->L < 1) return "empty or negative sizes";
    if (g->G < 1 || g->Dm % g->G) return "the groups do not divide the channels";
    if (g->dirs != 1 && g->dirs != 2 && g->dirs != 4) return "directions must be 1, 2 or 4";
    if (g->K != 1 && g->K != g->dirs) return "K must be 1 or the number of directions";
    if (g->H < 1 || g->W < 1 || g->H * g->W != g->L) return "L must equal H*W";
    if (g->L > (1 << 30)) return "L above 2^30";
    return nullptr;
}

// The plan for these sizes (has_z: the backward keeps a pre-gate row for dz). Deterministic given the
// sizes, the device and the environment, so the forward and the backward of one step agree.
Plan make_plan(const imb_scan_geom *g, int has_z) {
    Plan p;
    memset(&p, 0, sizeof p);
    const int64_t L = g->L;
    p.Lp = row_pitch(L);
    // warps per channel: enough threads for ~8 steps each, at most 8 warps
    p.nw = L <= 256 ? 1 : L <= 512 ? 2 : L <= 1024 ? 4 : 8;
    p.nw = cfg_int("nw", p.nw);
    if (p.nw != 1 && p.nw != 2 && p.nw != 4 && p.nw != 8) p.nw = 8;
    // items per thread: the least padding (nc * T) among 8, 7, 4; ties keep the longer chunk
    const int cand[3] = { 8, 7, 4 };
    int64_t best = -1;
    for (int i = 0; i < 3; i++) {
        const int64_t T = (int64_t)p.nw * 32 * cand[i], pad = (L + T - 1) / T * T;
        if (best < 0 || pad < best) best = pad, p.items = cand[i];
    }
    const int it = cfg_int("items", p.items);
    if (it == 4 || it == 7 || it == 8) p.items = it;
    p.T = (int64_t)p.nw * 32 * p.items;
    p.nc = (L + p.T - 1) / p.T;
    const char *kern = getenv("IMB_SCAN_KERNEL");
    if ((kern && !strcmp(kern, "simple")) || geom_error(g)) return p;
    const Device dv = device_props();
    Args a = geom_args(g);
    a.z = has_z ? (const float *)&p : nullptr;   // only its presence matters to the layout
    const int maxr = kMaxThreads / (32 * p.nw);
    // forward: as many channels per block as the threads allow (B, C are read once per block), fewer
    // while shared memory is short, then fewer states staged per round
    // states staged per round: up to 16, within ~48 KB of staged B and C (2 * nb * T floats)
    const int64_t nbcap = (48 << 10) / (int64_t)(8 * p.T) < 1 ? 1 : (48 << 10) / (int64_t)(8 * p.T);
    p.nbf = (int)(g->N < 16 ? g->N : 16);
    if (p.nbf > nbcap) p.nbf = (int)nbcap;
    p.rf = cfg_int("rf", maxr);
    p.rf = p.rf < 1 ? 1 : p.rf > maxr ? maxr : p.rf;
    while ((p.smem_f = fwd_smem_bytes(a, p)) > (size_t)dv.smem && (p.rf > 1 || p.nbf > 1)) {
        if (p.rf > 1) p.rf--;
        else p.nbf = (p.nbf + 1) / 2;
    }
    // backward: the dB/dC accumulators leave shared memory before the channel count drops
    p.nbb = (int)(g->N < 8 ? g->N : 8);
    if (p.nbb > (nbcap + 1) / 2) p.nbb = (int)((nbcap + 1) / 2);
    p.rb = cfg_int("rb", maxr);
    p.rb = p.rb < 1 ? 1 : p.rb > maxr ? maxr : p.rb;
    const int acc0 = !(cfg_val("acc") && !strncmp(cfg_val("acc"), "global", 6)), rb0 = p.rb, nbb0 = p.nbb;
    p.acc_smem = acc0;
    p.atomics = cfg_int("atomics", 0) != 0;
    p.rows_global = cfg_val("rows") && !strncmp(cfg_val("rows"), "global", 6);
    while ((p.smem_b = bwd_smem_bytes(a, p)) > (size_t)dv.smem) {
        if (p.acc_smem) p.acc_smem = 0;
        else if (p.rb > 1) p.rb--;
        else if (p.nbb > 1) p.nbb = (p.nbb + 1) / 2;
        else if (!p.rows_global) p.rows_global = 1, p.acc_smem = acc0, p.rb = rb0, p.nbb = nbb0;   // long rows
        else break;
    }
    // a row of the sequence that does not fit in shared memory: the simple kernels for that pass
    p.fast_f = p.smem_f <= (size_t)dv.smem;
    p.fast_b = p.smem_b <= (size_t)dv.smem;
    if (!p.fast_b) return p;
    // backward tiles per (batch, group): each tile costs a partial dB/dC buffer, so the fewest whose
    // time (waves of blocks x channel batches per block) is within 10% of the best
    const int64_t groups = g->Bt * g->G, batches = (a.cpg + p.rb - 1) / p.rb;
    const int64_t slots = (int64_t)dv.sms * (p.smem_b * 2 > (size_t)dv.smem ? 1 : 2);
    int64_t best_cost = -1;
    for (int64_t t = 1; t <= batches; t++) {
        const int64_t c = (groups * t + slots - 1) / slots * ((batches + t - 1) / t);
        if (best_cost < 0 || c < best_cost) best_cost = c;
    }
    int64_t tb = 1;
    while (tb < batches && (groups * tb + slots - 1) / slots * ((batches + tb - 1) / tb) * 10 > best_cost * 11) tb++;
    p.tiles = cfg_int("tiles", (int)tb);
    if (p.tiles < 1) p.tiles = 1;
    if (p.tiles > batches) p.tiles = batches;
    p.rc = (batches + p.tiles - 1) / p.tiles * p.rb;
    p.tiles = (a.cpg + p.rc - 1) / p.rc;
    return p;
}

size_t states_floats(const imb_scan_geom *g, const Plan &p) {
    return p.nc > 1 ? (size_t)(g->Bt * g->Dm * g->dirs * (p.nc - 1) * g->N) : 0;
}

void fill_args(Args &a, const imb_scan_geom *g, const Plan &p) {
    a = geom_args(g);
    a.T = p.T, a.nc = p.nc, a.nw = p.nw, a.rf = p.rf, a.rb = p.rb;
    a.tiles = p.tiles, a.rc = p.rc, a.acc_smem = p.acc_smem, a.atomics = p.atomics, a.rows_global = p.rows_global;
}

}   // namespace
}   // namespace imb_scan

using namespace imb_scan;

extern "C" {

const char *imb_scan_cuda_error(void) { return g_err; }

size_t imb_scan_fwd_ws_cuda(const imb_scan_geom *g) {
    const Plan p = make_plan(g, 0);
    return states_floats(g, p) + (size_t)(g->Bt * g->Dm * g->N);
}

// the fast backward's per-block rows in global memory, floats (0 when they are in shared memory)
static size_t rows_floats(const imb_scan_geom *g, const Plan &p, int has_z) {
    if (!p.rows_global) return 0;
    const int64_t nrows = 5 + (has_z != 0) + (g->K > 1);
    return (size_t)(g->Bt * g->G * p.tiles * p.rb * nrows * p.Lp);
}

size_t imb_scan_bwd_ws_cuda(const imb_scan_geom *g, int has_z) {
    const Plan p = make_plan(g, has_z);
    if (!p.fast_b) return (size_t)(g->Bt * g->Dm * simple_stride(g->N, g->L, g->K));
    return (size_t)(g->Bt * g->G * p.tiles * g->K * 2 * g->N * p.Lp + g->Bt * g->K * g->Dm * (g->N + 2)) +
           rows_floats(g, p, has_z);
}

const char *imb_scan_cuda_plan(const imb_scan_geom *g, int has_z, char *buf, size_t n) {
    const Plan p = make_plan(g, has_z);
    const char *e = geom_error(g), *k = getenv("IMB_SCAN_KERNEL");
    const char *why = e ? e : k && !strcmp(k, "simple") ? "IMB_SCAN_KERNEL=simple" : "rows too long for shared memory";
    char f[256], b[320];
    if (p.fast_f)
        snprintf(f, sizeof f, "forward fast, %d channels/block, %d states/round, %zu B shared", p.rf, p.nbf, p.smem_f);
    else
        snprintf(f, sizeof f, "forward simple (%s)", why);
    if (p.fast_b)
        snprintf(b, sizeof b,
                 "backward fast, %d channels/batch, %d states/round, %lld tiles of %lld channels, rows in %s and "
                 "dB/dC in %s memory%s, %zu B shared",
                 p.rb, p.nbb, (long long)p.tiles, (long long)p.rc, p.rows_global ? "global" : "shared",
                 p.acc_smem ? "shared" : "global", p.atomics && p.rb > 1 ? " (atomics)" : "", p.smem_b);
    else
        snprintf(b, sizeof b, "backward simple (%s)", why);
    snprintf(buf, n, "chunk %lld (%d warps x %d items) x %lld; %s; %s", (long long)p.T, p.nw, p.items, (long long)p.nc,
             f, b);
    return buf;
}

int imb_selective_scan_fwd_cuda(void *stream, const imb_scan_geom *g, float *y, float *ws, int save_states,
                                const float *u, const float *delta, const float *A, const float *B, const float *C,
                                const float *D, const float *bias, const float *z, const float *mask) {
    if (const char *e = geom_error(g)) return fail("selective scan forward: %s", e);
    if (!y || !ws || !u || !delta || !A || !B || !C) return fail("selective scan forward: %s", "a required pointer is NULL");
    const Plan p = make_plan(g, 0);
    Args a;
    fill_args(a, g, p);
    a.u = u, a.delta = delta, a.A = A, a.B = B, a.C = C, a.D = D, a.bias = bias, a.z = z, a.mask = mask, a.y = y;
    a.nb = p.nbf;
    a.states = save_states && p.nc > 1 ? ws : nullptr;
    a.hws = ws + states_floats(g, p);
    const cudaStream_t st = (cudaStream_t)stream;
    if (p.fast_f) {
        const char *e = launch_fwd_fast(a, p, st);
        return e ? fail("%s", e) : 0;
    }
    return launch_flat(scan_fwd_simple, g->Bt * g->Dm, st, a, "selective scan forward (simple)");
}

int imb_selective_scan_bwd_cuda(void *stream, const imb_scan_geom *g, float *du, float *ddelta, float *dA, float *dB,
                                float *dC, float *dD, float *dbias, float *dz, float *ws, const float *fws,
                                const float *dy, const float *u, const float *delta, const float *A, const float *B,
                                const float *C, const float *D, const float *bias, const float *z, const float *mask) {
    if (const char *e = geom_error(g)) return fail("selective scan backward: %s", e);
    if (!ws || !fws || !dy || !u || !delta || !A || !B || !C)
        return fail("selective scan backward: %s", "a required pointer is NULL");
    const Plan p = make_plan(g, z != nullptr);
    Args a;
    fill_args(a, g, p);
    a.u = u, a.delta = delta, a.A = A, a.B = B, a.C = C, a.D = D, a.bias = bias, a.z = z, a.mask = mask;
    a.dy = dy, a.du = du, a.ddelta = ddelta, a.dA = dA, a.dB = dB, a.dC = dC, a.dD = dD, a.dbias = dbias, a.dz = dz;
    a.nb = p.nbb;
    a.states = p.nc > 1 ? (float *)fws : nullptr;
    const cudaStream_t st = (cudaStream_t)stream;
    if (!p.fast_b) {
        a.sws = ws;
        if (launch_flat(scan_bwd_simple, g->Bt * g->Dm, st, a, "selective scan backward (simple)")) return -1;
        if ((dA || dD || dbias) && launch_flat(simple_reduce_params, g->K * g->Dm, st, a, "selective scan backward (dA)"))
            return -1;
        if ((dB || dC) && launch_flat(simple_reduce_bc, g->Bt * g->K * g->G * g->N * g->L, st, a,
                                      "selective scan backward (dB, dC)"))
            return -1;
        return 0;
    }
    a.q = ws;
    a.pp = ws + g->Bt * g->G * p.tiles * g->K * 2 * g->N * p.Lp;
    a.rowsg = rows_floats(g, p, z != nullptr) ? a.pp + g->Bt * g->K * g->Dm * (g->N + 2) : nullptr;
    if (const char *e = launch_bwd_fast(a, p, st)) return fail("%s", e);
    if ((dA || dD || dbias) &&
        launch_flat(fast_reduce_params, g->K * g->Dm * (g->N + 2), st, a, "selective scan backward (dA)"))
        return -1;
    if ((dB || dC) && launch_flat(fast_reduce_bc, g->Bt * g->K * g->G * 2 * g->N * g->L, st, a,
                                  "selective scan backward (dB, dC)"))
        return -1;
    return 0;
}

}   // extern "C"
