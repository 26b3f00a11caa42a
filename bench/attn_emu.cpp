// Runs kernels/cuda/attention.cu on the CPU (bench/emu) against the CPU reference: a GPU-free test.
//
// Build and run from the repository root, configured in build/ (see bench/README.md):
//   gcc -std=c11 -O1 -g -fsanitize=address,undefined -Ibuild -c kernels/cpu/attention.c -o /tmp/cpu_attention.o
//   g++ -std=c++17 -O1 -g -fsanitize=address,undefined -DIMB_CUDA_EMU -Ibench/emu -Ibuild -Ikernels
//       bench/attn_emu.cpp /tmp/cpu_attention.o -o /tmp/attn_emu && /tmp/attn_emu
// Every case runs with each tile set (large, small, tensor cores), and the forward and backward under
// forward, reverse and random thread orders; it checks out / dq / dk / dv against
// imb_attention_{fwd,bwd}_cpu (max |diff| / max(max |ref|, 0.1) <= 1e-5: the parity test's bound, with a
// floor for all-zero gradients), that the gradients are added into what the buffers held, that every run
// is bit-identical (determinism), and that lse matches a double-precision log-sum-exp.
#include "cuda_runtime.h"
#include "../kernels/cuda/attention.cu"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

struct Case {
    const char *name;
    int B, H, Lq, Lk, Dh;
    int mask;     // 0 none, 1 20% random holes + batch 1 fully padded when B > 2, 2 first key of each
                  // batch padded, 3 tests/cases_nn.c's attn_mask
    int causal;
    float scale;  // <= 0: 1/sqrt(Dh)
    int misalign; // 1: every tensor starts one float past a 16-byte boundary (scalar path)
};

const float optest_mask[14] = { 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1 };

uint64_t g_state = 88172645463325252ull;
float frand() {   // xorshift, uniform in [-1, 1)
    g_state ^= g_state << 13; g_state ^= g_state >> 7; g_state ^= g_state << 17;
    return (float)((g_state >> 40) * (1.0 / (1ull << 24))) * 2.f - 1.f;
}

// A buffer whose data may start one float past the allocation (misalign), exactly sized for ASan.
struct Buf {
    std::vector<float> mem;
    float *p = nullptr;
    size_t n = 0;
    Buf(size_t n_, int mis, bool rnd, float fill = 0.f) : mem(n_ + 4), n(n_) {
        float *base = mem.data();
        while (((uintptr_t)base & 15u) != 0) base++;   // vector storage is 16-aligned in practice
        p = base + (mis ? 1 : 0);
        for (size_t i = 0; i < n; i++) p[i] = rnd ? frand() : fill;
    }
};

double rel_diff(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!std::isfinite(a[i])) return INFINITY;
        num = std::fmax(num, std::fabs((double)a[i] - ref[i]));
        den = std::fmax(den, std::fabs((double)ref[i]));
    }
    // The floor: with a single key every gradient is exactly 0 in the reference (dS = P (dP - rowdot)
    // cancels), and ~1e-7 of round-off measured against 0 says nothing. Inputs here are O(1) and the
    // gradients of every other shape 0.1 to 1, where the floor does not act.
    return num / std::max(den, 0.1);
}

