"""Oracle for the zoo: torchvision's models (and the seed's MPN-COV models, built here from the seed's
definitions) with random weights and random batch-norm statistics.

  zoo_nets.py OUTDIR NAME HxW [HxW ...]   writes OUTDIR/weights.safetensors (state_dict names),
                                           per input size OUTDIR/x_HxW.npy (2 random images) and
                                           OUTDIR/y_HxW.npy (eval logits), and OUTDIR/count.txt (the
                                           number of parameters)
"""
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from pth_to_safetensors import write_safetensors  # noqa: E402

torch.manual_seed(0)


# The seed's iSQRT-COV forward (docs/seed.md §2), from the representations oracle.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from representations import covpool, newton_schulz, triuvec  # noqa: E402,F401


def sqrtm(a, n):
    return newton_schulz(a, n)[0]


class MPNCOV(torch.nn.Module):
    def __init__(self, in_dim, reduce=None, iterations=5):
        super().__init__()
        self.iterations = iterations
        if reduce:
            self.conv_dr_block = torch.nn.Sequential(torch.nn.Conv2d(in_dim, reduce, 1, bias=False),
                                                     torch.nn.BatchNorm2d(reduce), torch.nn.ReLU(inplace=True))
        self.reduce = reduce

    def forward(self, x):
        if self.reduce:
            x = self.conv_dr_block(x)
        return triuvec(sqrtm(covpool(x), self.iterations))


class MPNCOVResNet(torch.nn.Module):
    """The seed's mpncovresnet: torchvision's ResNet with layer4 at stride 1 and a 2048 -> 256 reduction."""

    def __init__(self, layers):
        super().__init__()
        base = torchvision.models.ResNet(torchvision.models.resnet.Bottleneck, layers)
        for name in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"]:
            setattr(self, name, getattr(base, name))
        base.inplanes = 1024
        self.layer4 = base._make_layer(torchvision.models.resnet.Bottleneck, 512, layers[3], stride=1)
        self.layer_reduce = torch.nn.Conv2d(2048, 256, 1, bias=False)
        self.layer_reduce_bn = torch.nn.BatchNorm2d(256)
        self.layer_reduce_relu = torch.nn.ReLU(inplace=True)
        self.fc = torch.nn.Linear(32896, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.layer_reduce_relu(self.layer_reduce_bn(self.layer_reduce(x)))
        return self.fc(triuvec(sqrtm(covpool(x), 5)).flatten(1))


class MPNCOVVGG(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torchvision.models.vgg16_bn().features[:-1]
        self.representation = MPNCOV(512, reduce=256)
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(32896, 4096), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(4096, 4096), torch.nn.ReLU(True), torch.nn.Dropout(), torch.nn.Linear(4096, 1000))

    def forward(self, x):
        return self.classifier(self.representation(self.features(x)).flatten(1))


def build(name):
    if name == "mpncov_resnet50":
        return MPNCOVResNet([3, 4, 6, 3])
    if name == "mpncov_resnet101":
        return MPNCOVResNet([3, 4, 23, 3])
    if name == "mpncov_vgg16_bn":
        return MPNCOVVGG()
    if name == "inception_v3":
        return torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False,
                                               transform_input=False)
    return getattr(torchvision.models, name)(weights=None)


def randomise_batchnorm(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn_like(m.running_mean))
                m.running_var.copy_(0.5 + torch.rand_like(m.running_var))
                m.weight.copy_(1 + 0.1 * torch.randn_like(m.weight))
                m.bias.copy_(0.1 * torch.randn_like(m.bias))


def save_logits(model, out, sizes):
    """Per input size HxW: OUTDIR/x_HxW.npy (2 random images) and OUTDIR/y_HxW.npy (the model's output)."""
    os.makedirs(out, exist_ok=True)
    for size in sizes:
        height, width = (int(v) for v in size.split("x"))
        x = torch.randn(2, 3, height, width)
        with torch.no_grad():
            y = model(x)
        np.save(os.path.join(out, f"x_{size}.npy"), x.numpy())
        np.save(os.path.join(out, f"y_{size}.npy"), y.numpy())


def main():
    out, name, sizes = sys.argv[1], sys.argv[2], sys.argv[3:]
    model = build(name)
    randomise_batchnorm(model)
    model.eval()
    save_logits(model, out, sizes)
    write_safetensors(os.path.join(out, "weights.safetensors"), model.state_dict())
    with open(os.path.join(out, "count.txt"), "w") as f:
        f.write(str(sum(p.numel() for p in model.parameters())))


if __name__ == "__main__":
    main()
