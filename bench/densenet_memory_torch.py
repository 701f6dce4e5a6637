"""PyTorch side of bench/densenet_memory.sh: one training step of torchvision's densenet121.

usage: densenet_memory_torch.py BATCH MEMORY_EFFICIENT(0|1)
Builds the model, runs ITERATIONS=2 training steps (forward, cross-entropy, backward, SGD step) on random
224x224 images with one thread, and prints the resident memory before the first step; the peak comes from
/usr/bin/time -v around the process."""
import resource
import sys

import torch
import torchvision

batch, efficient = int(sys.argv[1]), sys.argv[2] == "1"
torch.set_num_threads(1)
torch.manual_seed(0)
model = torchvision.models.densenet121(weights=None, memory_efficient=efficient)
model.train()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(batch, 3, 224, 224)
labels = torch.arange(batch) % 1000
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(2):
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), labels).backward()
    optimizer.step()
print(f"resident before the step: {before / 1024:.0f} MiB")
