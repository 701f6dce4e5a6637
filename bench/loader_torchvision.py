"""The torchvision peer of bench/loader_bench.cpp: the same work on the same ImageFolder, one line of
results. Single-threaded modes pin PyTorch and OpenBLAS to one thread (see docs/measuring.md).

usage: loader_torchvision.py ROOT MODE [WORKERS] [SECONDS]
  MODE decode     PIL open + convert("RGB") of every file, one thread
       train      decode + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize, one thread
       val        decode + Resize(256) + CenterCrop(224) + ToTensor + Normalize, one thread
       loader     ImageFolder + DataLoader(batch 64, shuffle, WORKERS workers) with the train transform
prints: MODE images_per_second
"""
import ctypes
import sys
import time

import torch
from PIL import Image
from torchvision import datasets, transforms as T

root, mode = sys.argv[1], sys.argv[2]
workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
torch.set_num_threads(1)
try:
    ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(1)
except (OSError, AttributeError):
    pass

normalize = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
train = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
val = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), normalize])
folder = datasets.ImageFolder(root)
paths = [p for p, _ in folder.samples]


def load(path):
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def timed(work):
    """Images per second of work(path) over the files, repeated for at least `seconds`."""
    for p in paths[:8]:
        work(p)  # warm up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for p in paths:
            work(p)
        done += len(paths)
    return done / (time.perf_counter() - t0)


if mode == "decode":
    rate = timed(lambda p: load(p).load())
elif mode == "train":
    rate = timed(lambda p: train(load(p)))
elif mode == "val":
    rate = timed(lambda p: val(load(p)))
elif mode == "loader":
    data = datasets.ImageFolder(root, transform=train)
    loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)
    done, t0 = 0, None
    while t0 is None or time.perf_counter() - t0 < seconds:
        for images, labels in loader:
            if t0 is None:  # from the first batch on: worker start-up is not counted
                t0 = time.perf_counter()
                continue
            done += images.shape[0]
    rate = done / (time.perf_counter() - t0)
else:
    sys.exit(f"unknown mode {mode}")
print(mode, f"{rate:.1f}")
