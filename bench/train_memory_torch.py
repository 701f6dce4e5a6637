"""PyTorch side of bench/train_memory.sh: peak memory of training steps of one zoo net.

usage: train_memory_torch.py NAME BATCH THREADS [SIZE]
Builds the net as the zoo oracle does (tests/oracle/zoo_nets.py: torchvision's nets, the seed's MPN-COV
nets), runs 4 training steps as `mpncov time` does (two warm-up steps and two more: forward,
cross-entropy, backward, SGD with momentum and weight decay) on random SIZE x SIZE images (default: the
net's own input size as `mpncov time` takes it, 299 for inception_v3, else 224), and prints the resident
memory before the first step; the peak comes from /usr/bin/time -v around the process."""
import ctypes
import os
import resource
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import zoo_nets  # noqa: E402

name, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = int(sys.argv[4]) if len(sys.argv) > 4 else 299 if name == "inception_v3" else 224
torch.set_num_threads(threads)
try:  # Debian's OpenBLAS ignores torch.set_num_threads (see docs/measuring.md)
    ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(threads)
except OSError:
    pass
torch.manual_seed(0)
model = zoo_nets.build(name)
model.train()
sgd = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)
x = torch.randn(batch, 3, size, size)
labels = torch.arange(batch) % 1000
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(4):
    sgd.zero_grad()
    torch.nn.functional.cross_entropy(model(x), labels).backward()
    sgd.step()
print(f"resident before the first step: {before / 1024:.0f} MiB")
