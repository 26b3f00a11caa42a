#!/usr/bin/env python3
"""Float64 PyTorch reference for the selective scan: checks the dumps of bench/scan_bench (GPU machine).

    build/scan_bench check scan_check && python3 bench/scan_ref.py scan_check [--device cuda|cpu]

For every scan_check/<case>/meta.json it reads the inputs, runs the reference forward in float64 -- mamba's
selective_scan_ref definition (a loop over time) applied per direction in that direction's scan order
and added back at token positions, as VMamba's cross-scan / cross-merge do -- and its backward through
autograd with the dumped dy, then compares y and every gradient with the CUDA results: the fast kernels
(<name>.f32) and the simple ones (<name>_simple.f32).
Relative error of a tensor: max |ours - ref| / max |ref| (the definition of tests/optest.c). fp32 bound:
1e-5. Prints a table; exit status 1 when a tensor is above the bound (2 when a file is missing).
Needs only torch (no numpy).
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

BOUND = 1e-5
INPUTS = ["u", "delta", "A", "B", "C", "D", "bias", "z", "mask", "dy"]
OUTPUTS = ["y", "du", "ddelta", "dA", "dB", "dC", "dD", "dbias", "dz"]


def load(d, name, shape, dev):
    path = os.path.join(d, name + ".f32")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    t = torch.frombuffer(data, dtype=torch.float32)
    n = 1
    for s in shape:
        n *= s
    if t.numel() != n:
        sys.exit(f"scan_ref: {path}: {t.numel()} floats, expected {n} for shape {shape}")
    return t.reshape(shape).to(dev)


def shapes(m):
    Bt, Dm, L, N, G, K = m["Bt"], m["Dm"], m["L"], m["N"], m["G"], m["K"]
    return {
        "u": (Bt, Dm, L), "delta": (Bt, K * Dm, L), "A": (K * Dm, N), "B": (Bt, K * G, N, L),
        "C": (Bt, K * G, N, L), "D": (K * Dm,), "bias": (K * Dm,), "z": (Bt, Dm, L), "mask": (Bt, L),
        "dy": (Bt, Dm, L), "y": (Bt, Dm, L),
    }


def positions(o, L, H, W):
    """token position of each scan step of order o (bit 0: column-major over H x W, bit 1: reversed)"""
    s = torch.arange(L)
    if o & 2:
        s = L - 1 - s
    if o & 1:
        return (s % H) * W + torch.div(s, H, rounding_mode="floor")
    return s


def reference(m, t):
    """y [Bt, Dm, L] in float64 from the float64 inputs t (None where absent)"""
    Bt, Dm, L, N, G, K, dirs, H, W = (m[k] for k in ("Bt", "Dm", "L", "N", "G", "K", "dirs", "H", "W"))
    u, delta, A, B, C = t["u"], t["delta"], t["A"], t["B"], t["C"]
    x = delta if t["bias"] is None else delta + t["bias"].view(1, K * Dm, 1)
    dt = F.softplus(x)   # threshold 20, as the kernels
    if t["mask"] is not None:
        dt = dt * t["mask"].view(Bt, 1, L)
    y = torch.zeros(Bt, Dm, L, dtype=u.dtype, device=u.device)
    for k in range(dirs):
        o = 2 * k if dirs == 2 else k
        s = 0 if K == 1 else k
        perm = positions(o, L, H, W).to(u.device)
        dts = dt[:, s * Dm:(s + 1) * Dm][:, :, perm]                       # [Bt, Dm, L], scan order
        us = u[:, :, perm]
        As = A[s * Dm:(s + 1) * Dm]                                         # [Dm, N]
        Bs = B[:, s * G:(s + 1) * G][..., perm].repeat_interleave(Dm // G, dim=1)   # [Bt, Dm, N, L]
        Cs = C[:, s * G:(s + 1) * G][..., perm].repeat_interleave(Dm // G, dim=1)
        dA = torch.exp(torch.einsum("bdl,dn->bdln", dts, As))
        dBu = torch.einsum("bdl,bdnl,bdl->bdln", dts, Bs, us)
        h = u.new_zeros(Bt, Dm, N)
        ys = []
        for i in range(L):
            h = dA[:, :, i] * h + dBu[:, :, i]
            ys.append(torch.einsum("bdn,bdn->bd", h, Cs[:, :, :, i]))
        y = y.index_add(2, perm, torch.stack(ys, dim=2))                    # cross-merge
    if t["D"] is not None:
        y = y + t["D"].view(K, Dm).sum(0).view(1, Dm, 1) * u
    if t["z"] is not None:
        y = y * F.silu(t["z"])
    return y


def rel(a, b):
    num = (a.double() - b).abs().max().item()
    den = b.abs().max().item()
    return num / (den + 1e-30)


def check(d, dev):
    with open(os.path.join(d, "meta.json")) as f:
        m = json.load(f)
    sh = shapes(m)
    t = {}
    for name in INPUTS:
        t[name] = load(d, name, sh[name], dev).double() if m["has"][name] else None
    grads = [n for n in ("u", "delta", "A", "B", "C", "D", "bias", "z") if t[n] is not None]
    for n in grads:
        t[n].requires_grad_(True)
    y = reference(m, t)
    g = torch.autograd.grad(y, [t[n] for n in grads], grad_outputs=t["dy"])
    ref = {"y": y.detach()}
    for n, gn in zip(grads, g):
        ref["d" + n] = gn
    rows = []
    for name in OUTPUTS:
        if name not in ref:
            continue
        shape = sh[name[1:]] if name != "y" else sh["y"]
        fast = rel(load(d, name, shape, dev), ref[name])
        simple = rel(load(d, name + "_simple", shape, dev), ref[name])
        rows.append((name, fast, simple))
    return m, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    cases = sorted(c for c in os.listdir(args.dir) if os.path.exists(os.path.join(args.dir, c, "meta.json")))
    if not cases:
        sys.exit(f"scan_ref: no case (meta.json) under {args.dir}")
    print(f"float64 reference on {args.device}; relative error max|ours - ref| / max|ref|, bound {BOUND:g}\n")
    print("| case | tensor | fast kernels | simple kernels |\n|---|---|---|---|")
    worst_fast = worst_simple = 0.0
    bad = 0
    for c in cases:
        m, rows = check(os.path.join(args.dir, c), args.device)
        for name, fast, simple in rows:
            flag = "" if fast <= BOUND and simple <= BOUND else " **over**"
            print(f"| {c} | {name} | {fast:.2e} | {simple:.2e}{flag} |")
            worst_fast, worst_simple = max(worst_fast, fast), max(worst_simple, simple)
            bad += fast > BOUND or simple > BOUND
        sys.stdout.flush()
    print(f"\nscan_ref: {len(cases)} cases, worst fast {worst_fast:.2e}, worst simple {worst_simple:.2e}: "
          f"{'PASS' if not bad else f'FAIL ({bad} tensors over {BOUND:g})'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
