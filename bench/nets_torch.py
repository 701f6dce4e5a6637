"""PyTorch side of bench/nets.py: a long-lived worker that times whole nets.

usage: nets_torch.py THREADS MKLDNN(0|1) [channels_last]
Reads lines "MODE NAME BATCH ITERATIONS" (MODE: train or eval) from stdin and answers each with one line,
the images/s of the mean over ITERATIONS after two warm-up passes. Models come from the zoo oracle
(tests/oracle/zoo_nets.py), which builds torchvision's nets and the seed's MPN-COV nets."""
import ctypes
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import zoo_nets  # noqa: E402

threads, mkldnn = int(sys.argv[1]), sys.argv[2] == "1"
channels_last = len(sys.argv) > 3 and sys.argv[3] == "channels_last"
torch.set_num_threads(threads)
try:  # Debian's OpenBLAS ignores torch.set_num_threads (see docs/measuring.md)
    ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(threads)
except OSError:
    pass
torch.backends.mkldnn.enabled = mkldnn
WARMUP = 2


def images_per_second(mode, name, batch, iterations):
    torch.manual_seed(0)
    model = zoo_nets.build(name)
    size = 299 if name == "inception_v3" else 224
    x = torch.randn(batch, 3, size, size)
    if channels_last:  # NHWC activations: oneDNN then skips its layout reorders
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if mode == "eval":
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
    else:
        model.train()
        labels = torch.arange(batch) % 1000
        loss_fn = torch.nn.CrossEntropyLoss()
        # The same step as `mpncov time`: SGD with momentum and weight decay.
        sgd = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)

        def step():
            sgd.zero_grad()
            loss_fn(model(x), labels).backward()
            sgd.step()
    for _ in range(WARMUP):
        step()
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return batch * iterations / (time.perf_counter() - start)


for line in sys.stdin:
    mode, name, batch, iterations = line.split()
    print(f"{images_per_second(mode, name, int(batch), int(iterations)):.4f}", flush=True)
