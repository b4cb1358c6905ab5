"""Samplers against exact enumeration, within statistical error."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import random_model
from isingaug.errors import ConfigError
from isingaug.ising import exact_statistics, moments
from isingaug.sampling import (
    McmcSettings,
    exact_sample,
    integrated_autocorrelation_time,
    mcmc_sample,
    run_sweeps,
)


def assert_moments_close(samples, params, tau: float = 1.0, z: float = 5.0):
    """Max deviation of <s_i> and <s_i s_j> within z standard errors (inflated by tau)."""
    stats = exact_statistics(params)
    first, second = moments(samples)
    num = samples.shape[0]
    sd_first = torch.sqrt((1 - stats.first**2).clamp(min=1e-3) * tau / num)
    sd_second = torch.sqrt((1 - stats.second**2).clamp(min=1e-3) * tau / num)
    off = ~torch.eye(params.n, dtype=torch.bool)
    assert ((first - stats.first).abs() / sd_first).max() < z
    assert ((second - stats.second).abs() / sd_second)[off].max() < z


def test_exact_sampler_matches_enumeration():
    params = random_model(10, g=1.0, seed=0)
    gen = torch.Generator().manual_seed(0)
    samples = exact_sample(params, 50_000, gen, chunk=100)
    assert samples.shape == (50_000, 10)
    assert set(samples.unique().tolist()) == {-1.0, 1.0}
    assert_moments_close(samples, params)


@pytest.mark.parametrize("rule", ["heat_bath", "metropolis"])
@pytest.mark.parametrize("tempering", [False, True])
def test_mcmc_matches_enumeration(rule, tempering):
    params = random_model(12, g=1.0, seed=1)
    gen = torch.Generator().manual_seed(1)
    settings = McmcSettings(chains=4000, burn_in=200, thin=5, rule=rule,
                            parallel_tempering=tempering, pt_replicas=4, pt_beta_min=0.5)
    result = mcmc_sample(params, 20_000, settings, gen)
    assert result.samples.shape == (20_000, 12)
    tau = result.diagnostics["tau_int_energy"]
    assert 0.5 < tau < 20
    assert_moments_close(result.samples.double(), params, tau=max(tau, 1.0))
    if tempering:
        assert all(0 < rate <= 1 for rate in result.diagnostics["pt_swap_rates"])
    if rule == "metropolis":
        assert 0 < result.diagnostics["acceptance"] < 1


def test_a_wrong_model_is_detected():
    """The moment check has power: samples of another model fail it."""
    params = random_model(10, g=1.0, seed=2)
    other = random_model(10, g=1.0, seed=3)
    samples = exact_sample(other, 20_000, torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError):
        assert_moments_close(samples, params)


def test_same_seed_same_samples():
    params = random_model(8, seed=4)
    settings = McmcSettings(chains=50, burn_in=20, thin=2)
    a = mcmc_sample(params, 200, settings, torch.Generator().manual_seed(9)).samples
    b = mcmc_sample(params, 200, settings, torch.Generator().manual_seed(9)).samples
    c = mcmc_sample(params, 200, settings, torch.Generator().manual_seed(10)).samples
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_autocorrelation_time_of_an_ar1_process():
    phi, length, chains = 0.8, 20_000, 16
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(length, chains, generator=gen, dtype=torch.float64)
    x = torch.zeros(length, chains, dtype=torch.float64)
    for t in range(1, length):
        x[t] = phi * x[t - 1] + noise[t]
    expected = (1 + phi) / (1 - phi)
    assert math.isclose(integrated_autocorrelation_time(x), expected, rel_tol=0.1)


def test_short_burn_in_is_reported():
    params = random_model(10, g=1.0, seed=5)
    result = mcmc_sample(params, 100, McmcSettings(chains=100, burn_in=4, thin=1),
                         torch.Generator().manual_seed(0))
    assert any("burn_in" in w for w in result.diagnostics["warnings"])


def test_run_sweeps_leaves_its_input_alone_and_checks_the_rule():
    params = random_model(6, seed=6)
    chains = torch.ones(10, 6)
    out = run_sweeps(params, chains, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(chains, torch.ones(10, 6)) and not torch.equal(out, chains)
    with pytest.raises(ConfigError, match=r"sampler\.rule must be one of"):
        run_sweeps(params, chains, 1, rule="glauber")
    with pytest.raises(ConfigError, match=r"sampler\.thin must be >= 1"):
        McmcSettings(thin=0)
