"""The summary of scripts/gpu-check.sh: stage verdicts and the benchmark figures as ratios, in markdown.

usage: summarize.py STATUS_TSV RESULTS_TXT [DRY=0|1]
       summarize.py --compare-metrics CPU_METRICS_CSV GPU_METRICS_CSV TOLERANCE
The first reads the stages' verdicts (name, status, seconds, note; tab-separated) and the "RESULT kind k=v ..."
lines; the second compares the loss columns of two training runs' metrics.csv (exit 1 when they differ by more
than TOLERANCE relative). Standard library only: any python3 runs it.
"""
import csv
import sys


def parse_results(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or parts[0] != "RESULT":
                continue
            row = {"kind": parts[1]}
            for p in parts[2:]:
                if "=" in p:
                    k, v = p.split("=", 1)
                    row[k] = v
            rows.append(row)
    return rows


def num(row, key):
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return None


def fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def summary(status_path, results_path, dry):
    out = []
    title = "mpncov GPU check" + (" (DRY RUN on the CPU: figures are not GPU figures)" if dry else "")
    out += [f"## {title}", "", "| stage | status | s | note |", "|---|---|---|---|"]
    with open(status_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                note = (parts[3] if len(parts) > 3 else "").replace("|", "/")
                out.append(f"| {parts[0]} | {parts[1]} | {parts[2]} | {note[:90]} |")
    rows = parse_results(results_path)

    rep = [r for r in rows if r["kind"] == "rep"]
    torch_rep = {(r.get("shape"), r.get("variant")): r for r in rows if r["kind"] == "torch_rep"}
    if rep:
        out += ["", "iSQRT-COV layer, forward+backward ms (5 iterations; goal: seed / mpncov >= 3)", "",
                "| shape | mpncov | seed (PyTorch) | autograd (PyTorch) | seed / mpncov | autograd / mpncov |",
                "|---|---|---|---|---|---|"]
        for r in rep:
            ours = num(r, "fwdbwd_s")
            seed = num(torch_rep.get((r.get("shape"), "seed"), {}), "fwdbwd_s")
            auto = num(torch_rep.get((r.get("shape"), "autograd"), {}), "fwdbwd_s")
            ms = lambda v: None if v is None else v * 1e3  # noqa: E731
            out.append(f"| {r.get('shape')} | {fmt(ms(ours), 2)} | {fmt(ms(seed), 2)} | {fmt(ms(auto), 2)} | "
                       f"{ratio(seed, ours)} | {ratio(auto, ours)} |")

    step = [r for r in rows if r["kind"] == "step"]
    torch_step = [r for r in rows if r["kind"] == "torch_step"]
    if step or torch_step:
        out += ["", "Training step, images/s (goal: mpncov / best PyTorch >= 1; mpncov 'tf32' = cuDNN convolutions "
                "in TF32, cuBLAS in FP32; published PyTorch resnet50 TF32 on one H100/H200: about 1750-1900)", "",
                "| net | batch | math | mpncov | PyTorch NCHW | PyTorch channels-last | mpncov / best | "
                "cudaMalloc in timed steps |", "|---|---|---|---|---|---|---|---|"]
        keys = []
        for r in step + torch_step:
            k = (r.get("net", r.get("arch")), r.get("batch"), r.get("math"))
            if k not in keys:
                keys.append(k)
        for net, batch, math in keys:
            ours = next((r for r in step if (r.get("net"), r.get("batch"), r.get("math")) == (net, batch, math)), {})
            theirs = {r.get("layout"): num(r, "images_per_s") for r in torch_step
                      if (r.get("arch"), r.get("batch"), r.get("math")) == (net, batch, math)}
            best = max([v for v in theirs.values() if v is not None], default=None)
            o = num(ours, "images_per_s")
            out.append(f"| {net} | {batch} | {math} | {fmt(o)} | {fmt(theirs.get('nchw'))} | "
                       f"{fmt(theirs.get('nhwc'))} | {ratio(o, best)} | {ours.get('mallocs_timed', '-')} |")

    for r in rows:
        if r["kind"] == "compare":
            out += ["", f"Training on {r.get('device')} against the CPU: {r.get('steps')} steps of {r.get('net')}, "
                    f"largest relative loss difference {r.get('max_rel_diff')} (tolerance {r.get('tolerance')}), "
                    f"{r.get('failed')} steps over"]

    loader = [r for r in rows if r["kind"] == "loader"]
    if loader:
        fastest = max((num(r, "images_per_s") or 0 for r in step if r.get("batch") == "128"), default=None)
        out += ["", "Loader (ImageNet train transform, batch 64), images/s" +
                (f"; the fastest mpncov step at batch 128 eats {fastest:.0f}" if fastest else ""), ""]
        for r in loader:
            rate = num(r, "images_per_s")
            keeps = "" if not fastest or rate is None else (" (keeps up)" if rate >= fastest else " (does NOT keep up)")
            out.append(f"- {r.get('workers')} workers: {fmt(rate, 0)}{keeps}")
    return "\n".join(out) + "\n"


def compare_metrics(cpu_path, gpu_path, tolerance):
    def losses(path):
        with open(path) as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        cols = [c for c in (reader.fieldnames or []) if "loss" in c.lower()]
        return cols, rows

    cols_a, a = losses(cpu_path)
    cols_b, b = losses(gpu_path)
    cols = [c for c in cols_a if c in cols_b]
    if not cols or not a or len(a) != len(b):
        print(f"cannot compare: loss columns {cols_a} / {cols_b}, rows {len(a)} / {len(b)}")
        return 1
    worst = 0.0
    for ra, rb in zip(a, b):
        for c in cols:
            x, y = float(ra[c]), float(rb[c])
            worst = max(worst, abs(x - y) / max(1.0, abs(x)))
    print(f"{len(a)} rows of {', '.join(cols)}: largest relative difference {worst:.2e} (tolerance {tolerance})")
    return 0 if worst <= tolerance else 1


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--compare-metrics":
        sys.exit(compare_metrics(sys.argv[2], sys.argv[3], float(sys.argv[4])))
    dry = len(sys.argv) > 3 and sys.argv[3] == "1"
    sys.stdout.write(summary(sys.argv[1], sys.argv[2], dry))


if __name__ == "__main__":
    main()
