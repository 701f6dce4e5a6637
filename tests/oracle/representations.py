"""Reference values for the representation layers, from fast-MPN-COV's formulas in PyTorch (docs/seed.md §2-3).

Usage: representations.py CASE DIR [--double]
  CASE: mpncov:ITERATIONS:SQRT:VECTORIZE | bcnn | cbp | gavp
  DIR holds x.npy (B, C, H, W) and g.npy (the gradient of the loss w.r.t. the output), for cbp also
  hash1/sign1/hash2/sign2.npy (our layer's buffers: the seed draws its own with torch's RNG). Written:
  y.npy and dx.npy by autograd (the exact gradient), in x's dtype. For mpncov with sqrt also:
  dx_seed.npy (the same chain with the seed's hand-written Sqrtm backward, which returns the transpose of
  the exact gradient of Sigma), dsigma_exact.npy and dsigma_seed.npy (the two gradients of Sigma), and
  sigma.npy. --double computes (and writes) in float64 whatever x's dtype: the truth a float32 result is
  measured against where PyTorch's own float32 rounding is the larger error (the FFTs of cbp).
"""
import sys

import numpy as np
import torch
import torch.nn.functional as F


def covpool(x):
    """Sigma = X I_hat X^T with the dense M x M centring matrix, as the seed builds it."""
    b, c, h, w = x.shape
    m = h * w
    x = x.reshape(b, c, m)
    i_hat = (-1.0 / m / m) * torch.ones(m, m, dtype=x.dtype) + (1.0 / m) * torch.eye(m, dtype=x.dtype)
    i_hat = i_hat.view(1, m, m).repeat(b, 1, 1)
    return x.bmm(i_hat).bmm(x.transpose(1, 2))


def newton_schulz(sigma, n):
    """Pre-normalisation by the trace, coupled Newton-Schulz (last step Y only), post-compensation.
    Returns the output and the iterates the seed saves (A, Y[k], Z[k], Y_N, trace)."""
    b, d, _ = sigma.shape
    i3 = 3.0 * torch.eye(d, dtype=sigma.dtype).view(1, d, d).repeat(b, 1, 1)
    trace = (sigma * i3).sum(dim=(1, 2)) / 3.0
    a = sigma / trace.view(b, 1, 1)
    ys, zs = [], []
    if n < 2:
        root = a.bmm(0.5 * (i3 - a))
    else:
        t = 0.5 * (i3 - a)
        ys.append(a.bmm(t))
        zs.append(t)
        for _ in range(1, n - 1):
            t = 0.5 * (i3 - zs[-1].bmm(ys[-1]))
            ys.append(ys[-1].bmm(t))
            zs.append(t.bmm(zs[-1]))
        root = 0.5 * ys[-1].bmm(i3 - zs[-1].bmm(ys[-1]))
    out = root * torch.sqrt(trace).view(b, 1, 1)
    return out, (a, ys, zs, root, trace, i3)


class SeedSqrtm(torch.autograd.Function):
    """The seed's Sqrtm with its hand-written backward (docs/seed.md §2.3), final transpose included."""

    @staticmethod
    def forward(ctx, sigma, n):
        out, saved = newton_schulz(sigma, n)
        ctx.n = n
        ctx.sigma = sigma
        ctx.saved = saved
        return out

    @staticmethod
    def backward(ctx, g):
        n, sigma = ctx.n, ctx.sigma
        a, ys, zs, root, trace, i3 = ctx.saved
        b = sigma.shape[0]
        s = torch.sqrt(trace).view(b, 1, 1)
        p = g * s
        aux = (g * root).sum(dim=(1, 2)) / (2 * torch.sqrt(trace))
        if n < 2:
            d = 0.5 * (p.bmm(i3 - a) - a.bmm(p))
        else:
            y, z = ys[-1], zs[-1]
            dy = 0.5 * (p.bmm(i3 - y.bmm(z)) - z.bmm(y).bmm(p))
            dz = -0.5 * y.bmm(p).bmm(y)
            for i in range(n - 3, -1, -1):
                u = i3 - ys[i].bmm(zs[i])
                v = zs[i].bmm(ys[i])
                dy_new = 0.5 * (dy.bmm(u) - zs[i].bmm(dz).bmm(zs[i]) - v.bmm(dy))
                dz_new = 0.5 * (u.bmm(dz) - ys[i].bmm(dy).bmm(ys[i]) - dz.bmm(v))
                dy, dz = dy_new, dz_new
            d = 0.5 * (dy.bmm(i3 - a) - dz - a.bmm(dy))
        d = d.transpose(1, 2)
        grad = d / trace.view(b, 1, 1)
        extra = aux - (d * sigma).sum(dim=(1, 2)) / (trace * trace)
        grad = grad + extra.view(b, 1, 1) * (i3 / 3.0)
        return grad, None


