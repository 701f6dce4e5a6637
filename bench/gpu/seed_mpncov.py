"""The seed's iSQRT-COV meta-layer in PyTorch, on any device: Covpool, Sqrtm and Triuvec as autograd
Functions with the seed's hand-written backward passes, following the formulas of docs/seed.md §2.2-2.4 (dense
M x M centring matrix, iteration buffers of shape (B, N, d, d), the identity term added per sample in a
Python loop, the transpose of the Sqrtm gradient). This is the peer of our mpncov layer in the GPU
benchmarks (bench/gpu/torch_isqrt.py, bench/gpu/torch_step.py). tests/oracle/representations.py holds the
CPU reference used by the tests; this copy differs only in building every constant on the input's device.
"""
import torch
from torch import nn


class Covpool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        b, c, h, w = x.shape
        m = h * w
        x = x.reshape(b, c, m)
        i_hat = (-1.0 / m / m) * torch.ones(m, m, device=x.device, dtype=x.dtype) + \
            (1.0 / m) * torch.eye(m, device=x.device, dtype=x.dtype)
        i_hat = i_hat.view(1, m, m).repeat(b, 1, 1)
        ctx.save_for_backward(x, i_hat)
        ctx.shape = (b, c, h, w)
        return x.bmm(i_hat).bmm(x.transpose(1, 2))

    @staticmethod
    def backward(ctx, g):
        x, i_hat = ctx.saved_tensors
        grad = (g + g.transpose(1, 2)).bmm(x).bmm(i_hat)
        return grad.reshape(ctx.shape)


class Sqrtm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sigma, n):
        b, d = sigma.shape[0], sigma.shape[1]
        i3 = 3.0 * torch.eye(d, device=sigma.device, dtype=sigma.dtype).view(1, d, d).repeat(b, 1, 1)
        trace = (1.0 / 3.0) * sigma.mul(i3).sum(dim=1).sum(dim=1)
        a = sigma.div(trace.view(b, 1, 1).expand_as(sigma))
        y = torch.zeros(b, n, d, d, device=sigma.device, dtype=sigma.dtype, requires_grad=False)
        z = torch.eye(d, device=sigma.device, dtype=sigma.dtype).view(1, d, d).repeat(b, n, 1, 1)
        if n < 2:
            root = a.bmm(0.5 * (i3 - a))
        else:
            t = 0.5 * (i3 - a)
            y[:, 0, :, :] = a.bmm(t)
            z[:, 0, :, :] = t
            for i in range(1, n - 1):
                t = 0.5 * (i3 - z[:, i - 1, :, :].bmm(y[:, i - 1, :, :]))
                y[:, i, :, :] = y[:, i - 1, :, :].bmm(t)
                z[:, i, :, :] = t.bmm(z[:, i - 1, :, :])
            root = 0.5 * y[:, n - 2, :, :].bmm(i3 - z[:, n - 2, :, :].bmm(y[:, n - 2, :, :]))
        out = root * torch.sqrt(trace).view(b, 1, 1).expand_as(sigma)
        ctx.save_for_backward(sigma, a, root, trace, y, z)
        ctx.n = n
        return out

    @staticmethod
    def backward(ctx, g):
        sigma, a, root, trace, y, z = ctx.saved_tensors
        n = ctx.n
        b, d = sigma.shape[0], sigma.shape[1]
        i3 = 3.0 * torch.eye(d, device=sigma.device, dtype=sigma.dtype).view(1, d, d).repeat(b, 1, 1)
        p = g * torch.sqrt(trace).view(b, 1, 1).expand_as(sigma)
        aux = (g * root).sum(dim=1).sum(dim=1).div(2 * torch.sqrt(trace))
        if n < 2:
            dd = 0.5 * (p.bmm(i3 - a) - a.bmm(p))
        else:
            yl, zl = y[:, n - 2, :, :], z[:, n - 2, :, :]
            dy = 0.5 * (p.bmm(i3 - yl.bmm(zl)) - zl.bmm(yl).bmm(p))
            dz = -0.5 * yl.bmm(p).bmm(yl)
            for i in range(n - 3, -1, -1):
                yi, zi = y[:, i, :, :], z[:, i, :, :]
                u = i3 - yi.bmm(zi)
                v = zi.bmm(yi)
                dy_new = 0.5 * (dy.bmm(u) - zi.bmm(dz).bmm(zi) - v.bmm(dy))
                dz_new = 0.5 * (u.bmm(dz) - yi.bmm(dy).bmm(yi) - dz.bmm(v))
                dy, dz = dy_new, dz_new
            dd = 0.5 * (dy.bmm(i3 - a) - dz - a.bmm(dy))
        dd = dd.transpose(1, 2)
        grad = dd.div(trace.view(b, 1, 1).expand_as(sigma))
        inner = (dd * sigma).sum(dim=1).sum(dim=1)
        for i in range(b):  # the seed adds the identity term sample by sample
            grad[i, :, :] += (aux[i] - inner[i] / (trace[i] * trace[i])) * \
                torch.ones(d, device=sigma.device, dtype=sigma.dtype).diag()
        return grad, None


