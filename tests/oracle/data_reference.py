"""Reference outputs for the data tests (tests/data/test_data_oracle.cpp): PIL decodes and torchvision's
PIL-based transforms, on real photographs (Debian's mate-backgrounds, cropped to ImageNet-like sizes; natural-
looking synthetic pictures when the package is absent) and on files of every kind PIL writes.

usage: data_reference.py OUT_DIR
Writes OUT_DIR/images/* and, for each case, OUT_DIR/ref/<name>.npy, and OUT_DIR/cases.txt with one line per
case: "decode FILE REF" or "transform PIPELINE FILE REF" or "rrc_params REF".
"""
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F

out = sys.argv[1]
images = os.path.join(out, "images")
refs = os.path.join(out, "ref")
os.makedirs(images, exist_ok=True)
os.makedirs(refs, exist_ok=True)
cases = []
PHOTOS = os.environ.get("MPNCOV_PHOTOS", "/usr/share/backgrounds/mate/nature")


def synthetic(w, h, seed):
    # Smooth shading from blurred noise at several scales, plus hard-edged shapes: photo-like statistics.
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3))
    for scale in (64, 16, 4):
        small = rng.normal(0, 1, (h // scale + 2, w // scale + 2, 3))
        big = np.array(Image.fromarray(((small - small.min()) / np.ptp(small) * 255).astype(np.uint8)).resize(
            (w, h), Image.BICUBIC), dtype=np.float64)
        img += big * (scale / 84.0)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(5):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.25) * min(w, h)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8))


def photo(name, size, seed):
    """An ImageNet-like photograph: a real one resized and centre-cropped to size, or a synthetic one."""
    path = os.path.join(PHOTOS, name)
    if not os.path.exists(path):
        return synthetic(size[0], size[1], seed)
    img = Image.open(path).convert("RGB")
    scale = max(size[0] / img.width, size[1] / img.height)
    img = img.resize((round(img.width * scale + 0.5), round(img.height * scale + 0.5)), Image.LANCZOS)
    return F.center_crop(img, [size[1], size[0]])


# ---- files: photos at ImageNet size, two originals (big, 4:2:2 and progressive), and every kind of file ----
photo("LadyBird.jpg", (500, 375), 1).save(os.path.join(images, "p1_ladybird.jpg"), quality=90)
photo("Storm.jpg", (375, 500), 2).save(os.path.join(images, "p2_storm.jpg"), quality=85)
photo("FreshFlower.jpg", (500, 333), 3).save(os.path.join(images, "p3_flower.jpg"), quality=92, subsampling=0)
photo("Garden.jpg", (640, 480), 4).save(os.path.join(images, "p4_garden.jpg"), quality=75, progressive=True)
for name, dst, size, seed in (("Storm.jpg", "big1_storm.jpg", (1920, 1280), 5),
                              ("GreenMeadow.jpg", "big2_meadow.jpg", (1280, 1024), 6)):
    if os.path.exists(os.path.join(PHOTOS, name)):
        shutil.copy(os.path.join(PHOTOS, name), os.path.join(images, dst))
    else:
        synthetic(size[0], size[1], seed).save(os.path.join(images, dst), quality=90)
base = photo("YellowFlower.jpg", (200, 150), 7)
base.convert("CMYK").save(os.path.join(images, "k1_cmyk.jpg"), quality=90)
base.convert("L").save(os.path.join(images, "k2_gray.jpg"), quality=90)
base.save(os.path.join(images, "k3_png_named.JPEG"), format="PNG")
base.convert("P", palette=Image.ADAPTIVE, colors=64).save(os.path.join(images, "k4_palette.png"))
base.convert("LA").save(os.path.join(images, "k5_gray_alpha.png"))
rgba = base.convert("RGBA")
rgba.putalpha(Image.linear_gradient("L").resize(base.size))
rgba.save(os.path.join(images, "k6_rgba.png"))
base.save(os.path.join(images, "k7.bmp"))
base.convert("L").save(os.path.join(images, "k8_gray.pgm"))
base.save(os.path.join(images, "k9.ppm"))
base.save(os.path.join(images, "k10_444.jpg"), quality=95, subsampling=0)
base.save(os.path.join(images, "k11_422.jpg"), quality=95, subsampling=1)

