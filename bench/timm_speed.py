#!/usr/bin/env python3
"""Peer side of `harness bench` (run in the same session on the GPU machine): timm ViT
inference and train-step (AdamW) throughput at a batch, per resolution, CUDA-event timed,
median of 20 after warm-up. --tf32 0 matches imbench's pedantic fp32 GEMMs."""
import argparse, statistics
import torch, timm

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="vit_small_patch16_224")
ap.add_argument("--res", default="224,384,512")
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--tf32", type=int, default=0)
a = ap.parse_args()
torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
torch.backends.cudnn.allow_tf32 = bool(a.tf32)

def med_ms(fn, warm=5, reps=20):
    for _ in range(warm): fn()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    return statistics.median(ts)

print(f"| timm {a.model} | res | batch | tf32 | latency (ms/batch) | infer img/s | train img/s |")
for r in [int(x) for x in a.res.split(",")]:
    m = timm.create_model(a.model, pretrained=False, img_size=r).cuda()
    x = torch.randn(a.batch, 3, r, r, device="cuda"); y = torch.randint(0, 1000, (a.batch,), device="cuda")
    m.eval()
    with torch.no_grad(): ti = med_ms(lambda: m(x))
    m.train(); opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    def step():
        opt.zero_grad(set_to_none=True); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
    tt = med_ms(step)
    print(f"| timm {a.model} | {r} | {a.batch} | {a.tf32} | {ti:.1f} | {a.batch/ti*1e3:.0f} | {a.batch/tt*1e3:.0f} |")
    del m, opt; torch.cuda.empty_cache()
