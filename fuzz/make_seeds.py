#!/usr/bin/python3
"""Writes the seed corpus fuzz/corpus/<target>/seed_* (small valid and near-valid inputs for each parser).
Regression inputs (findings, once fixed) sit beside them as crash_*/leak_*/oom_*. Run from anywhere:
  /usr/bin/python3 fuzz/make_seeds.py"""
import io, json, os, struct
import numpy as np
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, "seed_" + name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


a = np.arange(6, dtype=np.float32).reshape(2, 3)
put("safetensors", "f32", safetensors({"w": ("F32", [2, 3], a.tobytes())}, {"format": "pt"}))
put("safetensors", "mixed", safetensors({
    "a.weight": ("F64", [2], np.array([1.5, -2], np.float64).tobytes()),
    "b": ("I64", [3], np.array([1, 2, 3], np.int64).tobytes()),
    "c": ("F16", [2, 1], np.array([1, 2], np.float16).tobytes()),
    "d": ("BF16", [1], b"\x80\x3f"),
    "e": ("U8", [4], bytes([0, 1, 2, 255])),
    "f": ("BOOL", [2], bytes([0, 1])),
    "g": ("I32", [], struct.pack("<i", -7)),
    "h": ("F8_E4M3", [2], bytes([0x38, 0xb8])),
    "i": ("U64", [1], struct.pack("<Q", 5)),
    "j": ("F32", [0, 3], b"")}))
put("safetensors", "empty", safetensors({}))
put("safetensors", "truncated", safetensors({"w": ("F32", [2, 3], a.tobytes())})[:-5])

for name, arr in {"f32": a, "f64": a.astype(np.float64), "i8": np.array([-1, 2], np.int64),
                  "f16": np.ones((2, 2), np.float16), "u8": np.arange(5, dtype=np.uint8),
                  "bool": np.array([True, False]), "scalar": np.float32(3), "i4_3d": np.zeros((2, 1, 2), np.int32),
                  "fortran_1d": np.asfortranarray(np.arange(3, dtype=np.float32))}.items():
    b = io.BytesIO()
    np.save(b, arr)
    put("npy", name, b.getvalue())
b = io.BytesIO()
np.lib.format.write_array(b, a, version=(2, 0))
put("npy", "v2", b.getvalue())
b = io.BytesIO()
np.save(b, np.asfortranarray(a))
put("npy", "fortran_2d", b.getvalue())

put("net_yaml", "small", """name: tiny
input: [3, 8, 8]
blocks:
  cbr:
    args: {out: null, stride: 1}
    layers:
      - {name: conv, type: conv, out_channels: $out, kernel_size: 3, stride: $stride, padding: 1, bias: false}
      - {name: bn, type: batchnorm}
      - {name: relu, type: relu}
features:
  - {name: stem, block: cbr, args: {out: 4}}
  - {name: pool, type: maxpool, kernel_size: 2, stride: 2}
  - {name: s1, block: cbr, args: {out: 6, stride: 2}}
representation: {name: avgpool, type: gavp}
classifier:
  - {name: fc, type: linear, out_features: 3}
""")
put("net_yaml", "residual", """name: res
input: [3, 6, 6]
features:
  - {name: conv1, type: conv, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: relu1, type: relu}
  - {name: conv2, type: conv, out_channels: 4, kernel_size: 1}
  - {name: add, type: add, inputs: [conv2, relu1]}
  - {name: cat, type: concat, inputs: [add, conv1]}
  - {name: drop, type: dropout, p: 0.5}
  - {name: lrn, type: lrn, size: 3}
  - {name: avg, type: avgpool, kernel_size: 2}
  - {name: ada, type: adaptive_avgpool, output_size: 2}
representation: {name: cov, type: mpncov, iterations: 3}
classifier:
  - {name: fc, type: linear, out_features: 2}
""")
put("net_yaml", "bilinear", """name: bil
input: [2, 4, 4]
features:
  - {name: c, type: conv, out_channels: 3, kernel_size: [1, 3], stride: [1, 2], padding: [0, 1], groups: 1}
representation: {name: b, type: bcnn}
""")
put("net_yaml", "cbp", """name: cbp
input: [2, 4, 4]
features:
  - {name: c, type: conv, out_channels: 3, kernel_size: 1}
representation: {name: r, type: cbp, dim: 16}
classifier:
  - {name: fc, type: linear, out_features: 2, bias: false}
""")

