"""PyTorch reference for one layer configuration (tests/layers/layer_test.h drives it).

usage: layer_reference.py DIR...
Each DIR holds case.txt (four lines: layer type, its keys as YAML, train or eval, float32 or float64), in_<i>.npy, param_<name>.npy, buffer_<name>.npy and dy_0.npy; this writes out_0.npy, din_<i>.npy
(float inputs), dparam_<name>.npy and after_<name>.npy (buffers after the forward)."""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

torch.set_num_threads(1)


def pair(v):
    return tuple(v) if isinstance(v, list) else v


def build(kind, keys, inputs):
    x = inputs[0]
    if kind == "conv":
        return nn.Conv2d(x.shape[1], keys["out_channels"], pair(keys["kernel_size"]), stride=pair(keys.get("stride", 1)),
                         padding=pair(keys.get("padding", 0)), dilation=pair(keys.get("dilation", 1)),
                         groups=keys.get("groups", 1), bias=keys.get("bias", True))
    if kind == "linear":
        return nn.Linear(x.shape[-1], keys["out_features"], bias=keys.get("bias", True))
    if kind == "batchnorm":
        cls = nn.BatchNorm2d if x.dim() == 4 else nn.BatchNorm1d
        return cls(x.shape[1], eps=keys.get("eps", 1e-5), momentum=keys.get("momentum", 0.1),
                   affine=keys.get("affine", True))
    if kind == "relu":
        return nn.ReLU()
    if kind == "maxpool":
        k = pair(keys["kernel_size"])
        return nn.MaxPool2d(k, stride=pair(keys.get("stride", k)), padding=pair(keys.get("padding", 0)),
                            ceil_mode=keys.get("ceil_mode", False))
    if kind == "avgpool":
        k = pair(keys["kernel_size"])
        return nn.AvgPool2d(k, stride=pair(keys.get("stride", k)), padding=pair(keys.get("padding", 0)),
                            ceil_mode=keys.get("ceil_mode", False),
                            count_include_pad=keys.get("count_include_pad", True))
    if kind == "adaptive_avgpool":
        return nn.AdaptiveAvgPool2d(pair(keys.get("output_size", 1)))
    if kind == "dropout":
        return nn.Dropout(keys.get("p", 0.5))
    if kind == "lrn":
        return nn.LocalResponseNorm(keys["size"], alpha=keys.get("alpha", 1e-4), beta=keys.get("beta", 0.75),
                                    k=keys.get("k", 1.0))
    if kind == "concat":
        return lambda *xs: torch.cat(xs, dim=1)
    if kind == "add":
        return lambda *xs: sum(xs[1:], xs[0])
    if kind == "flatten":
        return nn.Flatten(keys.get("start_dim", 1))
    if kind == "softmax_cross_entropy":
        return lambda z, t: F.cross_entropy(z, t, label_smoothing=keys.get("label_smoothing", 0.0))
    raise SystemExit("no reference for layer type " + kind)


def run(folder):
    with open(os.path.join(folder, "case.txt")) as f:
        kind, keys_text, train, dtype = f.read().split("\n")[:4]
    keys = yaml.safe_load(keys_text) or {}
    dt = torch.float64 if dtype == "float64" else torch.float32
    inputs = []
    i = 0
    while os.path.exists(os.path.join(folder, "in_%d.npy" % i)):
        a = torch.from_numpy(np.load(os.path.join(folder, "in_%d.npy" % i)))
        if a.is_floating_point():
            a = a.to(dt).requires_grad_(True)
        inputs.append(a)
        i += 1
    module = build(kind, keys, inputs)
    if isinstance(module, nn.Module):
        module = module.to(dt)
        module.train(train == "train")
        state = module.state_dict()
        for name in list(state):
            for prefix in ("param_", "buffer_"):
                path = os.path.join(folder, prefix + name + ".npy")
                if os.path.exists(path):
                    value = torch.from_numpy(np.load(path))
                    state[name] = value.to(state[name].dtype)
        module.load_state_dict(state)
    y = module(*inputs)
    dy = torch.from_numpy(np.load(os.path.join(folder, "dy_0.npy"))).to(dt).reshape(y.shape)
    y.backward(dy)
    np.save(os.path.join(folder, "out_0.npy"), y.detach().numpy())
    for i, a in enumerate(inputs):
        if a.is_floating_point():
            np.save(os.path.join(folder, "din_%d.npy" % i), a.grad.numpy())
    if isinstance(module, nn.Module):
        for name, p in module.named_parameters():
            np.save(os.path.join(folder, "dparam_%s.npy" % name), p.grad.numpy())
        for name, b in module.named_buffers():
            np.save(os.path.join(folder, "after_%s.npy" % name), b.numpy())


for d in sys.argv[1:]:
    run(d)