def triuvec(m):
    d = m.shape[1]
    idx = torch.triu(torch.ones(d, d)).flatten().nonzero().flatten()
    return m.flatten(1)[:, idx]


def signed_sqrt_l2(z, thresh=1e-8):
    z = torch.sign(z) * torch.sqrt(torch.abs(z) + thresh)
    return F.normalize(z.flatten(1), dim=1)


def cbp(x, h1, s1, h2, s2, dim):
    b, c, h, w = x.shape
    m = h * w
    s_mat = []
    for hash_, sign in ((h1, s1), (h2, s2)):
        s = torch.zeros(c, dim, dtype=x.dtype)
        s[torch.arange(c), torch.as_tensor(hash_, dtype=torch.long)] = torch.as_tensor(sign, dtype=x.dtype)
        s_mat.append(s)
    feats = x.reshape(b, c, m).transpose(1, 2)  # (B, M, C)
    u = feats.matmul(s_mat[0])
    v = feats.matmul(s_mat[1])
    y = torch.fft.ifft(torch.fft.fft(u, dim=2) * torch.fft.fft(v, dim=2), dim=2).real.sum(dim=1)
    return signed_sqrt_l2(y)


def main():
    case, folder = sys.argv[1], sys.argv[2]
    load = lambda name: np.load(f"{folder}/{name}.npy")
    save = lambda name, t: np.save(f"{folder}/{name}.npy", t.detach().numpy())
    x_np = load("x")
    g_np = load("g")
    if "--double" in sys.argv[3:]:
        x_np, g_np = x_np.astype(np.float64), g_np.astype(np.float64)
    x = torch.tensor(x_np, requires_grad=True)
    g = torch.tensor(g_np)
    parts = case.split(":")
    if parts[0] == "mpncov":
        n, sqrt, vec = int(parts[1]), parts[2] == "1", parts[3] == "1"
        sigma = covpool(x)
        out = newton_schulz(sigma, n)[0] if sqrt else sigma
        y = triuvec(out) if vec else out
        (dx,) = torch.autograd.grad(y, x, g)
        save("y", y)
        save("dx", dx)
        if sqrt:
            # The seed's chain: its Sqrtm Function in place of the autograd one.
            x2 = torch.tensor(x_np, requires_grad=True)
            sigma2 = covpool(x2)
            sigma2.retain_grad()
            out2 = SeedSqrtm.apply(sigma2, n)
            y2 = triuvec(out2) if vec else out2
            y2.backward(g)
            save("dx_seed", x2.grad)
            save("dsigma_seed", sigma2.grad)
            # The exact gradient of Sigma, by autograd from a leaf Sigma.
            s3 = sigma.detach().clone().requires_grad_(True)
            out3 = newton_schulz(s3, n)[0]
            y3 = triuvec(out3) if vec else out3
            (ds,) = torch.autograd.grad(y3, s3, g)
            save("dsigma_exact", ds)
            save("sigma", sigma)
    elif parts[0] == "bcnn":
        b, c = x.shape[0], x.shape[1]
        feats = x.reshape(b, c, -1)
        z = feats.bmm(feats.transpose(1, 2)) / feats.shape[2]
        y = signed_sqrt_l2(z)
        (dx,) = torch.autograd.grad(y, x, g)
        save("y", y)
        save("dx", dx)
    elif parts[0] == "cbp":
        hs = [load(name) for name in ("hash1", "sign1", "hash2", "sign2")]
        y = cbp(x, hs[0], hs[1], hs[2], hs[3], g.shape[1])
        (dx,) = torch.autograd.grad(y, x, g)
        save("y", y)
        save("dx", dx)
    elif parts[0] == "gavp":
        y = F.adaptive_avg_pool2d(x, 1).flatten(1)
        (dx,) = torch.autograd.grad(y, x, g)
        save("y", y)
        save("dx", dx)
    else:
        raise SystemExit(f"unknown case {case}")


if __name__ == "__main__":
    main()
