"""PyTorch side of bench/bf16.py: one training step timing of a zoo net, float32 or bfloat16 autocast.

usage: bf16_torch.py NAME BATCH ITERATIONS THREADS PRECISION(float32|bfloat16) LAYOUT(nchw|channels_last)
Prints the mean seconds per step over ITERATIONS after two warm-up steps: SGD with momentum and weight decay
as `mpncov time` runs it; bfloat16 wraps the forward and the loss in torch.autocast("cpu", bfloat16), the
iSQRT-COV representation of the mpncov nets in float32."""
import contextlib
import ctypes
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import zoo_nets  # noqa: E402

name, batch, iterations, threads, precision, layout = sys.argv[1:7]
batch, iterations, threads = int(batch), int(iterations), int(threads)
torch.set_num_threads(threads)
try:  # Debian's OpenBLAS ignores torch.set_num_threads (see docs/measuring.md)
    ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(threads)
except OSError:
    pass
torch.manual_seed(0)
if precision == "bfloat16":
    # The iSQRT-COV representation runs in float32, as ours does (and as it must: PyTorch 1.13 has no
    # bfloat16 torch.eye on the CPU, which the seed's covariance pooling calls under autocast).
    def in_float32(f):
        def run(*args):
            with torch.autocast("cpu", enabled=False):
                return f(*[a.float() if torch.is_tensor(a) else a for a in args])
        return run
    for fn in ("covpool", "sqrtm", "triuvec"):
        if hasattr(zoo_nets, fn):
            setattr(zoo_nets, fn, in_float32(getattr(zoo_nets, fn)))
model = zoo_nets.build(name)
model.train()
x = torch.randn(batch, 3, 299 if name == "inception_v3" else 224, 224 if name != "inception_v3" else 299)
if layout == "channels_last":
    model = model.to(memory_format=torch.channels_last)
    x = x.to(memory_format=torch.channels_last)
labels = torch.arange(batch) % 1000
loss_fn = torch.nn.CrossEntropyLoss()
sgd = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=1e-4)


def step():
    sgd.zero_grad()
    scope = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else contextlib.nullcontext()
    with scope:
        loss = loss_fn(model(x), labels)
    loss.backward()
    sgd.step()


for _ in range(2):
    step()
start = time.perf_counter()
for _ in range(iterations):
    step()
print(f"{(time.perf_counter() - start) / iterations:.4f}")
