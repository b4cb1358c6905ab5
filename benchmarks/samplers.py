"""Sampler speed: spin updates per second of the batched MCMC kernel against references, and
exact sampling by enumeration; the memory of a large draw.

Run: .venv/bin/python -m benchmarks samplers [--quick] [--device cpu|cuda] [--threads N]

Rows (results/samplers.json):
- `numpy_reference`: a plain single-chain Metropolis sampler in NumPy (one Python step per site,
  the local field recomputed as a length-n dot product): the baseline the speed target is
  measured against.
- `plain_batched`: the previous kernel's algorithm (one batched matrix-vector product and a few
  element-wise operations per site, every chain at once), kept here to compare against.
- `blocked`: isingaug.sampling.SweepKernel, the kernel mcmc_sample uses.
- `exact`: isingaug.sampling.exact_sample, patterns per second (each pattern independent).
- `pt`: mcmc_sample with parallel tempering (8 replicas), sweeps per second of the whole sampler.
- `memory`: peak resident memory of draw_samples for M = 300,000 patterns at n = 60 (MCMC, the
  sk dataset's default sampler settings), in a fresh process.
A spin update is one single-site step of one chain; FLOP/s counts the 2 n^2 per chain per sweep of
the n local fields (roofline.py divides it by the measured matmul peak).
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from benchmarks.common import (
    PEAK_HOOK,
    ROOT,
    best_time,
    group_parser,
    machine,
    now,
    parse_group_args,
    run_and_measure,
    shown_path,
    table,
    write_results,
)
from isingaug.device import resolve_device
from isingaug.ising import IsingParams
from isingaug.sampling import (
    McmcSettings,
    SweepKernel,
    Uniforms,
    draw_samples,
    exact_sample,
    mcmc_sample,
    resolve_sampler,
)

FULL = {"ns": [20, 40, 100, 200, 500], "chains": [100, 1000, 10_000, 100_000],
        "exact_ns": [12, 16, 20], "max_work": 5e7}
QUICK = {"ns": [20, 40, 100], "chains": [100, 1000, 10_000], "exact_ns": [12, 16],
         "max_work": 2e6}
#: n and M of the memory check (the sizes study's largest draw).
MEMORY_N, MEMORY_M = 60, 300_000


def sk_model(n: int, g: float = 1.0, seed: int = 0, dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> IsingParams:
    """An SK instance, J_ij ~ N(0, g^2/n), h_i ~ N(0, g^2/n)."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.normal(0.0, g / math.sqrt(n), (n, n)), 1)
    h = rng.normal(0.0, g / math.sqrt(n), n)
    return IsingParams.from_numpy(h, upper + upper.T, dtype=dtype, device=device)


