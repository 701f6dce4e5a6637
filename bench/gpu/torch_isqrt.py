"""iSQRT-COV forward and forward+backward in PyTorch on one device: the seed's code (bench/gpu/seed_mpncov.py,
hand-written backward) and the same forward under autograd. The peer of `gpu_bench rep` (bench/gpu_bench.cpp);
scripts/gpu-check.sh runs both and prints the ratios.

usage: python3 bench/gpu/torch_isqrt.py [--device cuda] [--iterations 5] [--reps 5] BxCxHxW...
prints one "RESULT torch_rep variant=V shape=S fwd_s=F fwdbwd_s=B" line per variant and shape (medians).
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed_mpncov import isqrt_cov, isqrt_cov_autograd  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("shapes", nargs="+")
    a = p.parse_args()
    device = torch.device(a.device)
    # Full float32 matrix products, as ours (cuBLAS without TF32).
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
    except RuntimeError:  # a PyTorch that takes only its newer precision setting
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    print(f"torch {torch.__version__} on {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'host'})", flush=True)
    variants = {"seed": isqrt_cov, "autograd": isqrt_cov_autograd}
    for text in a.shapes:
        shape = tuple(int(v) for v in text.split("x"))
        x = torch.rand(shape, device=device) * 2
        g = torch.rand(shape[0], shape[1] * (shape[1] + 1) // 2, device=device) * 2 - 1
        for name, fn in variants.items():
            xr = x.clone().requires_grad_(True)
            fn(xr, a.iterations).backward(g)  # warm-up: kernels, cuBLAS handles, the caching allocator
            sync(device)
            fwd, both = [], []
            for _ in range(a.reps):
                t = time.perf_counter()
                with torch.no_grad():
                    fn(x, a.iterations)
                sync(device)
                fwd.append(time.perf_counter() - t)
                xr = x.clone().requires_grad_(True)
                sync(device)
                t = time.perf_counter()
                fn(xr, a.iterations).backward(g)
                sync(device)
                both.append(time.perf_counter() - t)
            print(f"RESULT torch_rep variant={name} shape={text} device={device} iterations={a.iterations} "
                  f"fwd_s={statistics.median(fwd):.6f} fwdbwd_s={statistics.median(both):.6f}", flush=True)
        del x, g
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
