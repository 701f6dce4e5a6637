"""Oracle for optim/sgd and optim/schedule: torch.optim.SGD with two parameter groups and MultiStepLR.

  sgd_reference.py DIR NESTEROV

DIR holds what the C++ test wrote: config.json (groups: lr, weight_decay and parameter names; momentum;
milestones; gamma; steps; iterations_per_epoch), NAME.npy (initial weights) and NAME_grads.npy (one gradient
per step, stacked). Writes NAME_torch.npy: the weights after every step, stacked (steps, *shape), in the
weights' dtype.
"""
import json
import os
import sys

import numpy as np
import torch


def main():
    out, nesterov = sys.argv[1], sys.argv[2] == "1"
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    params, grads, groups = {}, {}, []
    for g in cfg["groups"]:
        members = []
        for name in g["params"]:
            params[name] = torch.from_numpy(np.load(os.path.join(out, name + ".npy"))).requires_grad_()
            grads[name] = torch.from_numpy(np.load(os.path.join(out, name + "_grads.npy")))
            members.append(params[name])
        groups.append({"params": members, "lr": g["lr"], "weight_decay": g["weight_decay"]})
    opt = torch.optim.SGD(groups, lr=1.0, momentum=cfg["momentum"], nesterov=nesterov)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=cfg["milestones"], gamma=cfg["gamma"])
    trajectory = {name: [] for name in params}
    for step in range(cfg["steps"]):
        for name, p in params.items():
            p.grad = grads[name][step].clone()
        opt.step()
        for name, p in params.items():
            trajectory[name].append(p.detach().clone().numpy())
        if (step + 1) % cfg["iterations_per_epoch"] == 0:
            sched.step()
    for name, states in trajectory.items():
        np.save(os.path.join(out, name + "_torch.npy"), np.stack(states))


if __name__ == "__main__":
    main()
