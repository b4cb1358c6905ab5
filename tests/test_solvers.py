"""Inverse solvers against exact answers: small SK models, i.i.d. samples drawn by enumeration."""

from __future__ import annotations

import pytest
import torch

from conftest import random_model
from isingaug.errors import ConfigError
from isingaug.ising import IsingParams, energy, enumerate_states, exact_statistics, moments
from isingaug.solvers.base import Solver
from isingaug.solvers.erasure import ErasureMachine
from isingaug.solvers.mean_field import MeanField
from isingaug.solvers.mle import MaximumLikelihood, flat_moments
from isingaug.solvers.optim import minimize
from isingaug.solvers.plm import PseudoLikelihood
from isingaug.solvers.screening import InteractionScreening

N, M = 10, 4000


def draw_exact(params: IsingParams, num: int, seed: int) -> torch.Tensor:
    """i.i.d. patterns from exp(-E - log Z), every state enumerated."""
    states = torch.cat(list(enumerate_states(params.n)))
    probs = torch.exp(-energy(params, states) - exact_statistics(params).log_z)
    rows = torch.multinomial(probs, num, replacement=True,
                             generator=torch.Generator().manual_seed(seed))
    return states[rows]


def mse_J(estimate: IsingParams, reference: IsingParams) -> float:
    return float((estimate.couplings_upper() - reference.couplings_upper()).pow(2).mean())


def mse_h(estimate: IsingParams, reference: IsingParams) -> float:
    return float((estimate.h - reference.h).pow(2).mean())


@pytest.fixture(scope="module")
def sk():
    """SK at g=1 (the anchor's coupling strength) and M exact samples."""
    truth = random_model(N, g=1.0, seed=11)
    return truth, draw_exact(truth, M, seed=0)


@pytest.fixture(scope="module")
def sk_weak():
    """Weak coupling (g=0.3), where mean-field inversion is accurate."""
    truth = random_model(N, g=0.3, seed=12)
    return truth, draw_exact(truth, 20000, seed=1)


@pytest.fixture(scope="module")
def exact_mle(sk):
    _, spins = sk
    return MaximumLikelihood(device="cpu").fit(spins)


def make(name: str, **options) -> Solver:
    factories = {
        "plm": lambda: PseudoLikelihood(device="cpu", **options),
        "plm_symmetric": lambda: PseudoLikelihood(device="cpu", symmetric=True, **options),
        "mle": lambda: MaximumLikelihood(device="cpu", **options),
        "erasure": lambda: ErasureMachine(device="cpu", **options),
        "logrise": lambda: InteractionScreening(device="cpu", method="logrise", **options),
        "rise": lambda: InteractionScreening(device="cpu", method="rise", **options),
        "naive_mf": lambda: MeanField(device="cpu", method="naive", **options),
        "tap": lambda: MeanField(device="cpu", method="tap", **options),
    }
    return factories[name]()


ACCURATE = ["plm", "plm_symmetric", "mle", "logrise", "rise"]
ALL = [*ACCURATE, "erasure", "naive_mf", "tap"]
ITERATIVE = [*ACCURATE, "erasure"]


@pytest.mark.parametrize("name", ACCURATE)
def test_consistent_solvers_reach_the_sampling_floor(name, sk, exact_mle):
    """Within 10 % of exact MLE's error, and far below zeros (ratio 1) or a sign flip (4)."""
    truth, spins = sk
    solver = make(name)
    params = solver.fit(spins)
    assert solver.diagnostics["converged"]
    floor = mse_J(exact_mle, truth)
    assert mse_J(params, truth) < 1.1 * floor
    assert mse_J(params, truth) < 0.05 * float(truth.couplings_upper().pow(2).mean())
    assert mse_h(params, truth) < 0.05 * float(truth.h.pow(2).mean())


def test_erasure_machine_recovers_couplings(sk):
    """Biased by its built-in penalty (research note §4.2), yet far from zeros or a sign flip."""
    truth, spins = sk
    params = make("erasure").fit(spins)
    assert mse_J(params, truth) < 0.15 * float(truth.couplings_upper().pow(2).mean())


@pytest.mark.parametrize("name", ["naive_mf", "tap"])
def test_mean_field_recovers_weak_couplings(name, sk_weak):
    truth, spins = sk_weak
    params = make(name).fit(spins)
    assert mse_J(params, truth) < 0.05 * float(truth.couplings_upper().pow(2).mean())
    assert mse_h(params, truth) < 0.1 * float(truth.h.pow(2).mean())


def test_tap_corrects_the_naive_field_bias(sk_weak):
    truth, spins = sk_weak
    assert mse_h(make("tap").fit(spins), truth) < mse_h(make("naive_mf").fit(spins), truth)


