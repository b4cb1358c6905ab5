"""Scaling: how the costs grow with n and M, on log-log axes with fitted slopes.

Run: .venv/bin/python -m benchmarks scaling [--quick] [--device cpu|cuda] [--threads N]

Series (each a panel of results/scaling.png, its slope the least-squares fit of log cost on
log size over all points and over the two largest, the asymptotic regime):
- MCMC sweep vs n: seconds per sweep of 10,000 chains (SweepKernel, heat-bath, float32); the
  fields' 2 n^2 FLOPs per chain make the slope tend to 2 once they outweigh the O(n) per-site
  work (random numbers, signs).
- MCMC sampling vs M: mcmc_sample's seconds for M patterns at n = 40 with the sk dataset's
  default settings (1,000 chains, 1,000 sweeps burn-in, 10 between samples): slope -> 1 once the
  sampling sweeps outnumber the burn-in.
- PLM objective + gradient vs n (M = 10,000) and vs M (n = 100): expected slopes 2 and 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import torch

from benchmarks.common import (
    RESULTS,
    group_parser,
    log_log_slope,
    machine,
    now,
    parse_group_args,
    shown_path,
    table,
    write_results,
)
from benchmarks.roofline import mcmc_row, plm_row
from benchmarks.samplers import sk_model
from isingaug.device import resolve_device
from isingaug.sampling import McmcSettings, mcmc_sample

FULL = {"sweep_ns": [20, 40, 100, 200, 500], "sweep_chains": 10_000,
        "sample_Ms": [4_000, 16_000, 64_000, 256_000], "sample_n": 40,
        "plm_ns": [25, 50, 100, 200], "plm_M": 10_000, "plm_Ms": [3_000, 10_000, 30_000, 100_000],
        "plm_n": 100}
QUICK = {"sweep_ns": [20, 40, 100, 200], "sweep_chains": 10_000,
         "sample_Ms": [2_000, 8_000, 32_000], "sample_n": 40,
         "plm_ns": [25, 50, 100], "plm_M": 5_000, "plm_Ms": [2_000, 8_000, 32_000], "plm_n": 50}
SERIES = {
    "mcmc_sweep_vs_n": ("n", "seconds per sweep (10^4 chains)"),
    "mcmc_sample_vs_M": ("M", "seconds to sample M patterns (n = 40)"),
    "plm_vs_n": ("n", "seconds per PLM objective + gradient"),
    "plm_vs_M": ("M", "seconds per PLM objective + gradient"),
}


def sample_row(n: int, M: int, device: torch.device) -> dict[str, Any]:
    params = sk_model(n, device=device)
    start = now()
    result = mcmc_sample(params, M, McmcSettings(), torch.Generator(device=device).manual_seed(0))
    return {"series": "mcmc_sample_vs_M", "n": n, "M": M, "seconds": now() - start,
            "sweeps": result.diagnostics["sweeps"]}


def figure(rows: list[dict[str, Any]], slopes: dict[str, dict[str, float]], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(2, 2, figsize=(9, 7))
    for ax, (series, (x_key, label)) in zip(axes.flat, SERIES.items(), strict=True):
        points = [(r[x_key], r["seconds"]) for r in rows if r["series"] == series]
        if points:
            xs, ys = zip(*points, strict=True)
            fit = slopes[series]
            ax.loglog(xs, ys, "o-", label=f"slope {fit['all']:.2f} (last two {fit['tail']:.2f})")
            ax.legend(fontsize=8)
        ax.set_xlabel(x_key)
        ax.set_ylabel(label, fontsize=8)
        ax.set_title(series.replace("_", " "))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(quick: bool = False, device: str = "auto") -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    dev = resolve_device(device)
    info = machine(str(dev))
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    for n in sizes["sweep_ns"]:
        add({"series": "mcmc_sweep_vs_n", **mcmc_row(n, sizes["sweep_chains"], dev)})
    for M in sizes["sample_Ms"]:
        add(sample_row(sizes["sample_n"], M, dev))
    for n in sizes["plm_ns"]:
        add({"series": "plm_vs_n", **plm_row(n, sizes["plm_M"], torch.float64, dev),
             "M": sizes["plm_M"]})
    for M in sizes["plm_Ms"]:
        add({"series": "plm_vs_M", **plm_row(sizes["plm_n"], M, torch.float64, dev), "M": M})
    slopes = {}
    for series, (x_key, _) in SERIES.items():
        chosen = sorted((r for r in rows if r["series"] == series), key=lambda r: r[x_key])
        xs, ys = [r[x_key] for r in chosen], [r["seconds"] for r in chosen]
        slopes[series] = {"all": log_log_slope(xs, ys), "tail": log_log_slope(xs[-2:], ys[-2:])}
    print(table(rows, ["series", "n", "M", "seconds", "gflops", "sweeps"]))
    print()
    print(table([{"series": k, "slope": v["all"], "slope_last_two": v["tail"]}
                 for k, v in slopes.items()], ["series", "slope", "slope_last_two"]))
    png = RESULTS / f"scaling{'-quick' if quick else ''}.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure(rows, slopes, png)
    path = write_results("scaling", quick, {**sizes, "device": str(dev)}, rows, info,
                         {"slopes": slopes, "figure": png.name})
    print(f"\nwrote {shown_path(path)} and {shown_path(png)}")
    return {"rows": rows, "slopes": slopes, "path": path}


def main(argv: list[str] | None = None) -> None:
    parser = group_parser(__doc__)
    args = parse_group_args(parser, argv)
    run(args.quick, args.device)


if __name__ == "__main__":
    main()
