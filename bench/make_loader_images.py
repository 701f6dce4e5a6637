"""Makes an ImageFolder of ImageNet-like JPEGs for the loader benchmark: random crops of Debian's
mate-backgrounds photographs (apt-get install mate-backgrounds), resized to about 500x375 (a quarter
portrait), re-encoded at quality 90 with 4:2:0 chroma, spread over 4 classes.

usage: make_loader_images.py OUT_DIR [COUNT=512]
"""
import os
import random
import sys

from PIL import Image

PHOTOS = "/usr/share/backgrounds/mate/nature"
out, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 512
files = sorted(os.path.join(PHOTOS, f) for f in os.listdir(PHOTOS) if f.lower().endswith(".jpg"))
if not files:
    sys.exit(f"no photographs in {PHOTOS}: apt-get install mate-backgrounds")
photos = [Image.open(f).convert("RGB") for f in files]
rng = random.Random(0)
sizes = 0
for k in range(count):
    img = photos[k % len(photos)]
    w, h = (500, 375) if k % 4 else (375, 500)
    # A crop of 40-100% of the photo's shorter side, with the target's aspect ratio.
    side = rng.uniform(0.4, 1.0) * min(img.width / w, img.height / h)
    cw, ch = int(w * side), int(h * side)
    x, y = rng.randint(0, img.width - cw), rng.randint(0, img.height - ch)
    tile = img.crop((x, y, x + cw, y + ch)).resize((w, h), Image.LANCZOS)
    path = os.path.join(out, f"class{k % 4}", f"img{k:05d}.JPEG")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tile.save(path, quality=90)
    sizes += os.path.getsize(path)
print(f"{count} images in {out}, {sizes / count / 1024:.0f} KB on average")