int run_case(const Case &c) {
    const size_t C = (size_t)c.H * c.Dh, nq = (size_t)c.B * c.Lq * C, nk = (size_t)c.B * c.Lk * C;
    const size_t nrow = (size_t)c.B * c.H * c.Lq;
    const float scale = c.scale > 0 ? c.scale : (float)(1.0 / std::sqrt((double)c.Dh));
    Buf q(nq, c.misalign, true), k(nk, c.misalign, true), v(nk, c.misalign, true), dout(nq, c.misalign, true);
    // larger scores than N(0,1) inputs give, to exercise the running max
    for (size_t i = 0; i < nq; i++) q.p[i] *= 3.f;
    std::vector<float> mask;
    if (c.mask) {
        mask.assign((size_t)c.B * c.Lk, 1.f);
        for (int b = 0; b < c.B; b++)
            for (int j = 0; j < c.Lk; j++) {
                if (c.mask == 1) mask[(size_t)b * c.Lk + j] = (b == 1 && c.B > 2) ? 0.f : (frand() > 0.6f ? 0.f : 1.f);
                if (c.mask == 3) mask[(size_t)b * c.Lk + j] = optest_mask[(b * 7 + j) % 14];
                if (c.mask == 2 && j == 0) mask[(size_t)b * c.Lk] = 0.f;
            }
    }
    const float *mp = c.mask ? mask.data() : nullptr;

    // CPU reference
    std::vector<float> oref(nq), P((size_t)c.B * c.H * c.Lq * c.Lk), dqr(nq, 0.f), dkr(nk, 0.f), dvr(nk, 0.f);
    imb_attention_fwd_cpu(oref.data(), P.data(), q.p, k.p, v.p, mp, c.B, c.H, c.Lq, c.Lk, c.Dh, c.causal, scale);
    imb_attention_bwd_cpu(dqr.data(), dkr.data(), dvr.data(), dout.p, P.data(), q.p, k.p, v.p, mp, c.B, c.H, c.Lq,
                          c.Lk, c.Dh, c.causal, scale);

    int bad = 0;
    std::vector<float> first_o, first_dq, first_dk, first_dv;
    const uint64_t grad_seed = g_state;
    for (int order = 0; order < 3; order++) {
        imb_emu::S().order = order;
        g_state = grad_seed;   // the same starting gradients every order: the runs must match bit for bit
        Buf out(nq, c.misalign, false, NAN), lse(nrow, 0, false, NAN), work(nrow, 0, false, NAN);
        Buf dq(nq, c.misalign, true), dk(nk, c.misalign, true), dv(nk, c.misalign, true);
        std::vector<float> dq0(dq.p, dq.p + nq), dk0(dk.p, dk.p + nk), dv0(dv.p, dv.p + nk);
        if (imb_attention_fwd_cuda(nullptr, out.p, lse.p, q.p, k.p, v.p, mp, c.B, c.H, c.Lq, c.Lk, c.Dh, c.causal,
                                   scale)) {
            printf("  %s: forward failed: %s\n", c.name, imb_attention_cuda_error());
            return 1;
        }
        if (imb_attention_bwd_cuda(nullptr, dq.p, dk.p, dv.p, work.p, dout.p, out.p, lse.p, q.p, k.p, v.p, mp, c.B,
                                   c.H, c.Lq, c.Lk, c.Dh, c.causal, scale)) {
            printf("  %s: backward failed: %s\n", c.name, imb_attention_cuda_error());
            return 1;
        }
        bool same = true;
        if (order == 0) {
            first_o.assign(out.p, out.p + nq); first_dq.assign(dq.p, dq.p + nq);
            first_dk.assign(dk.p, dk.p + nk); first_dv.assign(dv.p, dv.p + nk);
        } else {
            same = !memcmp(first_o.data(), out.p, nq * 4) && !memcmp(first_dq.data(), dq.p, nq * 4) &&
                   !memcmp(first_dk.data(), dk.p, nk * 4) && !memcmp(first_dv.data(), dv.p, nk * 4);
        }
        for (size_t i = 0; i < nq; i++) dq.p[i] -= dq0[i];
        for (size_t i = 0; i < nk; i++) { dk.p[i] -= dk0[i]; dv.p[i] -= dv0[i]; }
        double eo = rel_diff(out.p, oref.data(), nq), eq = rel_diff(dq.p, dqr.data(), nq);
        double ek = rel_diff(dk.p, dkr.data(), nk), ev = rel_diff(dv.p, dvr.data(), nk);
        // lse against double precision; -inf exactly where the row has no key
        double el = 0;
        int lse_bad = 0;
        for (int b = 0; b < c.B; b++)
            for (int h = 0; h < c.H; h++)
                for (int i = 0; i < c.Lq; i++) {
                    double mx = -INFINITY;
                    std::vector<double> s;
                    for (int j = 0; j < c.Lk; j++) {
                        if ((c.causal && j > i) || (mp && mp[(size_t)b * c.Lk + j] == 0.f)) continue;
                        double d = 0;
                        for (int e = 0; e < c.Dh; e++)
                            d += (double)q.p[((size_t)b * c.Lq + i) * C + (size_t)h * c.Dh + e] *
                                 k.p[((size_t)b * c.Lk + j) * C + (size_t)h * c.Dh + e];
                        s.push_back(d * scale);
                        mx = std::fmax(mx, d * scale);
                    }
                    float got = lse.p[((size_t)b * c.H + h) * c.Lq + i];
                    if (s.empty()) { lse_bad += !(std::isinf(got) && got < 0); continue; }
                    double sum = 0;
                    for (double x : s) sum += std::exp(x - mx);
                    double want = mx + std::log(sum);
                    el = std::fmax(el, std::fabs(got - want) / std::fmax(1.0, std::fabs(want)));
                }
        const bool ok = eo <= 1e-5 && eq <= 1e-5 && ek <= 1e-5 && ev <= 1e-5 && el <= 1e-5 && !lse_bad;
        double mref = 0;
        for (float x : dqr) mref = std::fmax(mref, std::fabs(x));
        if (!ok || !same || order == 0)
            printf("  %-26s order %d  |dq ref| %.2f  out %.2e dq %.2e dk %.2e dv %.2e lse %.2e%s%s %s\n", c.name, order, mref, eo, eq, ek,
                   ev, el, lse_bad ? " LSE-NOT-(-inf)" : "", same ? "" : " NOT-BIT-IDENTICAL", ok && same ? "ok" : "FAIL");
        bad += !ok || !same;
    }
    return bad;
}

}   // namespace