for f in sorted(os.listdir(images)):
    ref = "decode_" + os.path.splitext(f)[0] + ".npy"
    np.save(os.path.join(refs, ref), np.asarray(Image.open(os.path.join(images, f)).convert("RGB")))
    cases.append(f"decode {f} {ref}")

# ---- transforms (torchvision 0.14 on PIL images; the seed's imagepreprocess.py) ----
normalize = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
to_tensor = T.Compose([T.ToTensor(), normalize])


class CenterCropWithFlip:  # the seed's 2-crop
    def __init__(self, size):
        self.size = size

    def __call__(self, img):
        return (F.center_crop(img, self.size), F.center_crop(F.hflip(img), self.size))


stack = T.Lambda(lambda crops: torch.stack([to_tensor(c) for c in crops]))
pipelines = {
    "imagenet_val": T.Compose([T.Resize(256), T.CenterCrop(224), to_tensor]),
    "imagenet_evaluate": T.Compose([T.Resize(256), T.TenCrop(224), stack]),
    "cub_val": T.Compose([T.Resize(448), T.CenterCrop(448), to_tensor]),
    "cub_evaluate": T.Compose([T.Resize(448), CenterCropWithFlip(448), stack]),
    "aircraft_val": T.Compose([T.Resize((512, 512)), T.CenterCrop(448), to_tensor]),
    "cars_val": T.Compose([T.Resize((448, 448)), to_tensor]),
}
plan = {
    "p1_ladybird.jpg": ["imagenet_val", "imagenet_evaluate", "cub_val", "aircraft_val"],
    "p2_storm.jpg": ["imagenet_val", "cub_evaluate", "cars_val"],
    "p3_flower.jpg": ["imagenet_val", "imagenet_evaluate"],
    "p4_garden.jpg": ["imagenet_val", "cub_val"],
    "big1_storm.jpg": ["imagenet_val", "cub_val"],
    "big2_meadow.jpg": ["imagenet_val", "aircraft_val"],
    "k1_cmyk.jpg": ["imagenet_val"],
    "k4_palette.png": ["cars_val"],
}
for f, names in plan.items():
    img = Image.open(os.path.join(images, f)).convert("RGB")
    for name in names:
        ref = f"{name}_{os.path.splitext(f)[0]}.npy"
        np.save(os.path.join(refs, ref), pipelines[name](img).numpy().astype(np.float32))
        cases.append(f"transform {name} {f} {ref}")

# RandomResizedCrop's crop-then-resize at given boxes (the C++ side draws its own boxes).
for f, (top, left, h, w, flip) in (("p1_ladybird.jpg", (10, 30, 300, 260, False)),
                                   ("p2_storm.jpg", (123, 7, 90, 120, True)),
                                   ("big1_storm.jpg", (100, 200, 1100, 1500, False))):
    img = Image.open(os.path.join(images, f)).convert("RGB")
    out_img = F.resized_crop(img, top, left, h, w, [224, 224])
    if flip:
        out_img = F.hflip(out_img)
    ref = f"rrc_{os.path.splitext(f)[0]}.npy"
    np.save(os.path.join(refs, ref), to_tensor(out_img).numpy())
    cases.append(f"resized_crop {f} {left} {top} {w} {h} {int(flip)} {ref}")

# The distribution of RandomResizedCrop's boxes on a 500x375 image.
torch.manual_seed(0)
dummy = Image.new("RGB", (500, 375))
boxes = np.array([T.RandomResizedCrop.get_params(dummy, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)],
                 dtype=np.int64)
np.save(os.path.join(refs, "rrc_params.npy"), boxes)
cases.append("rrc_params rrc_params.npy")

with open(os.path.join(out, "cases.txt"), "w") as fh:
    fh.write("\n".join(cases) + "\n")
print(f"{len(cases)} cases; photographs from {PHOTOS if os.path.exists(PHOTOS) else 'synthesis'}")
