"""Oracle for loading the seed's own checkpoints: a model with the structure of the seed's Newmodel
(docs/seed.md §4: features / representation / classifier, built from torchvision's children as the seed's
Basemodel does), random weights and random batch-norm statistics, saved the way the seed's main.py saves
(a dict with epoch, arch, state_dict, best_prec1, optimizer) and converted with tools/pth_to_safetensors.py.

  seed_checkpoints.py OUTDIR CASE HxW [HxW ...]   writes OUTDIR/checkpoint.pth.tar, OUTDIR/checkpoint.safetensors
                                                   and per input size OUTDIR/x_HxW.npy (2 random images) and
                                                   OUTDIR/y_HxW.npy (eval logits, 10 classes)

CASE: resnet18_gavp            resnet18 as the seed builds it without a representation: GAvP, one linear classifier
      resnet18_mpncov_dp       resnet18 + MPNCOV reducing to 32 channels, features wrapped in DataParallel
                               (names features.module.N) as the seed's main.py does
      mpncov_resnet50_finetuned  the seed's mpncovresnet50 as fine-tuned from its pretrained weights: features are
                               its children but fc (layer_reduce, layer_reduce_bn, layer_reduce_relu as
                               features.8-10), MPNCOV without reduction
      inception_v3_gavp        inception_v3's features as the seed lists them (with two new max pools: features.3, .6)
      densenet121_gavp         densenet121's features with the seed's last ReLU, the classifier keeps its name
      mpncov_resnet50_scratch  the seed's mpncovresnet50 trained from scratch: features are conv1 .. layer4,
                               MPNCOV reducing 2048 -> 256 (conv_dr_block), the whole model wrapped for distributed
                               training (every name starts with module.)
"""
import os
import subprocess
import sys

import torch
import torchvision

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from zoo_nets import MPNCOV, MPNCOVResNet, randomise_batchnorm, save_logits  # noqa: E402

CLASSES = 10


class Newmodel(torch.nn.Module):
    """The seed's three parts; forward as its Basemodel: features, representation, flatten, classifier."""

    def __init__(self, features, representation, classifier):
        super().__init__()
        self.features = features
        self.representation = representation
        self.classifier = classifier

    def forward(self, x):
        x = self.representation(self.features(x))
        return self.classifier(x.view(x.size(0), -1))


class GAvP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        return self.avgpool(x)


def build(case):
    if case.startswith("resnet18"):
        children = list(torchvision.models.resnet18(weights=None).children())
        features = torch.nn.Sequential(*children[:-2])  # conv1, bn1, relu, maxpool, layer1-4: features.0-7
        if case == "resnet18_gavp":
            return Newmodel(features, GAvP(), torch.nn.Linear(512, CLASSES))
        features = torch.nn.DataParallel(features)  # on the CPU it only wraps: names features.module.N
        return Newmodel(features, MPNCOV(512, reduce=32), torch.nn.Linear(32 * 33 // 2, CLASSES))
    if case == "inception_v3_gavp":
        base = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, transform_input=False)
        features = torch.nn.Sequential(
            base.Conv2d_1a_3x3, base.Conv2d_2a_3x3, base.Conv2d_2b_3x3, torch.nn.MaxPool2d(kernel_size=3, stride=2),
            base.Conv2d_3b_1x1, base.Conv2d_4a_3x3, torch.nn.MaxPool2d(kernel_size=3, stride=2),
            base.Mixed_5b, base.Mixed_5c, base.Mixed_5d, base.Mixed_6a, base.Mixed_6b, base.Mixed_6c, base.Mixed_6d,
            base.Mixed_6e, base.Mixed_7a, base.Mixed_7b, base.Mixed_7c)
        return Newmodel(features, torch.nn.AdaptiveAvgPool2d((1, 1)), torch.nn.Linear(2048, CLASSES))
    if case == "densenet121_gavp":
        features = torchvision.models.densenet121(weights=None).features
        features.add_module("last_relu", torch.nn.ReLU(inplace=True))
        return Newmodel(features, torch.nn.AdaptiveAvgPool2d((1, 1)), torch.nn.Linear(1024, CLASSES))
    children = list(MPNCOVResNet([3, 4, 6, 3]).children())
    if case == "mpncov_resnet50_finetuned":
        return Newmodel(torch.nn.Sequential(*children[:-1]), MPNCOV(256), torch.nn.Linear(32896, CLASSES))
    return Newmodel(torch.nn.Sequential(*children[:-4]), MPNCOV(2048, reduce=256), torch.nn.Linear(32896, CLASSES))


def main():
    out, case, sizes = sys.argv[1], sys.argv[2], sys.argv[3:]
    torch.manual_seed(1)
    model = build(case)
    randomise_batchnorm(model)
    with torch.no_grad():  # a classifier bias that is not zero, so that a bias left out shows
        model.classifier.bias.copy_(0.1 * torch.randn_like(model.classifier.bias))
    model.eval()
    save_logits(model, out, sizes)
    saved = model
    if case == "mpncov_resnet50_scratch":
        # DistributedDataParallel needs a process group; its state_dict is the model's with module. in front.
        saved = torch.nn.Module()
        saved.module = model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    checkpoint = {"epoch": 3, "arch": case, "state_dict": saved.state_dict(), "best_prec1": 12.5,
                  "optimizer": optimizer.state_dict()}
    pth = os.path.join(out, "checkpoint.pth.tar")
    torch.save(checkpoint, pth)
    tool = os.path.join(here, "..", "..", "tools", "pth_to_safetensors.py")
    subprocess.run([sys.executable, tool, pth, os.path.join(out, "checkpoint.safetensors")], check=True,
                   stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