class Triuvec(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        b, d = x.shape[0], x.shape[1]
        index = torch.ones(d, d, device=x.device).triu().reshape(d * d).nonzero()
        ctx.save_for_backward(index)
        ctx.shape = x.shape
        return x.reshape(b, d * d)[:, index]  # (B, d(d+1)/2, 1), as the seed returns it

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        b, d = ctx.shape[0], ctx.shape[1]
        grad = torch.zeros(b, d * d, device=g.device, dtype=g.dtype)
        grad[:, index] = g
        return grad.reshape(b, d, d)


def isqrt_cov(x, iterations=5):
    """Covpool -> Sqrtm -> Triuvec, flattened to (B, d(d+1)/2)."""
    return Triuvec.apply(Sqrtm.apply(Covpool.apply(x), iterations)).flatten(1)


class MPNCOV(nn.Module):
    """The seed's representation with dimension reduction: 1x1 conv (no bias) + BN + ReLU, then iSQRT-COV."""

    def __init__(self, input_dim=2048, reduced=256, iterations=5):
        super().__init__()
        self.iterations = iterations
        self.layer_reduce = nn.Conv2d(input_dim, reduced, kernel_size=1, bias=False)
        self.layer_reduce_bn = nn.BatchNorm2d(reduced)
        self.layer_reduce_relu = nn.ReLU(inplace=True)
        nn.init.kaiming_normal_(self.layer_reduce.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layer_reduce_relu(self.layer_reduce_bn(self.layer_reduce(x)))
        return isqrt_cov(x, self.iterations)


def isqrt_cov_autograd(x, iterations=5):
    """The same forward in plain tensor ops, differentiated by autograd (a second PyTorch peer)."""
    b, c, h, w = x.shape
    m = h * w
    feats = x.reshape(b, c, m)
    centred = feats - feats.mean(dim=2, keepdim=True)
    sigma = centred.bmm(centred.transpose(1, 2)) / m
    eye3 = 3.0 * torch.eye(c, device=x.device, dtype=x.dtype).expand(b, c, c)
    trace = sigma.diagonal(dim1=1, dim2=2).sum(dim=1).view(b, 1, 1)
    a = sigma / trace
    t = 0.5 * (eye3 - a)
    y, z = a.bmm(t), t
    for _ in range(1, iterations - 1):
        t = 0.5 * (eye3 - z.bmm(y))
        y, z = y.bmm(t), t.bmm(z)
    root = 0.5 * y.bmm(eye3 - z.bmm(y)) if iterations >= 2 else a.bmm(0.5 * (eye3 - a))
    out = root * torch.sqrt(trace)
    rows, cols = torch.triu_indices(c, c, device=x.device)
    return out[:, rows, cols]
