"""iSQRT-COV benchmark: our mpncov layer (bench/rep_bench) against PyTorch on the same machine and threads.

PyTorch runs (float32, CPU):
  seed      the seed's code: Covpool (dense M x M centring matrix), Sqrtm and Triuvec as autograd Functions
            with the seed's hand-written backward (tests/oracle/representations.py)
  autograd  the same forward with autograd's own backward
  eigh      MPN-COV's square root by eigendecomposition (torch.linalg.eigh), autograd backward
Rounds interleave ours and PyTorch (A B A B); medians over rounds; ratios PyTorch / ours (above 1: we are
faster).

usage: /usr/bin/python3 bench/rep_torch.py [--bench build/rep_bench] [--threads 1] [--rounds 3] [--reps 5]
"""
import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
from representations import SeedSqrtm, covpool, newton_schulz, triuvec  # noqa: E402

SHAPES = [(8, 256, 28, 28), (8, 256, 14, 14), (32, 64, 14, 14)]


def eigh_sqrt(sigma):
    vals, vecs = torch.linalg.eigh(sigma)
    return vecs.matmul(torch.sqrt(vals.clamp(min=0)).unsqueeze(2) * vecs.transpose(1, 2))


def variants(iterations):
    return {
        "seed": lambda x: triuvec(SeedSqrtm.apply(covpool(x), iterations)),
        "autograd": lambda x: triuvec(newton_schulz(covpool(x), iterations)[0]),
        "eigh": lambda x: triuvec(eigh_sqrt(covpool(x))),
    }


def time_torch(fn, shape, reps):
    x = torch.rand(shape) * 2
    g = torch.rand(shape[0], shape[1] * (shape[1] + 1) // 2) * 2 - 1
    fwd, both = [], []
    with torch.no_grad():
        fn(x)
    for _ in range(reps):
        t = time.perf_counter()
        with torch.no_grad():
            fn(x)
        fwd.append(time.perf_counter() - t)
        xr = x.clone().requires_grad_(True)
        t = time.perf_counter()
        fn(xr).backward(g)
        both.append(time.perf_counter() - t)
    return statistics.median(fwd), statistics.median(both)


def time_ours(bench, shape, reps, threads, iterations):
    out = subprocess.run(
        [bench, "--threads", str(threads), "--reps", str(reps), "--iterations", str(iterations),
         "x".join(map(str, shape))],
        check=True, capture_output=True, text=True, env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE")).stdout
    _, fwd, both = out.split()
    return float(fwd), float(both)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "rep_bench"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--iterations", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(a.threads)  # torch's call does not reach it
    names = ["ours", "seed", "autograd", "eigh"]
    print(f"threads {a.threads}, iterations {a.iterations}, rounds {a.rounds} x reps {a.reps}, torch {torch.__version__}")
    print(f"{'shape':>16} {'pass':>8} " + " ".join(f"{n:>9}" for n in names) +
          "   seed/ours autograd/ours eigh/ours")
    for shape in SHAPES:
        results = {n: ([], []) for n in names}
        for _ in range(a.rounds):
            f, b = time_ours(a.bench, shape, a.reps, a.threads, a.iterations)
            results["ours"][0].append(f)
            results["ours"][1].append(b)
            for name, fn in variants(a.iterations).items():
                f, b = time_torch(fn, shape, a.reps)
                results[name][0].append(f)
                results[name][1].append(b)
        for k, label in ((0, "fwd"), (1, "fwd+bwd")):
            med = {n: statistics.median(results[n][k]) for n in names}
            print(f"{'x'.join(map(str, shape)):>16} {label:>8} " + " ".join(f"{med[n]:9.4f}" for n in names) +
                  f"   {med['seed'] / med['ours']:9.2f} {med['autograd'] / med['ours']:13.2f} "
                  f"{med['eigh'] / med['ours']:9.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
