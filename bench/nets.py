"""Whole-net throughput against PyTorch: eval forward (issue 5) and training step (issue 7), one run.

usage: /usr/bin/python3 bench/nets.py [--mpncov build/mpncov] [--threads 2[,1]] [--rounds 3]
                                      [--iterations 3] [--only NAME,...] [--batch N] [--both-passes | --eval-only]
                                      [--channels-last] [--onednn-only] [--wait-policy passive|default|best]
                                      [--append bench/RESULTS.md]

--batch N replaces every workload's batch size (e.g. 1 for issue 20's small batches); --both-passes times
each selected net in eval forward and training step alike (the default set has each net in one or both),
--eval-only in eval forward only;
--channels-last adds PyTorch + oneDNN on channels-last (NHWC) tensors, issue 20's "better of NCHW and
channels-last"; --onednn-only leaves out PyTorch without oneDNN (slower than with it on this CPU).

Each round runs every workload once on each side, interleaved (ours, PyTorch with oneDNN, PyTorch
without oneDNN, next workload ...); the table shows medians over rounds and speed ratios ours / PyTorch
(above 1: we are faster). Both sides get the same environment: OMP_WAIT_POLICY=PASSIVE (docs/measuring.md:
libgomp spinning against OpenBLAS's pthreads otherwise) and OPENBLAS_CORETYPE set to the kernels
`mpncov` selects for itself on this CPU (core/blas_setup.cpp), so PyTorch's OpenBLAS calls are not left
on the SSE3 fallback (--wait-policy default: OMP_WAIT_POLICY unset on both sides, OpenMP's default of
spinning a while before sleeping: faster for both on a quiet machine, far slower on a loaded one;
--wait-policy best: every measurement under both, interleaved, and each side's faster policy in the
table, docs/measuring.md's fair comparison). PyTorch workers are long-lived processes
(bench/nets_torch.py), one per thread count, oneDNN setting and wait policy; `mpncov time` is a fresh
process per measurement.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (mode, net, batch): issue 5's eval forward set and issue 7's training-step set.
WORKLOADS = [
    ("eval", "resnet50", 8), ("eval", "vgg16", 8), ("eval", "inception_v3", 8), ("eval", "mpncov_resnet50", 8),
    ("train", "resnet18", 8), ("train", "resnet50", 8), ("train", "mpncov_resnet50", 8),
]
TORCH_VARIANTS = [("onednn", "1"), ("no-onednn", "0")]
CHANNELS_LAST = ("onednn-cl", "1")  # --channels-last adds PyTorch + oneDNN on channels-last tensors


def coretype():
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = line
                break
    have = set(flags.split())
    if {"avx512f", "avx512bw", "avx512vl"} <= have:
        return "SkylakeX"
    if {"avx2", "fma"} <= have:
        return "Haswell"
    return None


def ours(binary, mode, name, batch, iterations, threads, env):
    cmd = [binary, "time", name, "--batch", str(batch), "--iterations", str(iterations), "--threads", str(threads)]
    if mode == "eval":
        cmd.append("--inference")
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    # From the milliseconds per batch: the images/s figure is printed to one decimal only.
    pattern = r"inference: ([0-9.]+) ms per batch" if mode == "eval" else r"training step: ([0-9.]+) ms per batch"
    m = re.search(pattern, out)
    if not m:
        raise SystemExit(f"cannot parse the output of {' '.join(cmd)}:\n{out}")
    return batch * 1e3 / float(m.group(1))


class TorchWorker:
    def __init__(self, threads, mkldnn, env, channels_last=False):
        args = [sys.executable, os.path.join(HERE, "nets_torch.py"), str(threads), mkldnn]
        if channels_last:
            args.append("channels_last")
        self.p = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def measure(self, mode, name, batch, iterations):
        self.p.stdin.write(f"{mode} {name} {batch} {iterations}\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit("the PyTorch worker died")
        return float(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpncov", default=os.path.join(ROOT, "build", "mpncov"))
    ap.add_argument("--threads", default="2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated net names")
    ap.add_argument("--batch", type=int, default=0, help="batch size for every workload (default: the list's)")
    ap.add_argument("--both-passes", action="store_true", help="eval forward and training step for every net")
    ap.add_argument("--eval-only", action="store_true", help="eval forward only, for every selected net")
    ap.add_argument("--channels-last", action="store_true", help="also PyTorch + oneDNN on channels-last tensors")
    ap.add_argument("--onednn-only", action="store_true",
                    help="leave out PyTorch without oneDNN (never PyTorch's better side on this CPU)")
    ap.add_argument("--wait-policy", choices=["passive", "default", "best"], default="passive",
                    help="OMP_WAIT_POLICY=PASSIVE (default) or unset, both sides; best: both, each side's faster")
    ap.add_argument("--append", default="", help="append the table to this markdown file")
    a = ap.parse_args()

    # One environment per wait policy measured: P (PASSIVE) and D (unset, OpenMP's default).
    envs = {}
    core = coretype()
    for policy in {"passive": "P", "default": "D", "best": "PD"}[a.wait_policy]:
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        if policy == "D":
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if core and "OPENBLAS_CORETYPE" not in os.environ:
            env["OPENBLAS_CORETYPE"] = core
        envs[policy] = env
    workloads = [w for w in WORKLOADS if not a.only or w[1] in a.only.split(",")]
    if a.both_passes:
        names = list(dict.fromkeys(w[1] for w in workloads))
        workloads = [(mode, name, 8) for name in names for mode in ("eval", "train")]
    if a.eval_only:
        names = list(dict.fromkeys(w[1] for w in workloads))
        workloads = [("eval", name, 8) for name in names]
    if a.batch:
        workloads = [(mode, name, a.batch) for mode, name, _ in workloads]
    thread_counts = [int(t) for t in a.threads.split(",")]
    load_before = os.getloadavg()
    started = time.time()
    # results[(threads, workload, side, policy)] = [images/s per round]
    results = {}
    variants = TORCH_VARIANTS[:1 if a.onednn_only else None] + ([CHANNELS_LAST] if a.channels_last else [])
    for threads in thread_counts:
        workers = {(v, policy): TorchWorker(threads, flag, env, v == CHANNELS_LAST[0])
                   for v, flag in variants for policy, env in envs.items()}
        for r in range(a.rounds):
            for w in workloads:
                mode, name, batch = w
                for policy, env in envs.items():
                    row = {"ours": ours(a.mpncov, mode, name, batch, a.iterations, threads, env)}
                    for v, _ in variants:
                        row[v] = workers[(v, policy)].measure(mode, name, batch, a.iterations)
                    for side, value in row.items():
                        results.setdefault((threads, w, side, policy), []).append(value)
                    print(f"# {threads} thr round {r + 1} {mode} {name} {policy}: " +
                          ", ".join(f"{k} {v:.2f}" for k, v in row.items()), file=sys.stderr, flush=True)
        for worker in workers.values():
            worker.close()
    load_after = os.getloadavg()

    names = {"onednn": "PyTorch oneDNN", "no-onednn": "PyTorch no-oneDNN", "onednn-cl": "PyTorch oneDNN channels-last"}
    sides = [v for v, _ in variants]
    both = len(envs) > 1  # a policy column: each side's faster policy, P (PASSIVE) or D (default)
    lines = ["| pass | net | threads | ours img/s | " + " | ".join(f"{names[v]} img/s" for v in sides) + " | " +
             " | ".join(f"ours/{v}" for v in sides) + (" | policy (ours, " + ", ".join(sides) + ")" if both else "") +
             " |", "|---" * (4 + 2 * len(sides) + both) + "|"]
    for threads in thread_counts:
        for w in workloads:
            mode, name, batch = w
            med, chosen = {}, {}
            for side in ["ours"] + sides:
                by_policy = {p: statistics.median(results[(threads, w, side, p)]) for p in envs}
                chosen[side] = max(by_policy, key=by_policy.get)
                med[side] = by_policy[chosen[side]]
            label = "eval fwd" if mode == "eval" else "train step"
            size = 299 if name == "inception_v3" else 224
            lines.append(f"| {label} | {name} ({batch}x3x{size}x{size}) | {threads} | {med['ours']:.2f} | " +
                         " | ".join(f"{med[v]:.2f}" for v in sides) + " | " +
                         " | ".join(f"{med['ours'] / med[v]:.2f}" for v in sides) +
                         (" | " + ", ".join(chosen[s] for s in ["ours"] + sides) if both else "") + " |")
    env = next(iter(envs.values()))
    policy = {"passive": "PASSIVE", "default": "(unset)", "best": "each side's faster of PASSIVE (P) and unset (D)"}
    info = (f"OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', '(unset)')}, "
            f"OMP_WAIT_POLICY={policy[a.wait_policy]} both sides; "
            f"{a.rounds} rounds x {a.iterations} iterations (after 2 warm-ups), medians; "
            f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
            f"{(time.time() - started) / 60:.1f} min")
    table = "\n".join(lines)
    print(table)
    print(info)
    if a.append:
        cmd = "/usr/bin/python3 bench/nets.py " + " ".join(sys.argv[1:])
        with open(a.append, "a") as f:
            f.write(f"\n{table}\n\n{info}. Command: `{cmd}`\n")


if __name__ == "__main__":
    main()
