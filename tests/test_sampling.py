"""Samplers against exact enumeration, within statistical error."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import random_model
from isingaug import sampling
from isingaug.errors import ConfigError
from isingaug.ising import energy, exact_statistics, moments
from isingaug.sampling import (
    McmcSettings,
    SweepKernel,
    Uniforms,
    exact_sample,
    integrated_autocorrelation_time,
    mcmc_sample,
    mcmc_sweep,
    run_sweeps,
    slot_betas,
    swap_temperatures,
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
@pytest.mark.parametrize(("tempering", "block"), [(False, None), (True, None), (True, 5)])
def test_mcmc_matches_enumeration(rule, tempering, block):
    """block=None is one block at n = 12; block=5 crosses block boundaries (5 + 5 + 2)."""
    params = random_model(12, g=1.0, seed=1)
    gen = torch.Generator().manual_seed(1)
    settings = McmcSettings(chains=4000, burn_in=200, thin=5, rule=rule,
                            parallel_tempering=tempering, pt_replicas=4, pt_beta_min=0.5)
    result = mcmc_sample(params, 20_000, settings, gen, block=block)
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
    out = run_sweeps(params, chains, 3, rng=torch.Generator().manual_seed(0))
    assert torch.equal(chains, torch.ones(10, 6)) and not torch.equal(out, chains)
    with pytest.raises(ConfigError, match=r"sampler\.rule must be one of"):
        run_sweeps(params, chains, 1, rule="glauber")
    with pytest.raises(ConfigError, match=r"sampler\.thin must be >= 1"):
        McmcSettings(thin=0)
    with pytest.raises(ConfigError, match=r"sampler\.dtype must be one of .*float64"):
        McmcSettings(dtype="float16")
    result = mcmc_sample(params, 40, McmcSettings(chains=20, burn_in=5, thin=1, dtype="float64"),
                         torch.Generator().manual_seed(0))
    assert result.samples.dtype == torch.float64


class _TiledUniforms:
    """Hands the kernel the thresholds of preset uniforms (n, C) in the order it asks: tile by
    tile (`tile` chains each), a tile's sites (all of them, or a block at a time) in order."""

    def __init__(self, values: torch.Tensor, tile: int) -> None:
        self.values, self.tile, self.row, self.column = values, tile, 0, 0

    def logits_(self, out: torch.Tensor) -> torch.Tensor:
        return torch.logit(self._next(out), out=out)

    def logs_(self, out: torch.Tensor) -> torch.Tensor:
        return torch.log(self._next(out), out=out)

    def _next(self, out: torch.Tensor) -> torch.Tensor:
        rows, width = out.shape
        out.copy_(self.values[self.row:self.row + rows, self.column:self.column + width])
        self.row += rows
        if self.row == self.values.shape[0]:
            self.row, self.column = 0, self.column + width
        return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_thresholds_are_logs_of_uniforms(dtype):
    """logit(u) and log(u) of the CPU stream: u back from them is uniform on (0, 1) (moments and
    the largest gap of the empirical CDF), never 0 or 1, from odd numerators a < 2^b exact in the
    float type; a seed gives the same draws and the next draw differs."""
    bits = 24 if dtype == torch.float32 else 53
    draws = {}
    for rule in ("logits_", "logs_"):
        stream = Uniforms(torch.Generator().manual_seed(4), torch.device("cpu"))
        first = getattr(stream, rule)(torch.empty(7, 30_001, dtype=dtype)).clone()
        second = getattr(stream, rule)(torch.empty(7, 30_001, dtype=dtype))
        again = getattr(Uniforms(torch.Generator().manual_seed(4), torch.device("cpu")), rule)(
            torch.empty(7, 30_001, dtype=dtype))
        assert torch.equal(first, again) and not torch.equal(first, second)
        u = (torch.sigmoid(first.double()) if rule == "logits_" else first.double().exp()).ravel()
        assert bool(((u > 0) & (u < 1)).all())
        assert abs(float(u.mean()) - 0.5) < 0.003 and abs(float(u.var()) - 1 / 12) < 0.002
        cdf_gap = (u.sort().values - torch.arange(1, u.numel() + 1, dtype=torch.float64)
                   / u.numel()).abs().max()
        assert float(cdf_gap) < 0.01
        draws[rule] = u
    assert torch.allclose(draws["logits_"], draws["logs_"], rtol=1e-5)
    numerators = torch.from_numpy(stream._odd_numerators(torch.empty(50_000, dtype=dtype))[0])
    assert bool((numerators % 2 == 1).all()) and bool((numerators < 2.0**bits).all())
    assert float(numerators.max()) > 0.99 * 2.0**bits  # the top bits are used