def test_mle_matches_weighted_data_moments_exactly(sk):
    """At the optimum of the likelihood the model's moments are the (weighted) data moments."""
    _, spins = sk
    weights = torch.rand(spins.shape[0], generator=torch.Generator().manual_seed(5),
                         dtype=torch.float64)
    solver = MaximumLikelihood(device="cpu", tol=1e-9)
    params = solver.fit(spins, weights)
    stats = exact_statistics(params)
    gap = flat_moments(stats.first, stats.second) - flat_moments(*moments(spins, weights))
    assert solver.diagnostics["method"] == "exact"
    assert float(gap.abs().max()) < 1e-6
    assert solver.diagnostics["max_moment_error"] < 1e-6
    log_likelihood = float(weights @ (-energy(params, spins) - stats.log_z) / weights.sum())
    assert solver.diagnostics["objective"] == pytest.approx(-log_likelihood, abs=1e-9)


@pytest.mark.parametrize("name", ALL)
def test_counts_as_weights_equal_repeated_rows(name, sk):
    _, spins = sk
    unique, counts = torch.unique(spins, dim=0, return_counts=True)
    options = {} if name in ("naive_mf", "tap") else {"tol": 1e-8}
    from_rows = make(name, **options).fit(spins)
    from_counts = make(name, **options).fit(unique, counts.to(torch.float64))
    torch.testing.assert_close(from_counts.J, from_rows.J, atol=1e-6, rtol=0)
    torch.testing.assert_close(from_counts.h, from_rows.h, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_result_is_a_valid_ising_model(name, sk):
    _, spins = sk
    params = make(name).fit(spins)
    assert torch.equal(params.J, params.J.T)
    assert torch.all(torch.diagonal(params.J) == 0)
    assert torch.isfinite(params.J).all() and torch.isfinite(params.h).all()


@pytest.mark.parametrize("name", ITERATIVE)
def test_iterative_solvers_report_their_run(name, sk):
    _, spins = sk
    solver = make(name)
    solver.fit(spins)
    for key in ("iterations", "converged", "objective", "seconds"):
        assert key in solver.diagnostics
    assert solver.diagnostics["iterations"] > 0


def test_symmetric_and_asymmetric_plm_agree(sk):
    truth, spins = sk
    asymmetric = make("plm").fit(spins)
    symmetric = make("plm_symmetric").fit(spins)
    assert mse_J(symmetric, asymmetric) < 0.05 * mse_J(asymmetric, truth)


def test_l2_auto_picks_the_cross_validated_best(sk):
    _, spins = sk
    grid = [0.0, 1e-3, 1e-2, 1e-1]
    solver = PseudoLikelihood(device="cpu", l2="auto", l2_grid=grid, cv_folds=3)
    solver.fit(spins)
    diag = solver.diagnostics
    assert sorted(diag["cv_grid"]) == grid and len(diag["cv_scores"]) == len(grid)
    assert diag["l2"] == diag["cv_grid"][diag["cv_scores"].index(min(diag["cv_scores"]))]
    assert diag["l2"] < 0.1  # the largest strength visibly underfits 4000 samples


def test_l2_shrinks_couplings(sk):
    _, spins = sk
    free = make("plm").fit(spins).J.norm()
    assert make("plm", l2=0.1).fit(spins).J.norm() < 0.9 * free
    assert make("logrise", l2=0.1).fit(spins).J.norm() < 0.9 * free


def test_mle_l2_auto_takes_the_plm_choice(sk):
    _, spins = sk
    solver = MaximumLikelihood(device="cpu", l2="auto", l2_grid=[0.0, 1e-2, 1.0], cv_folds=3)
    solver.fit(spins)
    assert solver.diagnostics["l2"] in (0.0, 1e-2)
    assert len(solver.diagnostics["cv_scores"]) == 3


def test_erasure_auto_picks_max_mean_energy(sk):
    _, spins = sk
    solver = ErasureMachine(device="cpu", epsilon="auto")
    solver.fit(spins)
    diag = solver.diagnostics
    criterion = diag["epsilon_criterion"]
    assert diag["epsilon"] in diag["epsilon_grid"]
    assert diag["epsilon"] == diag["epsilon_grid"][criterion.index(max(criterion))]
    assert 0.1 < diag["epsilon"] < 0.9  # the criterion has an interior maximum


def test_erasure_solution_is_the_authors_fixed_point(sk):
    """<O>_rho = eps·theta, rho_k ∝ exp((1-eps) E(s^k)): the stationary point of their update."""
    _, spins = sk
    epsilon = 0.6
    solver = ErasureMachine(device="cpu", epsilon=epsilon, tol=1e-8)
    params = solver.fit(spins)
    assert solver.diagnostics["converged"]
    rho = torch.softmax((1 - epsilon) * energy(params, spins), 0)
    first, second = moments(spins, rho)
    torch.testing.assert_close(first, epsilon * params.h, atol=1e-7, rtol=0)
    torch.testing.assert_close(second * (1 - torch.eye(N, dtype=torch.float64)),
                               epsilon * params.J, atol=1e-7, rtol=0)


def test_mcmc_mle_refines_plm_towards_exact_mle(sk, exact_mle):
    """Persistent chains from the PLM start: closer moment matching, still at the exact optimum."""
    truth, spins = sk
    solver = MaximumLikelihood(device="cpu", exact_max_n=5, seed=0)
    params = solver.fit(spins)
    assert solver.diagnostics["method"] == "mcmc"
    assert mse_J(params, exact_mle) < 0.05 * mse_J(exact_mle, truth)
    data = flat_moments(*moments(spins))

    def exact_gap(p: IsingParams) -> float:
        stats = exact_statistics(p)
        return float((flat_moments(stats.first, stats.second) - data).abs().max())

    assert exact_gap(params) < exact_gap(make("plm").fit(spins))


def test_mcmc_mle_learns_from_zeros(sk, exact_mle):
    truth, spins = sk
    solver = MaximumLikelihood(device="cpu", exact_max_n=5, init="zeros", lr=0.5, seed=1)
    params = solver.fit(spins)
    assert mse_J(params, exact_mle) < 0.5 * mse_J(exact_mle, truth)


def test_mcmc_mle_is_reproducible_with_a_seed(sk):
    _, spins = sk
    first = MaximumLikelihood(device="cpu", exact_max_n=5, seed=3, max_iter=100).fit(spins)
    second = MaximumLikelihood(device="cpu", exact_max_n=5, seed=3, max_iter=100).fit(spins)
    assert torch.equal(first.J, second.J) and torch.equal(first.h, second.h)


def test_mean_field_clamps_frozen_spins_with_a_warning(sk_weak):
    _, spins = sk_weak
    frozen = spins[:500].clone()
    frozen[:, 0] = 1.0
    solver = MeanField(device="cpu", method="tap")
    with pytest.warns(RuntimeWarning, match="clamped"):
        params = solver.fit(frozen)
    assert solver.diagnostics["clamped_spins"] == 1
    assert torch.isfinite(params.J).all() and torch.isfinite(params.h).all()
    assert float(params.J[0].abs().max()) < 1e-3  # a frozen spin decouples


def test_minimize_converges_with_autograd_and_analytic_gradients():
    target = torch.arange(6, dtype=torch.float64)
    scale = torch.linspace(1.0, 10.0, 6, dtype=torch.float64)
    x0 = torch.zeros(6, dtype=torch.float64)
    by_autograd = minimize(lambda x: (scale * (x - target) ** 2).sum(), x0, tol=1e-10)

    def value_and_grad(x):
        return (scale * (x - target) ** 2).sum(), 2 * scale * (x - target)

    analytic = minimize(value_and_grad, x0, tol=1e-10, value_and_grad=True)
    for result in (by_autograd, analytic):
        assert result.converged and result.iterations > 0
        torch.testing.assert_close(result.x, target, atol=1e-9, rtol=0)


@pytest.mark.parametrize(("build", "key"), [
    (lambda: MeanField(device="cpu", method="foo"), "method"),
    (lambda: MeanField(device="cpu", ridge=-1.0), "ridge"),
    (lambda: InteractionScreening(device="cpu", method="ise"), "method"),
    (lambda: InteractionScreening(device="cpu", l2="auto"), "l2"),
    (lambda: ErasureMachine(device="cpu", epsilon=1.0), "epsilon"),
    (lambda: ErasureMachine(device="cpu", epsilon=0.0), "epsilon"),
    (lambda: ErasureMachine(device="cpu", epsilon_grid=[0.5, 1.5]), "epsilon_grid"),
    (lambda: PseudoLikelihood(device="cpu", l2=-0.1), "l2"),
    (lambda: PseudoLikelihood(device="cpu", l2="cv"), "l2"),
    (lambda: PseudoLikelihood(device="cpu", cv_folds=1), "cv_folds"),
    (lambda: PseudoLikelihood(device="cpu", l2_grid=[0.1, -1.0]), "l2_grid"),
    (lambda: MaximumLikelihood(device="cpu", init="random"), "init"),
    (lambda: MaximumLikelihood(device="cpu", chains=0), "chains"),
    (lambda: MaximumLikelihood(device="cpu", lr=0.0), "lr"),
])
def test_bad_options_name_the_key(build, key):
    with pytest.raises(ConfigError, match=rf"\b{key}\b"):
        build()


def test_too_few_patterns_for_the_folds_is_a_config_error(sk):
    _, spins = sk
    with pytest.raises(ConfigError, match="cv_folds"):
        PseudoLikelihood(device="cpu", l2="auto", cv_folds=5).fit(spins[:3])
