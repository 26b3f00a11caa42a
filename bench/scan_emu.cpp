// Runs kernels/cuda/scan.cu and scan_fast.cu on the CPU (bench/emu) against the CPU reference: a GPU-free test.
//
// Build and run from the repository root, configured in build/ (see bench/README.md):
//   gcc -std=c11 -O1 -g -fsanitize=address,undefined -Ibuild -Ikernels -c kernels/cpu/scan.c -o /tmp/cpu_scan.o
//   g++ -std=c++17 -O1 -g -fsanitize=address,undefined -DIMB_CUDA_EMU -Ibench/emu -Ibuild -Ikernels \
//       bench/scan_emu.cpp /tmp/cpu_scan.o -o /tmp/scan_emu && /tmp/scan_emu
// Each case runs the CUDA forward and backward under the forward, reverse and random thread orders and
// checks: y and every gradient against imb_selective_scan_{fwd,bwd}_cpu (max |diff| / max |ref| per
// tensor <= 1e-5, the parity test's bound), gradients added into what the buffers held (they start
// random), no write past any output (guard floats), no read of unwritten scratch (workspaces start as
// NaN, as does the emulator's shared memory), and bit-identical results under every thread order
// (determinism; a missing barrier shows up here). Cases cover both kernels, forced plans (chunks of
// 128 or 256 steps so that L spans several chunks, 1 to 8 warps per channel, channel slots that do not
// divide the group, dB/dC accumulators and rows in global memory, tiles), shared memory too small for
// the fast kernels, a forward of one kernel followed by the backward of the other, and the opt-in atomics (whose
// results may differ in the last bits between thread orders: that case skips the bit-identity check).
#include "cuda_runtime.h"
#include "../kernels/cuda/scan.cu"
#include "../kernels/cuda/scan_fast.cu"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

uint64_t g_state = 88172645463325252ull;
float frand() {   // xorshift, uniform in [-1, 1)
    g_state ^= g_state << 13;
    g_state ^= g_state >> 7;
    g_state ^= g_state << 17;
    return (float)((g_state >> 40) * (1.0 / (1ull << 24))) * 2.f - 1.f;
}

struct Case {
    const char *name;
    int64_t Bt, Dm, L, N, G;
    int dirs;
    int64_t H, W;
    int K, D, bias, z, mask;
    const char *cfg;       // IMB_SCAN_CFG, or "" for the default plan
    const char *fwd_kern;  // "fast" or "simple" (IMB_SCAN_KERNEL for the forward)
    const char *bwd_kern;  // the same for the backward
    int smem_kb;           // the emulated device's shared memory per block; 0 = 227
    int nondet;            // atomics: results may differ in the last bits between thread orders
};

constexpr int kGuard = 16;

// A buffer of n floats followed by kGuard NaN guards.
struct Buf {
    std::vector<float> v;
    size_t n = 0;
    explicit Buf(size_t n_ = 0, bool rnd = false, float scale = 1.f, float shift = 0.f) : v(n_ + kGuard, NAN), n(n_) {
        for (size_t i = 0; i < n; i++) v[i] = rnd ? shift + scale * frand() : 0.f;
    }
    float *p() { return n ? v.data() : nullptr; }
    bool guards_ok() const {
        for (int i = 0; i < kGuard; i++)
            if (!std::isnan(v[n + i])) return false;
        return true;
    }
};

double rel_diff(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!std::isfinite(a[i])) return INFINITY;
        num = std::fmax(num, std::fabs((double)a[i] - ref[i]));
        den = std::fmax(den, std::fabs((double)ref[i]));
    }
    return num / (den + 1e-30);
}

void set_env(const char *k, const char *v) {
    if (v && *v) setenv(k, v, 1);
    else unsetenv(k);
}

// outputs of one run: y then the gradients, in a fixed order
struct Outs {
    std::vector<std::vector<float>> t;
};

