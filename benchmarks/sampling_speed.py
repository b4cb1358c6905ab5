"""Time the SK data samplers: exact enumeration (n <= 20) and batched MCMC (n = 40, 100).

Run: .venv/bin/python benchmarks/sampling_speed.py [--device auto] \
         | tee benchmarks/results/sampling_speed.jsonl
Prints one JSON line per case with seconds, sweeps/s, tau_int(E) and the moment error against
exact enumeration where n allows it.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from isingaug.data.sk import sk_truth
from isingaug.device import resolve_device
from isingaug.ising import exact_statistics, moments
from isingaug.sampling import McmcSettings, exact_sample, mcmc_sample

CASES = [
    {"n": 20, "g": 1.0, "M": 8000, "sampler": "exact"},
    {"n": 20, "g": 1.0, "M": 8000, "sampler": "mcmc"},
    {"n": 40, "g": 1.0, "M": 8000, "sampler": "mcmc"},
    {"n": 100, "g": 1.0, "M": 8000, "sampler": "mcmc"},
    {"n": 40, "g": 1.5, "M": 8000, "sampler": "mcmc_pt"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    for case in CASES:
        truth = sk_truth(case["n"], case["g"], case["g"], 0).to(device)
        gen = torch.Generator(device=device).manual_seed(0)
        start = time.perf_counter()
        row = {**case, "device": str(device), "threads": torch.get_num_threads()}
        if case["sampler"] == "exact":
            samples = exact_sample(truth, case["M"], gen)
        else:
            settings = McmcSettings(parallel_tempering=case["sampler"] == "mcmc_pt")
            result = mcmc_sample(truth, case["M"], settings, gen)
            samples = result.samples
            row.update({k: result.diagnostics[k] for k in
                        ("sweeps", "chains", "tau_int_energy", "sweeps_per_second")})
        row["seconds"] = time.perf_counter() - start
        if case["n"] <= 20:
            stats = exact_statistics(truth)
            first, second = moments(samples.double(), dtype=torch.float64)
            row["max_err_first"] = float((first - stats.first).abs().max())
            row["max_err_second"] = float((second - stats.second).abs().max())
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