def numpy_metropolis(h: np.ndarray, J: np.ndarray, sweeps: int, rng: np.random.Generator,
                     spins: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The reference: one chain, sequential sites, the field recomputed, accept min(1, e^-dE).

    Starts from `spins` (uniformly random when None); returns the last state and the sum of the
    states after each sweep (for a time average).
    """
    n = h.shape[0]
    s = rng.choice(np.array([-1.0, 1.0]), n) if spins is None else spins.astype(float)
    total = np.zeros(n)
    for _ in range(sweeps):
        u = rng.random(n)
        for i in range(n):
            de = 2.0 * s[i] * (h[i] + J[i] @ s)
            if de <= 0.0 or u[i] < math.exp(-de):
                s[i] = -s[i]
        total += s
    return s, total


def plain_batched_sweep(h: Tensor, J: Tensor, sites: Tensor, generator: torch.Generator) -> None:
    """The previous kernel: per site one (n x C) matrix-vector product, a sigmoid and a where."""
    uniform = torch.rand(sites.shape, generator=generator, device=sites.device,
                         dtype=sites.dtype)
    for i in range(h.shape[0]):
        field_i = h[i] + J[i] @ sites
        sites[i] = torch.where(uniform[i] < torch.sigmoid(2.0 * field_i), 1.0, -1.0)



def numpy_row(n: int) -> dict[str, Any]:
    params = sk_model(n, dtype=torch.float64)
    h, J = params.h.numpy(), params.J.numpy()
    sweeps = max(3, int(4e4 / n))
    seconds = best_time(lambda: numpy_metropolis(h, J, sweeps, np.random.default_rng(0)), 2)
    rate = sweeps * n / seconds
    return {"kind": "numpy_reference", "rule": "metropolis", "n": n, "chains": 1,
            "sweeps_per_s": sweeps / seconds, "updates_per_s": rate,
            "gflops": 2.0 * n * rate / 1e9}


def kernel_row(n: int, chains: int, rule: str, device: torch.device,
               block: int | None = None) -> dict[str, Any]:
    params = sk_model(n, device=device)
    kernel = SweepKernel(params, chains, rule, block=block)
    gen = torch.Generator(device=device).manual_seed(0)
    kernel.load(torch.where(torch.rand(n, chains, generator=gen, device=device) < 0.5, 1.0, -1.0))
    uniforms = Uniforms(gen, device)
    sweeps = max(1, int(2e6 / (n * chains)))

    def run() -> None:
        for _ in range(sweeps):
            kernel.sweep(uniforms)

    seconds = best_time(run, 3, device, min_seconds=2.0) / sweeps
    rate = n * chains / seconds
    return {"kind": "blocked", "rule": rule, "n": n, "chains": chains, "block": kernel.block,
            "sweeps_per_s": 1.0 / seconds, "updates_per_s": rate, "gflops": 2.0 * n * rate / 1e9}


def plain_row(n: int, chains: int, device: torch.device) -> dict[str, Any]:
    params = sk_model(n, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    sites = torch.where(torch.rand(n, chains, generator=gen, device=device) < 0.5, 1.0, -1.0)
    sweeps = max(1, int(5e5 / (n * chains)))

    def run() -> None:
        for _ in range(sweeps):
            plain_batched_sweep(params.h, params.J, sites, gen)

    seconds = best_time(run, 3, device, min_seconds=2.0) / sweeps
    rate = n * chains / seconds
    return {"kind": "plain_batched", "rule": "heat_bath", "n": n, "chains": chains,
            "sweeps_per_s": 1.0 / seconds, "updates_per_s": rate, "gflops": 2.0 * n * rate / 1e9}


def exact_row(n: int, device: torch.device, num: int = 100_000) -> dict[str, Any]:
    params = sk_model(n, dtype=torch.float64, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    seconds = best_time(lambda: exact_sample(params, num, gen), 2, device)
    return {"kind": "exact", "n": n, "samples": num, "seconds": seconds,
            "patterns_per_s": num / seconds}


def pt_row(n: int, chains: int, device: torch.device, sweeps: int) -> dict[str, Any]:
    params = sk_model(n, g=1.5, device=device)
    settings = McmcSettings(chains=chains, burn_in=sweeps - 1, thin=1, parallel_tempering=True)
    start = now()
    result = mcmc_sample(params, chains, settings, torch.Generator(device=device).manual_seed(0))
    rate = sweeps / (now() - start)
    return {"kind": "pt", "rule": "heat_bath", "n": n, "chains": chains,
            "replicas": settings.pt_replicas, "sweeps_per_s": rate,
            "updates_per_s": rate * n * chains * settings.pt_replicas,
            "swap_rates": [round(r, 3) for r in result.diagnostics["pt_swap_rates"]]}


def memory_child(device: str) -> None:
    """In a fresh process: draw MEMORY_M patterns at n = MEMORY_N as the sk dataset would."""
    dev = resolve_device(device)
    params = sk_model(MEMORY_N, device=dev)
    spec = resolve_sampler({"kind": "auto"}, MEMORY_N, 1.0, "dataset")
    start = time.perf_counter()
    samples, diagnostics = draw_samples(params, MEMORY_M, spec,
                                        torch.Generator(device=dev).manual_seed(0))
    print(json.dumps({"seconds": time.perf_counter() - start, "shape": list(samples.shape),
                      "sweeps": diagnostics["sweeps"]}))


def memory_row(device: str, threads: int) -> dict[str, Any]:
    code = PEAK_HOOK + (f"import torch; torch.set_num_threads({threads})\n"
                        f"from benchmarks.samplers import memory_child; memory_child({device!r})")
    measured = run_and_measure([sys.executable, "-c", code], cwd=ROOT)
    if measured["returncode"] != 0:
        raise RuntimeError(f"memory check failed:\n{measured['output_tail']}")
    child = json.loads(measured["output_tail"].strip().splitlines()[-1])
    return {"kind": "memory", "n": MEMORY_N, "samples": MEMORY_M, "seconds": child["seconds"],
            "sweeps": child["sweeps"], "peak_rss_mib": measured["peak_rss_mib"],
            "cuda_peak_mib": measured["cuda_peak_mib"]}


def run(quick: bool = False, device: str = "auto") -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    dev = resolve_device(device)
    info = machine(str(dev))
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    reference = {}
    for n in sizes["ns"]:
        reference[n] = numpy_row(n)
        add(reference[n])
    for n in sizes["ns"]:
        for chains in sizes["chains"]:
            if n * chains <= sizes["max_work"] * (10 if n >= 100 else 1):
                add(kernel_row(n, chains, "heat_bath", dev))
    for chains in sizes["chains"][1:3]:
        add(kernel_row(40, chains, "metropolis", dev))
        add(plain_row(40, chains, dev))
    add(plain_row(100, sizes["chains"][2], dev))
    for n in sizes["exact_ns"]:
        add(exact_row(n, dev))
    add(pt_row(40, 1000, dev, 20 if quick else 100))
    if not quick:
        add(memory_row(device, torch.get_num_threads()))
    for row in rows:
        if "updates_per_s" in row and row["n"] in reference:
            row["vs_numpy"] = row["updates_per_s"] / reference[row["n"]]["updates_per_s"]
    print(table([r for r in rows if "updates_per_s" in r],
                ["kind", "rule", "n", "chains", "block", "sweeps_per_s", "updates_per_s",
                 "vs_numpy", "gflops"]))
    others = [r for r in rows if "updates_per_s" not in r]
    print()
    print(table(others, ["kind", "n", "samples", "seconds", "patterns_per_s", "sweeps",
                         "peak_rss_mib"]))
    path = write_results("samplers", quick, {**sizes, "device": str(dev)}, rows, info)
    print(f"\nwrote {shown_path(path)}")
    return {"rows": rows, "path": path}


def main(argv: list[str] | None = None) -> None:
    parser = group_parser(__doc__)
    args = parse_group_args(parser, argv)
    run(args.quick, args.device)


if __name__ == "__main__":
    main()
