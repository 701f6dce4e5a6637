#!/usr/bin/env python3
"""Converts a PyTorch checkpoint (.pth / .pth.tar holding a state_dict) to a safetensors weights file
that mpncov loads directly: tensor names stay the state_dict keys (torchvision's names, or the seed's
features.N / representation / classifier names of a checkpoint saved by fast-MPN-COV's main.py, which
mpncov maps to the net's as it loads them; its epoch and optimiser state are not converted).

usage: tools/pth_to_safetensors.py IN.pth OUT.safetensors [--strip-prefix PREFIX ...] [--key state_dict]

  --strip-prefix P  removes P from the start of every name (e.g. 'module.' left by DataParallel; mpncov
                    also finds and strips such a prefix itself, and reads the seed's 'features.module.0.weight'
                    as 'features.0.weight'); may be repeated
  --key K           the entry of a checkpoint dict that holds the state_dict (default: 'state_dict'
                    when present, else the whole file; a file with its tensors under another entry,
                    e.g. 'model', is an error naming it). A pickled whole module (torch.save(model))
                    gives its state_dict

Needs PyTorch (Debian: python3-torch): run it with a python3 that has it (`/usr/bin/python3 tools/...` when
the python3 first on PATH, e.g. a virtual environment's, lacks it). Tensors are written as they are stored
(float32 usually).
"""
import argparse
import json
import struct
import sys

DTYPES = {"torch.float32": "F32", "torch.float64": "F64", "torch.float16": "F16", "torch.bfloat16": "BF16",
          "torch.int64": "I64", "torch.int32": "I32", "torch.int16": "I16", "torch.int8": "I8",
          "torch.uint8": "U8", "torch.bool": "BOOL"}


def tensor_bytes(t):
    import torch
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: write the same 16 bits
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} in the safetensors layout: 8-byte little-endian header size, JSON header
    padded with spaces to a multiple of 8, then the raw little-endian data without holes."""
    header, offset, order = {}, 0, list(tensors)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name in order:
        t = tensors[name]
        n = t.numel() * t.element_size()
        header[name] = {"dtype": DTYPES[str(t.dtype)], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(tensor_bytes(tensors[name]))
    import os
    os.replace(tmp, path)


def read_safetensors(path):
    """Reads a safetensors file into {name: torch tensor} (names in header order) and its metadata."""
    import torch
    dtypes = {v: k for k, v in DTYPES.items()}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = getattr(torch, dtypes[entry["dtype"]].split(".")[1])
        raw = bytearray(data[begin:end])
        tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(entry["shape"]).clone() if end > begin else \
            torch.zeros(entry["shape"], dtype=dtype)
    return tensors, metadata


def import_torch():
    """PyTorch, or an exit naming this interpreter and what to do: the #! line takes the first python3 on PATH."""
    try:
        import torch
    except ImportError as e:
        sys.exit(f"error: this interpreter ({sys.executable}) cannot import PyTorch ({e}).\n"
                 f"Run the script with a python3 that has it, e.g. /usr/bin/python3 {sys.argv[0]} ... "
                 f"(Debian: apt-get install python3-torch; pip: pip install torch).")
    return torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--strip-prefix", action="append", default=[])
    parser.add_argument("--key")
    args = parser.parse_args()
    torch = import_torch()
    checkpoint = torch.load(args.input, map_location="cpu")
    if args.key:
        if not isinstance(checkpoint, dict) or args.key not in checkpoint:
            keys = list(checkpoint) if isinstance(checkpoint, dict) else []
            sys.exit(f"error: {args.input} has no entry '{args.key}'" + (f"; its entries: {keys}" if keys else ""))
        checkpoint = checkpoint[args.key]
    elif isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    if isinstance(checkpoint, torch.nn.Module):  # torch.save(model) pickles the whole module
        checkpoint = checkpoint.state_dict()
    if not isinstance(checkpoint, dict):
        sys.exit(f"error: {args.input} holds a {type(checkpoint).__name__}, not a state_dict (a dict of tensors)")
    if not any(torch.is_tensor(v) for v in checkpoint.values()):
        # A checkpoint dict that keeps its state_dict under another name ('model', 'state_dict_ema'):
        # writing no tensors would make an empty weights file.
        holders = [k for k, v in checkpoint.items() if isinstance(v, dict) and any(torch.is_tensor(t) for t in v.values())]
        hint = f"; the tensors are under {holders}: choose one with --key {holders[0]}" if holders else ""
        sys.exit(f"error: {args.input} has no tensors at its top level{hint}")
    tensors = {}
    for name, value in checkpoint.items():
        if not torch.is_tensor(value):
            continue
        for prefix in args.strip_prefix:
            if name.startswith(prefix):
                name = name[len(prefix):]
        if name in tensors:
            sys.exit(f"error: two tensors are named '{name}' after stripping prefixes")
        tensors[name] = value
    write_safetensors(args.output, tensors, {"source": args.input})
    print(f"wrote {len(tensors)} tensors to {args.output}")


if __name__ == "__main__":
    main()