const char *kNames[] = { "y", "du", "ddelta", "dA", "dB", "dC", "dD", "dbias", "dz" };

int run_case(const Case &c) {
    imb_scan_geom g = { c.Bt, c.Dm, c.N, c.G, c.L, c.dirs == 4 ? c.H : c.L, c.dirs == 4 ? c.W : 1, c.dirs, c.K };
    const size_t nu = c.Bt * c.Dm * c.L, nd = c.Bt * c.K * c.Dm * c.L, na = c.K * c.Dm * c.N,
                 nb = c.Bt * c.K * c.G * c.N * c.L, nk = c.K * c.Dm, nm = c.Bt * c.L;
    // inputs: A negative (states decay, as Mamba's -exp(A_log)), delta around softplus' knee
    Buf u(nu, true), delta(nd, true, 2.f), A(na, true, 0.45f, -0.55f), B(nb, true), C(nb, true);
    Buf D(c.D ? nk : 0, true), bias(c.bias ? nk : 0, true, 0.5f), z(c.z ? nu : 0, true, 2.f), mask(c.mask ? nm : 0);
    Buf dy(nu, true);
    for (size_t i = 0; i < mask.n; i++) mask.v[i] = frand() > -0.6f ? 1.f : 0.f;   // ~20% padding
    const size_t sizes[9] = { nu, nu, nd, na, nb, nb, c.D ? nk : 0, c.bias ? nk : 0, c.z ? nu : 0 };
    std::vector<float> init[9];
    for (int t = 1; t < 9; t++) {   // gradients start random: both sides must add into them
        init[t].resize(sizes[t]);
        for (auto &x : init[t]) x = frand();
    }

    // CPU reference
    Outs ref;
    {
        std::vector<Buf> o;
        for (int t = 0; t < 9; t++) {
            o.emplace_back(sizes[t]);
            if (t) std::copy(init[t].begin(), init[t].end(), o[t].v.begin());
        }
        Buf fws(imb_scan_fwd_ws(&g)), bws(imb_scan_bwd_ws(&g));
        imb_selective_scan_fwd_cpu(&g, o[0].p(), fws.p(), u.p(), delta.p(), A.p(), B.p(), C.p(), D.p(), bias.p(),
                                   z.p(), mask.p());
        imb_selective_scan_bwd_cpu(&g, o[1].p(), o[2].p(), o[3].p(), o[4].p(), o[5].p(), o[6].p(), o[7].p(),
                                   o[8].p(), bws.p(), dy.p(), u.p(), delta.p(), A.p(), B.p(), C.p(), D.p(), bias.p(),
                                   z.p(), mask.p());
        for (int t = 0; t < 9; t++) ref.t.emplace_back(o[t].v.begin(), o[t].v.begin() + o[t].n);
    }

    imb_emu::S().smem_optin = (c.smem_kb ? c.smem_kb : 227) * 1024;
    set_env("IMB_SCAN_CFG", c.cfg);
    char plan[512];
    set_env("IMB_SCAN_KERNEL", c.fwd_kern);
    std::string pf = imb_scan_cuda_plan(&g, c.z, plan, sizeof plan);
    set_env("IMB_SCAN_KERNEL", c.bwd_kern);
    std::string pb = imb_scan_cuda_plan(&g, c.z, plan, sizeof plan);
    int fails = 0;
    Outs first;
    for (int order = 0; order < 3; order++) {
        imb_emu::S().order = order;
        std::vector<Buf> o;
        for (int t = 0; t < 9; t++) {
            o.emplace_back(sizes[t]);
            if (t) std::copy(init[t].begin(), init[t].end(), o[t].v.begin());
        }
        for (size_t i = 0; i < o[0].n; i++) o[0].v[i] = NAN;   // every y element must be written
        set_env("IMB_SCAN_KERNEL", c.fwd_kern);
        Buf fws(imb_scan_fwd_ws_cuda(&g));
        for (size_t i = 0; i < fws.n; i++) fws.v[i] = NAN;
        if (imb_selective_scan_fwd_cuda(nullptr, &g, o[0].p(), fws.p(), 1, u.p(), delta.p(), A.p(), B.p(), C.p(),
                                        D.p(), bias.p(), z.p(), mask.p())) {
            printf("  %-30s forward failed: %s\n", c.name, imb_scan_cuda_error());
            return 1;
        }
        set_env("IMB_SCAN_KERNEL", c.bwd_kern);
        Buf bws(imb_scan_bwd_ws_cuda(&g, c.z));
        for (size_t i = 0; i < bws.n; i++) bws.v[i] = NAN;
        if (imb_selective_scan_bwd_cuda(nullptr, &g, o[1].p(), o[2].p(), o[3].p(), o[4].p(), o[5].p(), o[6].p(),
                                        o[7].p(), o[8].p(), bws.p(), fws.p(), dy.p(), u.p(), delta.p(), A.p(), B.p(),
                                        C.p(), D.p(), bias.p(), z.p(), mask.p())) {
            printf("  %-30s backward failed: %s\n", c.name, imb_scan_cuda_error());
            return 1;
        }
        Outs got;
        for (int t = 0; t < 9; t++) {
            if (!o[t].guards_ok()) {
                printf("  %-30s order %d: write past the end of %s\n", c.name, order, kNames[t]);
                fails++;
            }
            got.t.emplace_back(o[t].v.begin(), o[t].v.begin() + o[t].n);
        }
        if (!fws.guards_ok() || !bws.guards_ok()) {
            printf("  %-30s order %d: write past the end of a workspace\n", c.name, order);
            fails++;
        }
        if (order == 0) {
            std::string line;
            double worst = 0;
            for (int t = 0; t < 9; t++) {
                if (!sizes[t]) continue;
                const double e = rel_diff(got.t[t].data(), ref.t[t].data(), sizes[t]);
                worst = std::fmax(worst, e);
                char buf[64];
                snprintf(buf, sizeof buf, " %s %.1e", kNames[t], e);
                line += buf;
                if (!(e <= 1e-5)) {
                    printf("  %-30s %s differs from the CPU: %.3g > 1e-5\n", c.name, kNames[t], e);
                    fails++;
                }
            }
            printf("%-30s %s max %.1e |%s\n", c.name, fails ? "FAIL" : "ok  ", worst, line.c_str());
            first = got;
        } else {
            for (int t = 0; t < 9 && !c.nondet; t++)
                if (sizes[t] && memcmp(got.t[t].data(), first.t[t].data(), sizeof(float) * sizes[t])) {
                    printf("  %-30s %s under thread order %d is not bit-identical to order 0\n", c.name, kNames[t],
                           order);
                    fails++;
                }
        }
    }
    printf("    plan: %s\n", pf.c_str());
    if (pb != pf) printf("    backward plan: %s\n", pb.c_str());
    set_env("IMB_SCAN_CFG", nullptr);
    set_env("IMB_SCAN_KERNEL", nullptr);
    imb_emu::S().smem_optin = 227 * 1024;
    return fails;
}

}   // namespace

