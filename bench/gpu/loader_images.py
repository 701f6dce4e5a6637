"""Makes an ImageFolder of ImageNet-like JPEGs (about 500x375, quality 90, 4 classes) from a folder of
photographs, for the loader benchmark on the GPU machine, which has no mate-backgrounds package:
scripts/gpu-prepare.sh carries a few of those photographs. Same recipe as bench/make_loader_images.py,
spread over processes so it takes seconds.

usage: python3 bench/gpu/loader_images.py PHOTOS_DIR OUT_DIR [COUNT=1024]
"""
import multiprocessing
import os
import random
import sys

from PIL import Image


def make(args):
    photos, out, k = args
    img = Image.open(photos[k % len(photos)]).convert("RGB")
    rng = random.Random(k)
    w, h = (500, 375) if k % 4 else (375, 500)
    side = rng.uniform(0.4, 1.0) * min(img.width / w, img.height / h)
    cw, ch = int(w * side), int(h * side)
    x, y = rng.randint(0, img.width - cw), rng.randint(0, img.height - ch)
    path = os.path.join(out, f"class{k % 4}", f"img{k:05d}.JPEG")
    img.crop((x, y, x + cw, y + ch)).resize((w, h), Image.LANCZOS).save(path, quality=90)
    return os.path.getsize(path)


def main():
    src, out = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    photos = sorted(os.path.join(src, f) for f in os.listdir(src) if f.lower().endswith(".jpg"))
    if not photos:
        sys.exit(f"no photographs (*.jpg) in {src}")
    for c in range(4):
        os.makedirs(os.path.join(out, f"class{c}"), exist_ok=True)
    with multiprocessing.Pool(min(os.cpu_count() or 1, 16)) as pool:
        sizes = pool.map(make, [(photos, out, k) for k in range(count)])
    print(f"{count} images in {out}, {sum(sizes) / count / 1024:.0f} KB on average")


if __name__ == "__main__":
    main()
