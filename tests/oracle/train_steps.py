"""Oracle for the training components: 20 SGD steps of a small network in PyTorch (float64) from the
same initial weights on the same batches as the C++ test.

  train_steps.py DIR   reads DIR/init.safetensors, DIR/x.npy (steps, B, 3, 12, 12), DIR/y.npy (steps, B);
                       writes DIR/losses.npy and DIR/final.safetensors
"""
import os
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "tools"))
sys.path.insert(0, here)
from pth_to_safetensors import read_safetensors, write_safetensors  # noqa: E402
from zoo_nets import covpool, sqrtm, triuvec  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(6)
        self.conv2 = torch.nn.Conv2d(6, 5, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(5)
        self.fc = torch.nn.Linear(15, 3)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2, 2)
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(triuvec(sqrtm(covpool(x), 3)).flatten(1))


def main():
    out = sys.argv[1]
    init, _ = read_safetensors(os.path.join(out, "init.safetensors"))
    model = Net().double()
    model.load_state_dict({k: v for k, v in init.items()})
    xs = torch.from_numpy(np.load(os.path.join(out, "x.npy")))
    ys = torch.from_numpy(np.load(os.path.join(out, "y.npy")))
    features = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
    classifier = [model.fc.weight, model.fc.bias]
    lr = 0.05
    opt = torch.optim.SGD([{"params": features, "lr": lr}, {"params": classifier, "lr": lr * 2}],
                          lr=lr, momentum=0.9, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[1], gamma=0.1)
    losses = []
    model.train()
    steps_per_epoch = xs.shape[0] // 2
    for epoch in range(2):
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            loss = torch.nn.functional.cross_entropy(model(xs[step]), ys[step])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        schedule.step()
    np.save(os.path.join(out, "losses.npy"), np.array(losses))
    write_safetensors(os.path.join(out, "final.safetensors"), model.state_dict())


if __name__ == "__main__":
    main()
