"""Other forms torch.save files take, through tools/pth_to_safetensors.py into OUTDIR: a pickled whole
module (torch.save(model)) -> module.safetensors; a checkpoint dict with its state_dict under 'model' ->
refused without --key (naming it, writing nothing), then keyed.safetensors with --key model."""
import os
import subprocess
import sys

import torch
import torchvision

out = sys.argv[1]
tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "pth_to_safetensors.py")


def convert(name, *extra):
    return subprocess.run([sys.executable, tool, os.path.join(out, name + ".pth"), os.path.join(out, name + ".safetensors"),
                           *extra], capture_output=True, text=True)


model = torchvision.models.resnet18(weights=None)
torch.save(model, os.path.join(out, "module.pth"))
done = convert("module")
assert done.returncode == 0, done.stderr
torch.save({"model": model.state_dict(), "epoch": 3}, os.path.join(out, "keyed.pth"))
refused = convert("keyed")
assert refused.returncode != 0 and "--key model" in refused.stderr, (refused.returncode, refused.stdout, refused.stderr)
assert not os.path.exists(os.path.join(out, "keyed.safetensors")), "an empty weights file was written"
missing = convert("keyed", "--key", "state_dict")
assert missing.returncode != 0 and "'model'" in missing.stderr, missing.stderr
done = convert("keyed", "--key", "model")
assert done.returncode == 0, done.stderr
