"""Training step in float32 and bfloat16, ours against PyTorch (autocast, NCHW and channels-last), interleaved.

usage: /usr/bin/python3 bench/bf16.py [--mpncov build/mpncov] [--net resnet50] [--batch 8] [--threads 2]
                                      [--rounds 2] [--iterations 3] [--nchw] [--bf16-only]
                                      [--wait-policy passive|both]

Ours runs with its default activation layouts (docs/layouts.md: NHWC and bfloat16 storage in bfloat16);
--nchw adds ours with every activation NCHW (MPNCOV_LAYOUT=nchw, float32 storage), the earlier route.
--bf16-only leaves out the float32 variants (ours and PyTorch's).

Each round runs every variant once (a fresh process each), in order; the table shows the median seconds per
step over rounds and PyTorch's time over ours (above 1: we are faster). Same environment for both sides as
bench/nets.py (OMP_WAIT_POLICY=PASSIVE, OPENBLAS_CORETYPE); the load average is printed before and after.
--wait-policy both adds every variant again with OMP_WAIT_POLICY unset (OpenMP's default: threads spin a
while before sleeping), for both sides; the last column compares with PyTorch's fastest bfloat16 variant,
whichever layout and wait policy that was."""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from nets import coretype  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpncov", default=os.path.join(os.path.dirname(HERE), "build", "mpncov"))
    ap.add_argument("--net", default="resnet50")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--nchw", action="store_true", help="also ours with MPNCOV_LAYOUT=nchw")
    ap.add_argument("--bf16-only", action="store_true", help="only the bfloat16 variants")
    ap.add_argument("--wait-policy", choices=["passive", "both"], default="passive",
                    help="both: every variant also with OMP_WAIT_POLICY unset")
    a = ap.parse_args()
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    if coretype():
        env["OPENBLAS_CORETYPE"] = coretype()
    default_env = {k: v for k, v in env.items() if k != "OMP_WAIT_POLICY"}

    def ours(precision, layout="auto", env=env):
        cmd = [a.mpncov, "time", a.net, "--batch", str(a.batch), "--iterations", str(a.iterations), "--threads",
               str(a.threads), "--precision", precision]
        out = subprocess.run(cmd, env=dict(env, MPNCOV_LAYOUT=layout), check=True, capture_output=True,
                             text=True).stdout
        m = re.search(r"training step: ([0-9.]+) ms per batch", out)
        if not m:
            raise SystemExit(f"cannot parse the output of {' '.join(cmd)}:\n{out}")
        return float(m.group(1)) / 1e3

    def torch(precision, layout, env=env):
        cmd = [sys.executable, os.path.join(HERE, "bf16_torch.py"), a.net, str(a.batch), str(a.iterations),
               str(a.threads), precision, layout]
        return float(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.split()[-1])

    # (name, function of the environment)
    variants = [("ours float32", lambda e: ours("float32", env=e)), ("ours bfloat16", lambda e: ours("bfloat16", env=e))]
    if a.nchw:
        variants += [("ours float32 NCHW", lambda e: ours("float32", "nchw", e)),
                     ("ours bfloat16 NCHW", lambda e: ours("bfloat16", "nchw", e))]
    variants += [("PyTorch float32 NCHW", lambda e: torch("float32", "nchw", e)),
                 ("PyTorch float32 channels-last", lambda e: torch("float32", "channels_last", e)),
                 ("PyTorch bfloat16 NCHW", lambda e: torch("bfloat16", "nchw", e)),
                 ("PyTorch bfloat16 channels-last", lambda e: torch("bfloat16", "channels_last", e))]
    if a.bf16_only:
        variants = [v for v in variants if "bfloat16" in v[0]]
    variants = [(name, lambda run=run: run(env)) for name, run in variants] + (
        [(name + ", default wait", lambda run=run: run(default_env)) for name, run in variants]
        if a.wait_policy == "both" else [])
    print(f"load average before: {os.getloadavg()}", flush=True)
    times = {name: [] for name, _ in variants}
    for r in range(a.rounds):
        for name, run in variants:
            times[name].append(run())
            print(f"round {r + 1} {name}: {times[name][-1]:.3f} s", flush=True)
    print(f"load average after: {os.getloadavg()}")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{a.net} training step, batch {a.batch}, {a.threads} threads, median of {a.rounds} rounds x "
          f"{a.iterations} steps\n")
    best = min(v for k, v in med.items() if k.startswith("PyTorch bfloat16"))
    print("| variant | s per step | PyTorch bf16 NCHW / this | PyTorch bf16 channels-last / this | PyTorch's fastest bf16 / this |")
    print("|---|---|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.3f} | {med['PyTorch bfloat16 NCHW'] / v:.2f} | "
              f"{med['PyTorch bfloat16 channels-last'] / v:.2f} | {best / v:.2f} |")


if __name__ == "__main__":
    main()
