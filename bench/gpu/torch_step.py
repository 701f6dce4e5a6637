"""Training-step throughput of torchvision's resnet50 and the seed's MPN-COV-ResNet-50 in PyTorch: the peer
of `gpu_bench step` (bench/gpu_bench.cpp). One fixed random batch on the device, SGD with momentum, cross
entropy, cudnn.benchmark on (as the seed sets it); float32 with TF32 on or off, or bfloat16 autocast (bf16,
AMP), NCHW or channels-last.

usage: python3 bench/gpu/torch_step.py [--device cuda] [--archs resnet50,mpncov_resnet50]
           [--configs 64/tf32/nchw,128/fp32/nhwc,...] [--size 224] [--warmup 3] [--steps 10]
prints one "RESULT torch_step arch=A batch=B math=tf32|fp32|bf16 layout=nchw|nhwc step_s=S images_per_s=R" line
per configuration.
"""
import argparse
import os
import sys
import time
import warnings

import torch
import torchvision
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seed_mpncov import MPNCOV  # noqa: E402

DEFAULT_CONFIGS = "64/tf32/nchw,64/tf32/nhwc,128/tf32/nchw,128/tf32/nhwc,128/fp32/nchw,128/fp32/nhwc"


def make_model(arch):
    net = torchvision.models.resnet50(weights=None)
    if arch == "resnet50":
        return net
    if arch != "mpncov_resnet50":
        raise SystemExit(f"unknown arch {arch}")
    # The seed's MPNCOVResNet: layer4 at stride 1 (14x14 at 224), reduction 2048->256, iSQRT-COV, fc.
    net.layer4[0].conv2.stride = (1, 1)
    net.layer4[0].downsample[0].stride = (1, 1)
    features = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3,
                             net.layer4)
    return nn.Sequential(features, MPNCOV(2048, 256, 5), nn.Linear(256 * 257 // 2, 1000))


def set_tf32(on):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.backends.cuda.matmul.allow_tf32 = on
            torch.backends.cudnn.allow_tf32 = on
        except RuntimeError:  # a PyTorch that takes only its newer precision settings
            torch.backends.cuda.matmul.fp32_precision = "tf32" if on else "ieee"
            torch.backends.cudnn.conv.fp32_precision = "tf32" if on else "ieee"


def run(arch, batch, math, layout, a, device):
    set_tf32(math in ("tf32", "bf16"))  # bf16: autocast (AMP) in bfloat16; what stays float32 may use TF32
    torch.manual_seed(1)
    fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
    model = make_model(arch).to(device=device, memory_format=fmt)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, a.size, a.size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=math == "bf16"):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    t = time.perf_counter()
    for _ in range(a.warmup):
        step()
    sync(device)
    warmup_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync(device)
    seconds = time.perf_counter() - t
    print(f"RESULT torch_step arch={arch} device={device} batch={batch} size={a.size} math={math} layout={layout} "
          f"warmup_s={warmup_s:.3f} step_s={seconds / a.steps:.6f} images_per_s={batch * a.steps / seconds:.1f} "
          f"loss={loss.item():.4f}", flush=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda")
    p.add_argument("--archs", default="resnet50,mpncov_resnet50")
    p.add_argument("--configs", default=DEFAULT_CONFIGS)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    device = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, cudnn "
          f"{torch.backends.cudnn.version()} on {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'host'})", flush=True)
    for arch in a.archs.split(","):
        for config in a.configs.split(","):
            batch, math, layout = config.split("/")
            if math not in ("tf32", "fp32", "bf16") or layout not in ("nchw", "nhwc"):
                raise SystemExit(f"bad config {config}: expected BATCH/tf32|fp32|bf16/nchw|nhwc")
            try:
                run(arch, int(batch), math, layout, a, device)
            except RuntimeError as e:  # e.g. out of memory: report it and go on with the next one
                print(f"RESULT torch_step arch={arch} batch={batch} math={math} layout={layout} error="
                      f"{str(e).splitlines()[0].replace(' ', '_')[:80]}", flush=True)
            if device.type == "cuda":  # the model of the last run is gone: give its memory back
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
