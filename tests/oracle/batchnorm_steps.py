"""PyTorch reference for several training steps of a batch norm (tests/layers/test_batchnorm.cpp drives it):
the running statistics after each step, e.g. with momentum=None (the cumulative moving average).

usage: batchnorm_steps.py DIR
DIR holds keys.yaml (the layer's keys: momentum, eps), x.npy (steps, N, C, H, W), running_mean.npy,
running_var.npy and num_batches_tracked.npy (the start); this writes out.npy (each step's training output,
stacked), means.npy and vars.npy (the running statistics after each step), tracked.npy (the count after each
step) and eval.npy (the evaluation output of the last step's input afterwards)."""
import os
import sys

import numpy as np
import torch
import yaml

torch.set_num_threads(1)


def main():
    d = sys.argv[1]
    keys = yaml.safe_load(open(os.path.join(d, "keys.yaml"))) or {}
    xs = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
    bn = torch.nn.BatchNorm2d(xs.shape[2], eps=keys.get("eps", 1e-5), momentum=keys.get("momentum", 0.1)).to(xs.dtype)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(np.load(os.path.join(d, "running_mean.npy"))))
        bn.running_var.copy_(torch.from_numpy(np.load(os.path.join(d, "running_var.npy"))))
        bn.num_batches_tracked.fill_(int(np.load(os.path.join(d, "num_batches_tracked.npy"))))
    bn.train()
    outs, means, variances, tracked = [], [], [], []
    with torch.no_grad():
        for x in xs:
            outs.append(bn(x).numpy())
            means.append(bn.running_mean.numpy().copy())
            variances.append(bn.running_var.numpy().copy())
            tracked.append(int(bn.num_batches_tracked))
        bn.eval()
        np.save(os.path.join(d, "eval.npy"), bn(xs[-1]).numpy())
    np.save(os.path.join(d, "out.npy"), np.stack(outs))
    np.save(os.path.join(d, "means.npy"), np.stack(means))
    np.save(os.path.join(d, "vars.npy"), np.stack(variances))
    np.save(os.path.join(d, "tracked.npy"), np.array(tracked, dtype=np.int64))


if __name__ == "__main__":
    main()
