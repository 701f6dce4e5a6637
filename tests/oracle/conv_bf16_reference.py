"""PyTorch's CPU bfloat16 autocast for one convolution and one linear layer (tests/core/test_mixed_ops.cpp).

usage: conv_bf16_reference.py DIR STRIDE PADDING GROUPS
DIR holds x.npy, w.npy, b.npy, dy.npy (convolution) and lx.npy, lw.npy, lb.npy, ldy.npy (linear), float32;
this writes y.npy, dx.npy, dw.npy, db.npy and ly.npy, ldx.npy, ldw.npy, ldb.npy, float32, computed under
torch.autocast("cpu", dtype=torch.bfloat16) with float32 leaves, as a mixed-precision training step does."""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
d, stride, padding, groups = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


def leaf(name):
    return torch.from_numpy(np.load(os.path.join(d, name))).requires_grad_(True)


def save(name, t):
    np.save(os.path.join(d, name), t.detach().float().numpy())


def run(prefix, f, names):
    x, w, b = (leaf(prefix + n + ".npy") for n in names)
    dy = torch.from_numpy(np.load(os.path.join(d, prefix + "dy.npy")))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = f(x, w, b)
    assert y.dtype == torch.bfloat16
    y.backward(dy.to(y.dtype))
    save(prefix + "y.npy", y)
    for n, t in zip(("dx", "dw", "db"), (x, w, b)):
        save(prefix + n + ".npy", t.grad)


run("", lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups), ("x", "w", "b"))
run("l", F.linear, ("x", "w", "b"))
