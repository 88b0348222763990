#!/usr/bin/env python3
"""Plot a `stereort train` run: train_log.csv (and val_log.csv when present) -> one PNG.

Developer script (matplotlib); the runtime never needs it.

    python3 scripts/plot_training.py runs/train            # writes runs/train/training.png
    python3 scripts/plot_training.py runs/train -o out.png --smooth 50

Panels: total loss and the four per-output smooth-L1 terms (log scale, raw and a moving average), learning rate and
beta1, gradient norm and loss scale, pairs/s; validation EPE / bad-2 / bad-3 when val_log.csv exists. Skipped steps
(non-finite loss or gradient) are marked with red ticks on the loss panel.
"""
import argparse
import csv
import math
import os
import sys


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = {}
    for r in rows:
        for k, v in r.items():
            try:
                x = float(v) if v not in ("", None) else math.nan
            except ValueError:
                x = math.nan
            cols.setdefault(k, []).append(x)
    return cols


def moving_average(xs, n):
    if n <= 1:
        return xs
    out, acc, window = [], 0.0, []
    for x in xs:
        if not math.isfinite(x):
            out.append(math.nan)
            continue
        window.append(x)
        acc += x
        if len(window) > n:
            acc -= window.pop(0)
        out.append(acc / len(window))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="run folder (holding train_log.csv) or the CSV itself")
    ap.add_argument("-o", "--out", help="output PNG (default: <run>/training.png)")
    ap.add_argument("--smooth", type=int, default=20, help="moving-average window in steps (default 20)")
    a = ap.parse_args()

    run = a.run if os.path.isdir(a.run) else os.path.dirname(os.path.abspath(a.run))
    train_csv = os.path.join(run, "train_log.csv") if os.path.isdir(a.run) else a.run
    if not os.path.exists(train_csv):
        sys.exit(f"plot_training: {train_csv} not found (run stereort train --out {run} first)")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_training: matplotlib is not installed (pip install matplotlib)")

    t = read_csv(train_csv)
    steps = t.get("step", [])
    if not steps:
        sys.exit(f"plot_training: {train_csv} holds no steps yet")
    val_csv = os.path.join(run, "val_log.csv")
    v = read_csv(val_csv) if os.path.exists(val_csv) else {}
    has_val = bool(v.get("step"))

    n_panels = 4 + (1 if has_val else 0)
    fig, axes = plt.subplots(n_panels, 1, figsize=(10, 2.6 * n_panels), sharex=True)

    ax = axes[0]
    ax.plot(steps, t["loss"], color="0.75", lw=0.7, label="loss (raw)")
    ax.plot(steps, moving_average(t["loss"], a.smooth), color="k", lw=1.4, label=f"loss (avg {a.smooth})")
    for i, c in enumerate(["tab:blue", "tab:orange", "tab:green", "tab:red"]):
        key = f"loss{i}"
        if key in t:
            ax.plot(steps, moving_average(t[key], a.smooth), color=c, lw=0.9, label=f"output {i}")
    skipped = [s for s, k in zip(steps, t.get("skipped", [])) if k == 1]
    for s in skipped:
        ax.axvline(s, color="red", lw=0.5, alpha=0.6)
    ax.set_yscale("log")
    ax.set_ylabel("smooth-L1")
    ax.set_title(f"{run}  ({len(steps)} steps, {len(skipped)} skipped)")
    ax.legend(fontsize=7, ncol=3)

    ax = axes[1]
    ax.plot(steps, t["lr"], color="tab:purple")
    ax.set_ylabel("lr")
    ax2 = ax.twinx()
    ax2.plot(steps, t["beta1"], color="tab:gray", lw=0.8)
    ax2.set_ylabel("beta1")

    ax = axes[2]
    ax.plot(steps, t["grad_norm"], color="tab:brown", lw=0.7)
    ax.set_yscale("log")
    ax.set_ylabel("grad norm")
    ax2 = ax.twinx()
    ax2.plot(steps, t["loss_scale"], color="tab:cyan", lw=0.8)
    ax2.set_yscale("log")
    ax2.set_ylabel("loss scale")

    ax = axes[3]
    ax.plot(steps, t["pairs_per_s"], color="0.6", lw=0.6)
    ax.plot(steps, moving_average(t["pairs_per_s"], a.smooth), color="tab:green")
    ax.set_ylabel("pairs/s")

    if has_val:
        ax = axes[4]
        ax.plot(v["step"], v["epe"], "o-", color="k", label="EPE (px)")
        ax.set_ylabel("EPE (px)")
        ax2 = ax.twinx()
        ax2.plot(v["step"], [100 * x for x in v["bad2"]], "s--", color="tab:orange", label="bad-2 %")
        ax2.plot(v["step"], [100 * x for x in v["bad3"]], "^--", color="tab:red", label="bad-3 %")
        ax2.set_ylabel("bad-N (%)")
        ax2.legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    out = a.out or os.path.join(run, "training.png")
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
