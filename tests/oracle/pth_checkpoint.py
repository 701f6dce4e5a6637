"""Writes OUTDIR/model.pth.tar the way the seed's training saved checkpoints (a dict whose state_dict has
DataParallel's 'module.' prefix) for torchvision's resnet18, then converts it with
tools/pth_to_safetensors.py --strip-prefix module. into OUTDIR/model.safetensors."""
import os
import subprocess
import sys

import torch
import torchvision

out = sys.argv[1]
model = torchvision.models.resnet18(weights=None)
state = {"module." + k: v for k, v in model.state_dict().items()}
torch.save({"epoch": 3, "arch": "resnet18", "state_dict": state}, os.path.join(out, "model.pth.tar"))
tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "pth_to_safetensors.py")
subprocess.run([sys.executable, tool, os.path.join(out, "model.pth.tar"), os.path.join(out, "model.safetensors"),
                "--strip-prefix", "module."], check=True)
import numpy as np  # noqa: E402
np.save(os.path.join(out, "fc_weight.npy"), model.fc.weight.detach().numpy())