int main(int argc, char **argv) {
    const bool quick = argc > 1 && !strcmp(argv[1], "quick");
    // name, Bt Dm L N G, dirs H W, K D bias z mask, cfg, fwd kernel, bwd kernel, smem KB, nondet
    const Case cases[] = {
        { "4dir K4 N16 (VMamba-like)", 2, 16, 49, 16, 1, 4, 7, 7, 4, 1, 1, 0, 0, "", "fast", "fast", 0, 0 },
        { "4dir K1 N3 z mask", 2, 8, 35, 3, 2, 4, 5, 7, 1, 1, 1, 1, 1, "", "fast", "fast", 0, 0 },
        { "1dir N1 z (Mamba-like)", 2, 8, 40, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, "", "fast", "fast", 0, 0 },
        { "2dir K2 mask noz", 2, 8, 33, 2, 1, 2, 0, 0, 2, 1, 1, 0, 1, "", "fast", "fast", 0, 0 },
        { "1dir L=T+3 chunks of 128", 2, 4, 131, 4, 1, 1, 0, 0, 1, 1, 1, 1, 1, "nw=1,items=4", "fast", "fast", 0, 0 },
        { "2dir K2 L=300 chunks of 128", 1, 4, 300, 2, 2, 2, 0, 0, 2, 1, 1, 1, 0, "nw=1,items=4", "fast", "fast", 0, 0 },
        { "4dir K4 2 warps/ch 3 chunks", 1, 4, 600, 2, 1, 4, 20, 30, 4, 1, 1, 1, 1, "nw=2,items=4", "fast", "fast", 0, 0 },
        { "4dir K1 4 warps/ch L=T+5", 1, 2, 517, 1, 1, 4, 11, 47, 1, 1, 0, 1, 0, "nw=4,items=4", "fast", "fast", 0, 0 },
        { "slots 3 of 5/group, tiles 2", 2, 10, 45, 3, 2, 4, 5, 9, 4, 1, 1, 1, 1, "rf=3,rb=3,tiles=2", "fast", "fast", 0, 0 },
        { "dB/dC in global memory", 2, 10, 45, 8, 2, 4, 9, 5, 1, 1, 1, 0, 1, "rb=4,acc=global,tiles=2", "fast", "fast", 0, 0 },
        { "N64 (state rounds)", 1, 4, 30, 64, 1, 2, 0, 0, 1, 1, 1, 1, 0, "", "fast", "fast", 0, 0 },
        { "group per channel G=Dm", 2, 4, 24, 2, 4, 4, 4, 6, 4, 0, 1, 1, 0, "", "fast", "fast", 0, 0 },
        { "N1 L=2112 default plan", 1, 2, 2112, 1, 1, 4, 44, 48, 4, 1, 1, 0, 1, "", "fast", "fast", 0, 0 },
        { "simple kernels", 2, 8, 35, 3, 2, 4, 5, 7, 4, 1, 1, 1, 1, "", "simple", "simple", 0, 0 },
        { "simple fwd, fast bwd", 1, 4, 131, 3, 1, 4, 1, 131, 1, 1, 1, 1, 1, "nw=1,items=4", "simple", "fast", 0, 0 },
        { "fast fwd, simple bwd", 1, 4, 131, 3, 1, 2, 0, 0, 2, 1, 1, 1, 1, "nw=1,items=4", "fast", "simple", 0, 0 },
        { "small shared memory", 2, 8, 300, 4, 1, 4, 15, 20, 4, 1, 1, 1, 0, "", "fast", "fast", 24, 0 },
        { "tiny smem: simple fwd, global bwd", 1, 4, 300, 2, 1, 2, 0, 0, 1, 1, 1, 1, 0, "", "fast", "fast", 4, 0 },
        { "rows in global memory (forced)", 2, 10, 45, 3, 2, 4, 5, 9, 4, 1, 1, 1, 1, "rf=3,rb=3,rows=global", "fast", "fast", 0, 0 },
        { "long rows: global (auto)", 1, 4, 1000, 2, 1, 4, 40, 25, 4, 1, 1, 1, 1, "", "fast", "fast", 24, 0 },
        { "dB/dC with atomics (opt-in)", 2, 10, 45, 3, 2, 4, 5, 9, 4, 1, 1, 1, 1, "rf=3,rb=3,atomics=1", "fast", "fast", 0, 1 },
    };
    int fails = 0, n = 0;
    for (const Case &c : cases) {
        if (quick && c.L > 600) continue;
        fails += run_case(c) ? 1 : 0;
        n++;
    }
    printf("%d cases, %d failed\n", n, fails);
    return fails ? 1 : 0;
}