def reference_sweep(params, sites, uniform, rule, beta):
    """The textbook sequential single-site sweep, one site at a time, fields recomputed."""
    for i in range(params.n):
        field_i = params.h[i] + params.J[i] @ sites
        if rule == "heat_bath":
            sites[i] = torch.where(uniform[i] < torch.sigmoid(2 * beta * field_i), 1.0, -1.0)
        else:
            flip = uniform[i] < torch.exp(-2 * beta * sites[i] * field_i)
            sites[i] = torch.where(flip, -sites[i], sites[i])


@pytest.mark.parametrize("rule", ["heat_bath", "metropolis"])
@pytest.mark.parametrize(("block", "tile"), [(1, None), (3, None), (4, 70), (10, 128)])
def test_blocked_sweep_equals_the_textbook_sweep(rule, block, tile):
    """Same uniforms in, same chains out, for blocks that divide n, do not, and cover it, in one
    tile of chains or several (uneven) tiles."""
    n, chains = 10, 301
    params = random_model(n, g=1.5, seed=11)
    gen = torch.Generator().manual_seed(3)
    beta = torch.rand(chains, generator=gen, dtype=torch.float64) + 0.3
    start = torch.where(torch.rand(n, chains, generator=gen) < 0.5, 1.0, -1.0).double()
    kernel = SweepKernel(params, chains, rule, torch.float64, block=block, tile=tile)
    kernel.load(start).set_beta(beta)
    expected = start.clone()
    for _ in range(4):
        uniform = torch.rand(n, chains, generator=gen, dtype=torch.float64)
        before = kernel.spins()
        flips = kernel.sweep(_TiledUniforms(uniform, kernel.tile))
        reference_sweep(params, expected, uniform, rule, beta)
        assert torch.equal(kernel.spins(), expected)
        if rule == "metropolis":
            assert torch.equal(flips, (before != expected).sum(0).double())
        else:
            assert flips is None
    assert torch.allclose(kernel.energies(), energy(params, expected.T))


def test_kernel_energies_and_mcmc_sweep():
    params = random_model(7, seed=12)
    gen = torch.Generator().manual_seed(0)
    sites = torch.where(torch.rand(7, 50, generator=gen) < 0.5, 1.0, -1.0).double()
    kernel = SweepKernel(params, 50, dtype=torch.float64, tile=16).load(sites)
    assert torch.equal(kernel.spins(), sites) and torch.equal(kernel.spins(5), sites[:, :5])
    assert torch.equal(kernel.spins(torch.tensor([3, 40])), sites[:, [3, 40]])
    assert torch.allclose(kernel.energies(), energy(params, sites.T))
    assert torch.allclose(kernel.energies(20), energy(params, sites[:, :20].T))
    accepted = mcmc_sweep(params, sites, "metropolis", gen)
    assert accepted.shape == (50,) and (accepted > 0).any() and (accepted <= 7).all()
    assert set(sites.unique().tolist()) == {-1.0, 1.0}


def test_temperature_swaps_by_hand():
    """Equal temperatures accept every exchange; the slots' temperatures follow the order."""
    betas = torch.ones(4, dtype=torch.float64)
    order = torch.arange(4)[:, None].repeat(1, 3)
    energies = torch.randn(4, 3, dtype=torch.float64)
    pairs, accept = swap_temperatures(order, energies, betas, 1)
    assert pairs.tolist() == [1] and accept.all()
    assert order[:, 0].tolist() == [0, 2, 1, 3]
    ladder = torch.tensor([1.0, 0.5, 0.25, 0.125], dtype=torch.float64)
    slot = slot_betas(order, ladder)
    assert slot[:, 0].tolist() == [1.0, 0.25, 0.5, 0.125]
    # a huge energy gap the wrong way is never accepted
    energies = torch.tensor([[-100.0], [100.0]], dtype=torch.float64)
    order = torch.arange(2)[:, None]
    _, accept = swap_temperatures(order, energies, ladder[:2], 0)
    assert not accept.any() and order[:, 0].tolist() == [0, 1]


def test_exact_sampler_in_small_draw_chunks(monkeypatch):
    monkeypatch.setattr(sampling, "EXACT_DRAW_CHUNK", 7)
    params = random_model(9, g=1.0, seed=13)
    samples = exact_sample(params, 30_000, torch.Generator().manual_seed(0), chunk=64)
    assert samples.shape == (30_000, 9)
    assert_moments_close(samples, params)


def test_same_seed_same_tempered_chains():
    params = random_model(8, g=1.5, seed=14)
    settings = McmcSettings(chains=40, burn_in=10, thin=2, parallel_tempering=True,
                            pt_replicas=3, pt_beta_min=0.5)
    a = mcmc_sample(params, 100, settings, torch.Generator().manual_seed(2), block=3)
    b = mcmc_sample(params, 100, settings, torch.Generator().manual_seed(2), block=3)
    assert torch.equal(a.samples, b.samples)
    assert a.diagnostics["pt_swap_rates"] == b.diagnostics["pt_swap_rates"]
