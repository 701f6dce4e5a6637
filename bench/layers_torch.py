"""PyTorch side of bench/layers_bench.cpp: times one layer's forward and forward+backward.

usage: layers_torch.py TYPE YAML SHAPE REPS THREADS
Prints "forward_seconds fwd_bwd_seconds" (medians of REPS after one warm-up)."""
import ctypes
import sys
import time

import torch
import torch.nn as nn
import yaml

kind, keys, shape, reps, threads = sys.argv[1], yaml.safe_load(sys.argv[2]) or {}, sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
try:  # Debian's OpenBLAS ignores torch.set_num_threads (see docs/measuring.md)
    ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(threads)
except OSError:
    pass
dims = [int(d) for d in shape.split("x")]
x = torch.rand(*dims) * 2 - 1
x.requires_grad_(True)
p = lambda v: tuple(v) if isinstance(v, list) else v
if kind == "conv":
    m = nn.Conv2d(dims[1], keys["out_channels"], p(keys["kernel_size"]), stride=p(keys.get("stride", 1)),
                  padding=p(keys.get("padding", 0)), groups=keys.get("groups", 1), bias=keys.get("bias", True))
elif kind == "batchnorm":
    m = nn.BatchNorm2d(dims[1])
elif kind == "relu":
    m = nn.ReLU()
elif kind == "maxpool":
    m = nn.MaxPool2d(keys["kernel_size"], keys.get("stride"), keys.get("padding", 0))
elif kind == "linear":
    m = nn.Linear(dims[-1], keys["out_features"])
else:
    raise SystemExit("unknown type " + kind)


def median(f):
    f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def fwd():
    with torch.no_grad():
        m(x)


def fwd_bwd():
    y = m(x)
    y.backward(torch.ones_like(y))


print(median(fwd), median(fwd_bwd))
