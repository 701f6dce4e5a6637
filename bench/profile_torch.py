"""Where PyTorch's CPU training step spends its time, by operator (torch.profiler), for comparison with
`mpncov time NET`'s per-layer table (bench/RESULTS.md quotes it).

usage: OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 bench/profile_torch.py resnet50
       [--threads 2] [--batch 8] [--steps 3]
Prints the profiler's table sorted by self CPU time, over STEPS steps after two warm-ups (divide by STEPS
for per-step figures). Models come from the zoo oracle (tests/oracle/zoo_nets.py)."""
import argparse
import ctypes
import os
import sys

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import zoo_nets  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("net")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:  # Debian's OpenBLAS ignores torch.set_num_threads (docs/measuring.md)
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(a.threads)
    except OSError:
        pass
    torch.manual_seed(0)
    model = zoo_nets.build(a.net)
    model.train()
    size = 299 if a.net == "inception_v3" else 224
    x = torch.randn(a.batch, 3, size, size)
    labels = torch.arange(a.batch) % 1000
    sgd = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():  # the same step as `mpncov time` and bench/nets_torch.py
        sgd.zero_grad()
        loss_fn(model(x), labels).backward()
        sgd.step()

    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


if __name__ == "__main__":
    main()
