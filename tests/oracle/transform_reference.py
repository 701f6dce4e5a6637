"""Reference outputs for every transform step (tests/data/test_data_oracle.cpp): torchvision 0.14's own
transform classes on PIL images, at the random draws the C++ loader made. The C++ test plans each case with
its Philox generator, writes the drawn parameters here, and compares its output with these; get_params of
RandomCrop, RandomResizedCrop and ColorJitter is replaced by one returning those draws (after checking they
are draws torchvision could make), so padding, flipping, the jitter order and all pixel arithmetic are
torchvision's and PIL's.

usage: transform_reference.py CASES IMAGES_DIR OUT_DIR
CASES: one line per case, "NAME FILE OUT.npy [rc=i,j] [rrc=i,j,h,w] [jitter=op:factor;...]".
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

IMAGENET = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
tensor = T.Compose([T.ToTensor(), IMAGENET])
stack = T.Lambda(lambda crops: torch.stack([tensor(c) for c in crops]))

# The same pipelines as the C++ test's YAML lists, written with torchvision's classes.
PIPELINES = {
    "resize_max_size": T.Compose([T.Resize(200, max_size=260), T.CenterCrop(190), tensor]),
    "resize_hw_to_tensor": T.Compose([T.Resize((150, 210)), T.ToTensor()]),
    "center_crop_padded": T.Compose([T.Resize(100), T.CenterCrop((120, 90)), tensor]),
    "random_crop_padding_flip": T.Compose([T.Resize(120), T.RandomCrop(112, padding=[4, 6, 2, 8]),
                                           T.RandomHorizontalFlip(p=1.0), T.ToTensor(),
                                           T.Normalize([0.5, 0.4, 0.3], [0.2, 0.25, 0.3])]),
    "random_crop_pad_if_needed": T.Compose([T.Resize((50, 70)), T.RandomCrop((64, 96), padding=3, pad_if_needed=True),
                                            tensor]),
    "random_crop_then_resize": T.Compose([T.RandomCrop((300, 280)), T.Resize((128, 120)), T.RandomHorizontalFlip(p=0.0),
                                          tensor]),
    "random_resized_crop_hw": T.Compose([T.RandomResizedCrop((160, 200), scale=(0.3, 0.9), ratio=(0.5, 2.0)),
                                         tensor]),
    "color_jitter_all": T.Compose([T.Resize(160), T.CenterCrop(144), T.ColorJitter(0.5, 0.5, 0.6, 0.2), tensor]),
    "color_jitter_extreme": T.Compose([T.Resize(96), T.CenterCrop(96), T.RandomHorizontalFlip(p=1.0),
                                       T.ColorJitter(contrast=(1.5, 3.0), hue=(-0.5, -0.3)), tensor]),
    "color_jitter_padded": T.Compose([T.Resize(100), T.CenterCrop(128),
                                      T.ColorJitter(brightness=(1.2, 2.0), contrast=(0.3, 0.6), saturation=(0.0, 0.5)),
                                      tensor]),
    "five_crop": T.Compose([T.Resize(256), T.FiveCrop((200, 180)), stack]),
    "ten_crop": T.Compose([T.Resize((300, 280)), T.TenCrop((200, 180)), stack]),
}

params = {}


def random_crop_params(img, output_size):
    i, j = params.pop("rc")
    w, h = img.size
    assert 0 <= i <= h - output_size[0] and 0 <= j <= w - output_size[1], (i, j, img.size, output_size)
    return i, j, output_size[0], output_size[1]


def random_resized_crop_params(img, scale, ratio):
    i, j, h, w = params.pop("rrc")
    area = h * w / (img.size[0] * img.size[1])
    assert 0 <= i <= img.size[1] - h and 0 <= j <= img.size[0] - w, (i, j, h, w, img.size)
    assert scale[0] * 0.98 <= area <= scale[1] * 1.02 and ratio[0] * 0.95 <= w / h <= ratio[1] * 1.05, (area, w / h)
    return i, j, h, w


def color_jitter_params(brightness, contrast, saturation, hue):
    applied = params.pop("jitter")  # [(op, factor)] in the order applied
    ranges = [brightness, contrast, saturation, hue]
    factors = [None] * 4
    for op, f in applied:
        assert ranges[op] is not None and ranges[op][0] <= f <= ranges[op][1], (op, f, ranges[op])
        factors[op] = f
    assert [op for op in range(4) if ranges[op] is not None] == sorted(op for op, _ in applied)
    order = [op for op, _ in applied] + [op for op in range(4) if factors[op] is None]
    return (torch.tensor(order), *factors)


T.RandomCrop.get_params = staticmethod(random_crop_params)
T.RandomResizedCrop.get_params = staticmethod(random_resized_crop_params)
T.ColorJitter.get_params = staticmethod(color_jitter_params)

cases_file, images, out = sys.argv[1:4]
count = 0
for line in open(cases_file):
    words = line.split()
    if not words:
        continue
    name, file, ref = words[:3]
    for w in words[3:]:
        key, value = w.split("=")
        if key == "jitter":
            params[key] = [(int(op), float(f)) for op, f in (item.split(":") for item in value.split(";"))]
        else:
            params[key] = [int(v) for v in value.split(",")]
    img = Image.open(os.path.join(images, file)).convert("RGB")
    np.save(os.path.join(out, ref), PIPELINES[name](img).numpy().astype(np.float32))
    assert not params, f"{name}: draws left unused: {params}"
    count += 1
print(f"{count} transform cases")
