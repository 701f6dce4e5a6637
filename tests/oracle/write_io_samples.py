"""Oracle for core/safetensors and core/npy.

  write_io_samples.py OUTDIR          writes .npy files with numpy.save and a safetensors file from torch
                                      tensors, plus manifest.json with every expected value
  write_io_samples.py --check OUTDIR  reads the files the C++ test wrote (cpp_manifest.json lists them)
                                      with numpy and torch, checks the bytes against the format strictly,
                                      and compares every value

Debian has no python3-safetensors, so the safetensors side is a plain writer/reader of the published
format (8-byte little-endian header length, JSON header, raw little-endian data), the way the reference
implementation lays it out: tensors sorted by alignment then name, no holes, header padded with spaces.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

ST_DTYPES = {
    torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
TORCH_OF = {v: k for k, v in ST_DTYPES.items()}


def values_of(t):
    """Flat C-order values as JSON numbers: ints stay exact, floats are exact doubles."""
    t = t.detach().reshape(-1)
    if t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool):
        return [int(v) for v in t.to(torch.int64).tolist()]
    return [float(v) for v in t.to(torch.float64).tolist()]


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: the same 16 bits as int16
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        n = tensors[name].numel() * tensors[name].element_size()
        header[name] = {"dtype": ST_DTYPES[tensors[name].dtype], "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(tensor_bytes(tensors[name]))


def write_mode(out):
    g = torch.Generator().manual_seed(7)
    rng = np.random.default_rng(7)
    manifest = {"npy": {}, "safetensors": {}}

    arrays = {
        "f4_2x3x4": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "f8_5": rng.standard_normal(5),
        "i8_3x2": np.array([[0, -1], [2**62 + 1, -2**62], [123456789012345, 7]], dtype=np.int64),
        "i4_4": np.array([-2**31, -1, 0, 2**31 - 1], dtype=np.int32),
        "f2_3": np.array([0.5, -65504.0, 6.1e-5], dtype=np.float16),
        "b1_3": np.array([True, False, True]),
        "f8_scalar": np.array(3.25),
        "f4_empty": np.zeros((0, 3), dtype=np.float32),
        "f4_big": rng.standard_normal((300, 257)).astype(np.float32),
    }
    for name, a in arrays.items():
        np.save(os.path.join(out, name + ".npy"), a)
        manifest["npy"][name + ".npy"] = {"shape": list(a.shape), "values": values_of(torch.from_numpy(a))}
    for version in ((2, 0), (3, 0)):
        a = rng.standard_normal((3, 2)).astype(np.float32)
        name = "f4_v%d.npy" % version[0]
        with open(os.path.join(out, name), "wb") as f:
            np.lib.format.write_array(f, a, version=version)
        manifest["npy"][name] = {"shape": list(a.shape), "values": values_of(torch.from_numpy(a))}
    # Files our reader must refuse.
    np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(rng.standard_normal((2, 3))))
    np.save(os.path.join(out, "bigendian.npy"), np.arange(4, dtype=">f4"))
    np.save(os.path.join(out, "object.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)

    tensors = {
        "features.0.weight": torch.randn(4, 3, 3, 3, generator=g),
        "features.1.running_var": torch.rand(4, generator=g, dtype=torch.float64),
        "fc.weight_f16": torch.randn(2, 5, generator=g).half(),
        "fc.weight_bf16": torch.randn(3, 3, generator=g).bfloat16(),
        "features.1.num_batches_tracked": torch.tensor(12345678901, dtype=torch.int64),
        "labels_i32": torch.tensor([-7, 0, 2**31 - 1, -2**31, 5, 6], dtype=torch.int32),
        "i16": torch.tensor([-32768, 1, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255, 1], dtype=torch.uint8),
        "mask": torch.tensor([[True, False], [False, True]]),
        "empty": torch.zeros(0, 4),
        "big": torch.randn(128, 129, generator=g),
    }
    metadata = {"format": "pt", "note": "written by write_io_samples.py \u00fc"}
    write_safetensors(os.path.join(out, "torch.safetensors"), tensors, metadata)
    manifest["safetensors"] = {
        "file": "torch.safetensors", "metadata": metadata,
        "tensors": {k: {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "values": values_of(t)}
                    for k, t in tensors.items()}}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    print("wrote %d npy files and %d safetensors tensors" % (len(manifest["npy"]) + 3, len(tensors)))


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        fail("duplicate keys in a JSON object: %s" % keys)
    return dict(pairs)


def read_safetensors_strict(path):
    """Reads a safetensors file as the reference implementation validates it, into torch tensors."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    if (8 + n) % 8:
        fail("%s: data section not 8-byte aligned (header length %d)" % (path, n))
    raw = data[8:8 + n]
    if not raw.startswith(b"{"):
        fail("%s: header does not start with '{'" % path)
    header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    metadata = header.pop("__metadata__", {})
    body = data[8 + n:]
    ranges, tensors = [], {}
    for name, e in header.items():
        if set(e) != {"dtype", "shape", "data_offsets"}:
            fail("%s: tensor %s has keys %s" % (path, name, sorted(e)))
        b, end = e["data_offsets"]
        dtype = TORCH_OF[e["dtype"]]
        count = 1
        for d in e["shape"]:
            count *= d
        if end - b != count * torch.tensor([], dtype=dtype).element_size():
            fail("%s: tensor %s byte range does not match its shape" % (path, name))
        ranges.append((b, end))
        chunk = bytearray(body[b:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(chunk, dtype=torch.int16).view(torch.bfloat16) if chunk else torch.zeros(0, dtype=dtype)
        else:
            t = torch.frombuffer(chunk, dtype=dtype) if chunk else torch.zeros(0, dtype=dtype)
        tensors[name] = t.reshape(e["shape"])
    # The reference implementation demands the data section be covered exactly, without holes.
    pos = 0
    for b, end in sorted(ranges):
        if b != pos:
            fail("%s: hole or overlap at byte %d of the data section" % (path, pos))
        pos = end
    if pos != len(body):
        fail("%s: %d bytes of data are not covered by any tensor" % (path, len(body) - pos))
    return tensors, metadata


def check_values(what, got, want):
    if list(got.shape) != want["shape"]:
        fail("%s: shape %s, expected %s" % (what, list(got.shape), want["shape"]))
    if values_of(got) != want["values"]:
        fail("%s: values differ" % what)


def check_mode(out):
    with open(os.path.join(out, "cpp_manifest.json")) as f:
        manifest = json.load(f, object_pairs_hook=no_duplicates)
    count = 0
    st = manifest.get("safetensors")
    if st:
        tensors, metadata = read_safetensors_strict(os.path.join(out, st["file"]))
        if metadata != st["metadata"]:
            fail("metadata %r, expected %r" % (metadata, st["metadata"]))
        if list(tensors) != list(st["tensors"]):
            fail("tensor order %s, expected %s" % (list(tensors), list(st["tensors"])))
        for name, want in st["tensors"].items():
            if ST_DTYPES[tensors[name].dtype] != want["dtype"]:
                fail("%s: dtype %s, expected %s" % (name, tensors[name].dtype, want["dtype"]))
            check_values(name, tensors[name], want)
            count += 1
    for name, want in manifest.get("npy", {}).items():
        path = os.path.join(out, name)
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            np.lib.format.read_array_header_1_0(f) if version == (1, 0) else np.lib.format.read_array_header_2_0(f)
            if f.tell() % 64:
                fail("%s: header of %d bytes is not a multiple of 64" % (name, f.tell()))
        if version != tuple(want.get("version", (1, 0))):
            fail("%s: version %s" % (name, version))
        a = np.load(path, allow_pickle=False)
        if a.dtype.str != want["descr"] or not a.flags["C_CONTIGUOUS"]:
            fail("%s: dtype %s, expected %s" % (name, a.dtype.str, want["descr"]))
        check_values(name, torch.from_numpy(a.copy(order="C")), want)  # ascontiguousarray would make 0-d 1-d
        count += 1
    print("checked %d arrays written by mpncov" % count)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check_mode(sys.argv[2])
    elif len(sys.argv) == 2:
        write_mode(sys.argv[1])
    else:
        sys.exit(__doc__)