here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for f in sorted(os.listdir(os.path.join(here, "experiments"))):
    put("experiment_yaml", f, open(os.path.join(here, "experiments", f)).read())
put("experiment_yaml", "minimal.yaml", "model: {net: small_cnn}\ndata: {train: t, val: v}\n")
put("experiment_yaml", "net_file.yaml", """model:
  net: nets/zoo/small_cnn.yaml
  representation: none
  classes: 3
  classifier: linear
data: {train: t, preset: plain, image_size: 32, batch: 4}
solver: {lr: 0.1, epochs: 2, schedule: {type: cosine}}
run: {device: cpu, seed: 3}
""")

rng = np.random.default_rng(1)
rgb = Image.fromarray(rng.integers(0, 255, (13, 17, 3), dtype=np.uint8))
for name, fmt, img, kw in [("rgb.jpg", "JPEG", rgb, {}), ("prog.jpg", "JPEG", rgb, {"progressive": True}),
                           ("gray.jpg", "JPEG", rgb.convert("L"), {}), ("cmyk.jpg", "JPEG", rgb.convert("CMYK"), {}),
                           ("sub444.jpg", "JPEG", rgb, {"subsampling": 0}),
                           ("rgb.png", "PNG", rgb, {}), ("pal.png", "PNG", rgb.convert("P"), {}),
                           ("rgba.png", "PNG", rgb.convert("RGBA"), {}), ("la.png", "PNG", rgb.convert("LA"), {}),
                           ("i16.png", "PNG", rgb.convert("L").convert("I"), {}), ("rgb.bmp", "BMP", rgb, {}),
                           ("rgb.gif", "GIF", rgb, {}), ("rgb.ppm", "PPM", rgb, {})]:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    put("decode", name, b.getvalue())
# The stb_image formats' fix-ups (data/decode.cpp): a transparent index and a frame smaller than the screen,
# a PNM maxval below 255, a 5-6-5 BMP and a top-down one.
b = io.BytesIO()
rgb.convert("P").save(b, "GIF", transparency=3, optimize=False)
gif = bytearray(b.getvalue())
gif[6:10] = struct.pack("<HH", 20, 15)  # the screen larger than the frame
put("decode", "trns_small_frame.gif", bytes(gif))
put("decode", "maxval15.pgm", b"P5 17 13 15\n" + (rng.integers(0, 16, 17 * 13, dtype=np.uint8)).tobytes())


def bmp(height, bits, compression, masks, rows):
    info = struct.pack("<IiiHHIIiiII", 40, 17, height, 1, bits, compression, 0, 2835, 2835, 0, 0)
    info += b"".join(struct.pack("<I", m) for m in masks)
    data = b"".join(r + b"\0" * (-len(r) % 4) for r in rows)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(data), 0, 0, 14 + len(info)) + info + data


put("decode", "565.bmp", bmp(13, 16, 3, [0xF800, 0x07E0, 0x001F],
                              [rng.integers(0, 65536, 17, dtype=np.uint16).astype("<u2").tobytes() for _ in range(13)]))
put("decode", "top_down.bmp", bmp(-13, 24, 0, [], [np.asarray(rgb)[y].tobytes() for y in range(13)]))

state = {"epoch": 2, "batch": 5, "step": 17, "best_top1": 0.5,
         "history": [{"epoch": 1, "train_loss": 1.2, "train_top1": 0.3, "train_top5": 1.0, "val_loss": None,
                      "val_top1": None, "val_top5": None, "lr": 0.01, "seconds": 2.5, "images_per_second": 100}],
         "classes": ["a", "b\u00e9"], "partial_loss": 3.5, "partial_top1": 1, "partial_top5": 2, "partial_images": 8,
         "group_lr": {"features": 0.001, "classifier": 0.01}, "optimizer_steps": 17}
put("checkpoint_state", "full.json", json.dumps(state))
put("checkpoint_state", "no_sgd.json", json.dumps({k: v for k, v in state.items() if k not in ("group_lr", "optimizer_steps")}))
put("checkpoint_state", "escapes.json", '{"epoch": 0, "batch": 0, "step": 0, "best_top1": -1e300, "history": [], '
    '"classes": ["\\u00e9\\ud83d\\ude00\\n\\"x"], "partial_loss": 0, "partial_top1": 0, "partial_top5": 0, '
    '"partial_images": 0}')
