"""The benchmark harness: its references sample correctly, its arithmetic is right, and the
GPU check's CPU path runs (so it cannot rot while no GPU is at hand)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks` lives at the repository's root, beside src/
    sys.path.insert(0, str(ROOT))

from benchmarks import gpu_check, roofline, samplers  # noqa: E402
from benchmarks.common import log_log_slope  # noqa: E402

from conftest import random_model  # noqa: E402
from isingaug.config import compose_config  # noqa: E402
from isingaug.ising import exact_statistics  # noqa: E402


def test_numpy_reference_samples_the_boltzmann_distribution():
    """The speed baseline is a real Metropolis sampler: its time average of s matches <s>."""
    params = random_model(5, g=1.0, seed=21)
    rng = np.random.default_rng(0)
    sweeps = 20_000
    _, total = samplers.numpy_metropolis(params.h.numpy(), params.J.numpy(), sweeps, rng)
    exact = exact_statistics(params).first.numpy()
    assert np.abs(total / sweeps - exact).max() < 0.05  # standard error about 0.01


def test_plain_batched_reference_samples_the_boltzmann_distribution():
    params = random_model(6, g=1.0, seed=22).to(dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    sites = torch.ones(6, 2000)
    for _ in range(50):
        samplers.plain_batched_sweep(params.h, params.J, sites, gen)
    exact = exact_statistics(params.to(dtype=torch.float64)).first
    assert (sites.double().mean(1) - exact).abs().max() < 0.1  # standard error about 0.02


def test_log_log_slope_of_a_power_law():
    xs = [10, 20, 40, 80]
    assert math.isclose(log_log_slope(xs, [3 * x**2 for x in xs]), 2.0)
    assert math.isnan(log_log_slope([10], [1.0]))


def test_denoiser_weight_formula_matches_the_network():
    """roofline's FLOP count for a diffusion step describes the denoiser the code builds."""
    cfg = compose_config(["generator=diffusion"]).generator
    args = (40, list(cfg.encoder_widths), list(cfg.decoder_widths), int(cfg.time_dim))
    assert roofline.denoiser_weights(*args) == roofline.network_weights(*args)


def test_seed_counts_of_a_sweep_spec():
    assert gpu_check._seeds("range(0,10)") == 10
    assert gpu_check._seeds("range(2, 10, 4)") == 2
    assert gpu_check._seeds("0,1,2") == 3


def test_sizes_study_estimate_by_hand():
    """One design point of conf/experiment/sizes.yaml costed by hand from made-up rates."""
    rates = {"steps_per_s": 100.0, "patterns_per_s": 1000.0, "plm_s_per_n2M": 1e-7}
    estimate = gpu_check.estimate_sizes_study(rates)
    study = compose_config(["experiment=sizes"], return_hydra_config=True).hydra.sweeper.params
    assert estimate["designs"] == len(str(study.design).split(","))
    assert estimate["jobs"] == estimate["designs"] * estimate["seeds"]
    cfg = compose_config(["experiment=sizes", "design=n20_M1000"])
    steps, ev = int(cfg.trainer.max_steps), cfg.callbacks.energy_variance
    n, M, M_plus = int(cfg.dataset.n), int(cfg.dataset.M), int(cfg.M_plus)
    expected = (steps / 100.0 + (steps // int(ev.eval_every)) * int(ev.eval_samples) / 1000.0
                + M_plus / 1000.0 + 1e-7 * n * n * (2 * (M + M_plus)))
    point = next(d for d in estimate["per_design"] if d["design"] == "n20_M1000")
    assert math.isclose(point["job_s"], expected)
    total = sum(d["job_s"] for d in estimate["per_design"]) * estimate["seeds"]
    assert math.isclose(estimate["hours"], total / 3600)


def test_gpu_check_mcmc_stage_on_the_cpu():
    sizes = {"mcmc_n": 10, "mcmc_chains": 64, "mcmc_blocks": [2, 4]}
    out = gpu_check.stage_mcmc(sizes, torch.device("cpu"))
    assert out["ok_spins"] and out["samples"] == 5 * 64
    assert out["updates_per_s"] > 0 and out["best_block"] in ("2", "4")


@pytest.mark.slow
def test_gpu_check_cpu_smoke_runs_every_stage(tmp_path):
    """The whole check at its CPU size, as a user runs it (a few minutes on 2 cores)."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--cpu-smoke",
                           "--budget", "1200", "--results-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads((tmp_path / "gpu_check-cpu-smoke.json").read_text())
    stages = payload["stages"]
    assert set(stages) == set(gpu_check.STAGES)
    assert {name: s["status"] for name, s in stages.items()} == dict.fromkeys(stages, "ok")
    assert not stages["generators"]["failed"]
    assert stages["estimate"]["jobs"] > 0 and stages["estimate"]["hours"] > 0
