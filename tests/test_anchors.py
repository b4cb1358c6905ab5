"""Longer checks against the measured anchors of docs/science.md (marked slow; CI runs them)."""

from __future__ import annotations

import pytest
import torch

from isingaug.data.sk import make_sk_dataset, sk_truth
from isingaug.ising import exact_statistics, moments
from isingaug.metrics.parameters import parameter_errors
from isingaug.sampling import McmcSettings, mcmc_sample
from isingaug.solvers.mle import MaximumLikelihood
from isingaug.solvers.plm import PseudoLikelihood

pytestmark = pytest.mark.slow


def test_plm_is_near_exact_ml_at_the_n20_anchor(tmp_path):
    """n=20, g=1, M=4000: exact ML is the floor (~1e-3); PLM within a few % of it."""
    data = make_sk_dataset(n=20, g=1.0, M=4000, M_test=0, data_seed=0,
                           sampler={"kind": "exact"}, cache_dir=str(tmp_path), device="cpu")
    plm, mle = PseudoLikelihood(device="cpu"), MaximumLikelihood(device="cpu")
    err_plm = parameter_errors(plm.fit(data.train), data.truth)["mse_J"]
    err_mle = parameter_errors(mle.fit(data.train), data.truth)["mse_J"]
    assert 5e-4 < err_mle < 3e-3
    assert 0.9 * err_mle < err_plm < 1.15 * err_mle
    assert mle.diagnostics["max_moment_error"] < 1e-6 and mle.diagnostics["converged"]


def test_parallel_tempering_samples_a_glassy_instance_exactly():
    """g=1.6, n=16: PT chains reproduce the enumerated marginals and correlations."""
    truth = sk_truth(16, 1.6, 1.6, 7)
    settings = McmcSettings(chains=2000, burn_in=300, thin=5, parallel_tempering=True,
                            pt_replicas=6, pt_beta_min=0.3)
    result = mcmc_sample(truth, 20_000, settings, torch.Generator().manual_seed(0))
    first, second = moments(result.samples.double())
    stats = exact_statistics(truth)
    assert (first - stats.first).abs().max() < 0.04
    assert (second - stats.second).abs().max() < 0.04


def test_mcmc_data_at_n40_support_accurate_inference(tmp_path):
    """MCMC-sampled n=40 data: PLM's relative error is at the M=4000 sampling level."""
    data = make_sk_dataset(n=40, g=1.0, M=4000, M_test=0, data_seed=1,
                           sampler={"kind": "auto"}, cache_dir=str(tmp_path), device="cpu")
    assert data.meta["sampler"]["kind"] == "mcmc" and not data.meta["sampling"]["warnings"]
    errors = parameter_errors(PseudoLikelihood(device="cpu").fit(data.train), data.truth)
    assert errors["rel_err_J"] < 0.35
