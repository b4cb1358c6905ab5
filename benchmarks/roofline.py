"""Roofline: the machine's measured matmul peak, and what the main kernels achieve against it.

Run: .venv/bin/python -m benchmarks roofline [--quick] [--device cpu|cuda] [--threads N]

Peak: the best FLOP/s of square matrix products (fp32 and fp64; on CUDA with TF32 off, as torch's
default). Kernels, their FLOPs counted analytically (multiply-adds x 2; element-wise work left
out, so the fractions are of useful arithmetic):
- MCMC sweep (isingaug.sampling.SweepKernel, heat-bath, float32): 2 n^2 per chain per sweep, the
  n local fields of a sequential sweep.
- PLM objective + gradient (isingaug.ising.pseudo_log_likelihood under autograd, the definition
  the solvers optimise; float64 as solver=plm's default, and float32): forward M x n by n x n
  (2 M n^2), backward dJ = X^T G (2 M n^2), so 4 M n^2 per evaluation.
- Diffusion training step (the default denoiser, conf/generator/diffusion.yaml, batch 256):
  6 x batch x W, with W the weights of the network's linear layers (2 per weight forward,
  4 backward); time per step from a CLI run's gen/steps_per_second (so it includes Lightning's
  and the optimizer's per-step overhead).
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    best_time,
    group_parser,
    machine,
    parse_group_args,
    shown_path,
    table,
    write_results,
)
from benchmarks.generators import cli_generator_run
from benchmarks.samplers import sk_model
from isingaug.config import compose_config
from isingaug.device import resolve_device
from isingaug.ising import IsingParams, pseudo_log_likelihood
from isingaug.sampling import SweepKernel, Uniforms

FULL = {"matmul": [1024, 2048, 4096], "mcmc": [(40, 10_000), (100, 10_000), (200, 10_000),
                                               (500, 10_000), (100, 100_000)],
        "plm": [(100, 30_000), (200, 30_000)], "diffusion": {"n": 40, "steps": 300}}
QUICK = {"matmul": [1024, 2048], "mcmc": [(40, 10_000), (200, 10_000)],
         "plm": [(100, 10_000)], "diffusion": {"n": 40, "steps": 100}}
CUDA_EXTRA = {"matmul": [8192], "mcmc": [(100, 1_000_000), (500, 100_000)],
              "plm": [(100, 300_000)]}
COLUMNS = ["kernel", "dtype", "n", "size", "seconds", "gflops", "peak_gflops", "fraction"]


def matmul_peak(sizes: list[int], dtype: torch.dtype, device: torch.device) -> list[dict]:
    rows = []
    for size in sizes:
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        seconds = best_time(lambda a=a, b=b: a @ b, 3 if size < 4096 else 2, device)
        rows.append({"kernel": "matmul", "dtype": str(dtype).removeprefix("torch."),
                     "size": size, "seconds": seconds, "gflops": 2 * size**3 / seconds / 1e9})
    return rows


def mcmc_row(n: int, chains: int, device: torch.device) -> dict[str, Any]:
    kernel = SweepKernel(sk_model(n, device=device), chains, "heat_bath")
    uniforms = Uniforms(torch.Generator(device=device).manual_seed(0), device)
    sweeps = max(1, int(4e6 / (n * chains)))

    def run() -> None:
        for _ in range(sweeps):
            kernel.sweep(uniforms)

    seconds = best_time(run, 3, device, min_seconds=3.0) / sweeps
    return {"kernel": "mcmc_sweep", "dtype": "float32", "n": n, "size": chains,
            "block": kernel.block, "tile": kernel.tile, "seconds": seconds,
            "gflops": 2 * n * n * chains / seconds / 1e9}


def plm_row(n: int, M: int, dtype: torch.dtype, device: torch.device) -> dict[str, Any]:
    gen = torch.Generator(device=device).manual_seed(0)
    spins = torch.where(torch.rand(M, n, generator=gen, device=device) < 0.5, 1.0, -1.0)
    spins = spins.to(dtype)
    truth = sk_model(n, dtype=dtype, device=device)
    h = truth.h.clone().requires_grad_(True)
    J = truth.J.clone().requires_grad_(True)

    def objective_and_gradient() -> None:
        h.grad = J.grad = None
        loss = -pseudo_log_likelihood(IsingParams(h, J), spins).mean()
        loss.backward()

    seconds = best_time(objective_and_gradient, 3, device)
    return {"kernel": "plm_objective_gradient", "dtype": str(dtype).removeprefix("torch."),
            "n": n, "size": M, "seconds": seconds, "gflops": 4 * M * n * n / seconds / 1e9}


def denoiser_weights(n: int, encoder: list[int], decoder: list[int], time_dim: int) -> int:
    """Weights of the default denoiser's linear layers (the wiring of
    isingaug.generators.diffusion.Denoiser: a time MLP, encoder and decoder blocks each with a
    time projection, skips from the second decoder layer on, an output layer)."""
    total = 2 * time_dim * time_dim
    for w_in, w_out in itertools.pairwise([n, *encoder]):
        total += (w_in + time_dim) * w_out
    width = encoder[-1]
    for j, w_out in enumerate(decoder):
        mirrored = len(decoder) - 1 - j
        skip = encoder[mirrored] if j >= 1 and mirrored < len(encoder) else 0
        total += (width + skip + time_dim) * w_out
        width = w_out
    return total + width * n


def network_weights(n: int, encoder: list[int], decoder: list[int], time_dim: int) -> int | None:
    """The same count read off the real network, when its class is importable (a check that
    the formula still describes the code); None when it is not."""
    try:
        from isingaug.generators.diffusion import Denoiser

        net = Denoiser(n, encoder, decoder, time_dim)
    except Exception:  # the generators are being refactored; the formula stands alone
        return None
    return sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Linear))


def diffusion_row(n: int, steps: int, device: str, threads: int | None) -> dict[str, Any]:
    cfg = compose_config(["generator=diffusion"]).generator
    encoder, decoder = list(cfg.encoder_widths), list(cfg.decoder_widths)
    batch, time_dim = int(cfg.batch_size), int(cfg.time_dim)
    weights = denoiser_weights(n, encoder, decoder, time_dim)
    actual = network_weights(n, encoder, decoder, time_dim)
    with tempfile.TemporaryDirectory(prefix="isingaug-roofline-") as tmp:
        run = cli_generator_run("diffusion", n, steps, 100, 500, device, Path(tmp) / "runs",
                                Path(tmp) / "cache", threads,
                                extra=["generator.sampler=ddim", "generator.ddim_steps=10"])
    rate = run.get("steps_per_s")
    flops = 6 * batch * (actual or weights)
    return {"kernel": "diffusion_train_step", "dtype": "float32", "n": n, "size": batch,
            "weights_formula": weights, "weights_network": actual,
            "seconds": 1.0 / rate if rate else None,
            "gflops": flops * rate / 1e9 if rate else None, "error": run.get("error")}


def run(quick: bool = False, device: str = "auto", threads: int | None = None) -> dict[str, Any]:
    sizes = {**(QUICK if quick else FULL)}
    dev = resolve_device(device)
    if dev.type == "cuda" and not quick:
        for key, extra in CUDA_EXTRA.items():
            sizes[key] = [*sizes[key], *extra]
    info = machine(str(dev))
    if dev.type == "cuda":
        info["allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    rows: list[dict[str, Any]] = []
    peak = {}
    for dtype in (torch.float32, torch.float64):
        found = matmul_peak(sizes["matmul"], dtype, dev)
        rows += found
        peak[str(dtype).removeprefix("torch.")] = max(r["gflops"] for r in found)
        print(json.dumps(found), file=sys.stderr, flush=True)
    for n, chains in sizes["mcmc"]:
        rows.append(mcmc_row(n, chains, dev))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for n, M in sizes["plm"]:
        for dtype in (torch.float64, torch.float32):
            rows.append(plm_row(n, M, dtype, dev))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    rows.append(diffusion_row(sizes["diffusion"]["n"], sizes["diffusion"]["steps"], str(dev),
                              threads))
    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for row in rows:
        row["peak_gflops"] = peak[row["dtype"]]
        if row.get("gflops"):
            row["fraction"] = row["gflops"] / row["peak_gflops"]
    print(table(rows, COLUMNS))
    path = write_results("roofline", quick, {**sizes, "device": str(dev)}, rows, info,
                         {"peak_gflops": peak})
    print(f"\nwrote {shown_path(path)}")
    return {"rows": rows, "path": path, "peak": peak}


def main(argv: list[str] | None = None) -> None:
    parser = group_parser(__doc__)
    args = parse_group_args(parser, argv)
    run(args.quick, args.device, args.threads)


if __name__ == "__main__":
    main()
