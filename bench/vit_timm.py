#!/usr/bin/env python3
"""Golden check against timm (run on the GPU machine, which has torch + timm): timm's
vit_*_patch16_224 with random weights -> safetensors with timm's own parameter names ->
our imb_logits on the same input; prints the max relative logit error (fp32)."""
import argparse, os, subprocess, sys, tempfile
import numpy as np
import torch, timm
from safetensors.torch import save_file

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="vit_small_patch16_224")
ap.add_argument("--preset", default="vit-s")
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--res", type=int, default=224)
ap.add_argument("--device", default="cpu")
ap.add_argument("--bin", default="build/imb_logits")
a = ap.parse_args()

torch.manual_seed(0)
m = timm.create_model(a.model, pretrained=False, num_classes=1000).eval()
# timm's init leaves biases and norms at 0/1; perturb every tensor so each one matters
with torch.no_grad():
    for p in m.parameters():
        p.add_(0.02 * torch.randn_like(p))
x = torch.randn(a.batch, 3, a.res, a.res)
with torch.no_grad():
    torch.backends.cuda.matmul.allow_tf32 = False
    ref = m(x).double().numpy()
d = tempfile.mkdtemp()
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{d}/w.safetensors")
x.numpy().astype(np.float32).tofile(f"{d}/x.f32")
subprocess.run([a.bin, "--backbone", a.preset, "--weights", f"{d}/w.safetensors", "--input", f"{d}/x.f32",
                "--output", f"{d}/y.f32", "--batch", str(a.batch), "--res", str(a.res), "--device", a.device],
               check=True)
ours = np.fromfile(f"{d}/y.f32", dtype=np.float32).reshape(ref.shape).astype(np.float64)
rel = np.abs(ours - ref).max() / np.abs(ref).max()
print(f"{a.model} vs imbench {a.preset} ({a.device}, fp32, batch {a.batch}, {a.res}px): max rel logit error {rel:.3e}")
sys.exit(0 if rel <= 1e-4 else 1)