int main(int argc, char **argv) {
    const bool quick = argc > 1 && !strcmp(argv[1], "quick");
    // The op table's four cases first (same shapes and masks), then the tiles' edge cases.
    const Case cases[] = {
        { "optest attention", 2, 2, 5, 7, 4, 0, 0, 0, 0 },
        { "optest keymask", 2, 2, 5, 7, 4, 3, 0, 0, 0 },
        { "random holes", 2, 2, 5, 7, 4, 1, 0, 0, 0 },
        { "optest causal", 2, 3, 6, 6, 2, 0, 1, 0.7f, 0 },
        { "optest causal keymask", 2, 3, 6, 6, 2, 2, 1, 0, 0 },
        { "dh16", 2, 2, 37, 45, 16, 0, 0, 0, 0 },
        { "dh32 mask", 3, 2, 70, 33, 32, 1, 0, 0, 0 },
        { "dh64 vit-like", 1, 2, 197, 197, 64, 0, 0, 0, 0 },
        { "dh64 causal mask", 3, 1, 130, 130, 64, 2, 1, 0, 0 },
        { "dh64 misaligned", 1, 2, 65, 66, 64, 1, 0, 0, 1 },
        { "dh128", 1, 2, 70, 41, 128, 0, 0, 0, 0 },
        { "dh128 causal mask", 3, 1, 97, 97, 128, 1, 1, 0, 0 },
        { "dh20 pad", 2, 3, 33, 17, 20, 1, 0, 0.3f, 0 },
        { "dh100 pad", 1, 2, 9, 70, 100, 0, 0, 0, 0 },
        { "dh1", 1, 1, 3, 1, 1, 0, 0, 0, 0 },
        { "lq1 lk1", 2, 1, 1, 1, 64, 0, 0, 0, 0 },
        { "causal 1", 1, 1, 1, 1, 32, 0, 1, 0, 0 },
    };
    int fails = 0, n = 0;
    // every tile set of kernels/cuda/attention.cu: large, small, and the tensor-core kernels
    const char *sets[][3] = { { "large", "large", "large" }, { "small", "small", "small" }, { "tc", "tc", "tc" } };
    for (auto &t : sets) {
        setenv("IMB_ATTN_FWD_TILES", t[0], 1);
        setenv("IMB_ATTN_DKV_TILES", t[1], 1);
        setenv("IMB_ATTN_DQ_TILES", t[2], 1);
        printf(" tiles: forward %s, dK/dV %s, dQ %s\n", t[0], t[1], t[2]);
        int i = 0;
        for (const Case &c : cases) {
            if (quick && i++ >= 4) break;
            fails += run_case(c) != 0;
            n++;
        }
    }
    printf("%d cases, %d failed (%ld emulated blocks)\n", n, fails, imb_emu::S().blocks_run);
    return fails ? 1 : 0;
}
