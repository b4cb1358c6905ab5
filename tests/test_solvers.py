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
    diag = solver.diagnostics
    assert set(Solver.DIAGNOSTIC_KEYS) <= set(diag)
    assert diag["converged"] is True and diag["stop"] == "converged"
    assert 0 < diag["iterations"] <= diag["max_iter"]
    assert diag["limit_key"] == "solver.max_iter"


@pytest.mark.parametrize("name", ITERATIVE)
def test_hitting_max_iter_is_reported_as_not_converged(name, sk):
    _, spins = sk
    solver = make(name, max_iter=2)
    solver.fit(spins)
    diag = solver.diagnostics
    assert diag["converged"] is False and diag["stop"] == "max_iter"
    assert diag["iterations"] == diag["max_iter"] == 2
    assert diag["limit_key"] == "solver.max_iter"


def test_mcmc_mle_reports_max_iter_as_not_converged(sk):
    _, spins = sk
    solver = MaximumLikelihood(device="cpu", method="mcmc", init="zeros", max_iter=3, seed=0)
    solver.fit(spins)
    diag = solver.diagnostics
    assert diag["method"] == "mcmc" and diag["converged"] is False
    assert diag["iterations"] == diag["max_iter"] == 3


@pytest.mark.parametrize("name", ["naive_mf", "tap"])
def test_closed_forms_report_convergence_without_a_limit(name, sk):
    _, spins = sk
    solver = make(name)
    solver.fit(spins)
    diag = solver.diagnostics
    assert set(Solver.DIAGNOSTIC_KEYS) <= set(diag)
    assert diag["converged"] is True and diag["iterations"] == 0
    assert diag["max_iter"] is None and diag["limit_key"] is None


def test_symmetric_and_asymmetric_plm_agree(sk):
    truth, spins = sk
    asymmetric = make("plm").fit(spins)
    symmetric = make("plm_symmetric").fit(spins)
    assert mse_J(symmetric, asymmetric) < 0.05 * mse_J(asymmetric, truth)


def test_l2_auto_picks_the_cross_validated_best(sk):
    _, spins = sk
    grid = [0.0, 1e-3, 1e-2, 1e-1]
    solver = PseudoLikelihood(device="cpu", l2="auto", l2_grid=grid, cv_folds=3,
                              cv_patience=None)
    solver.fit(spins)
    diag = solver.diagnostics
    assert diag["cv_grid"] == sorted(grid, reverse=True) and len(diag["cv_scores"]) == len(grid)
    assert diag["l2"] == diag["cv_grid"][diag["cv_scores"].index(min(diag["cv_scores"]))]
    assert diag["l2"] < 0.1  # the largest strength visibly underfits 4000 samples
    assert not diag["cv_stopped_early"]


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
    (lambda: InteractionScreening(device="cpu", l2=-1.0), "l2"),
    (lambda: InteractionScreening(device="cpu", cv_patience=0), "cv_patience"),
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
    (lambda: MaximumLikelihood(device="cpu", method="enumerate"), "method"),
    (lambda: MaximumLikelihood(device="cpu", exact_max_n=30), "exact_max_n"),
    (lambda: PseudoLikelihood(device="cpu", max_iter=0), "max_iter"),
    (lambda: PseudoLikelihood(device="cpu", max_iter=2.5), "max_iter"),
    (lambda: PseudoLikelihood(device="cpu", tol=-1.0), "tol"),
    (lambda: PseudoLikelihood(device="cpu", symmetric="yes"), "symmetric"),
    (lambda: PseudoLikelihood(device="cpu", cv_tol=0.0), "cv_tol"),
    (lambda: PseudoLikelihood(device="cpu", work_dtype="float16"), "work_dtype"),
    (lambda: ErasureMachine(device="cpu", max_iter=-3), "max_iter"),
])
def test_bad_options_name_the_key(build, key):
    with pytest.raises(ConfigError, match=rf"solver\.{key} must be"):
        build()


def test_too_few_patterns_for_the_folds_is_a_config_error(sk):
    _, spins = sk
    with pytest.raises(ConfigError, match="cv_folds"):
        PseudoLikelihood(device="cpu", l2="auto", cv_folds=5).fit(spins[:3])


# ---- tuned-L2 twins, cross-validation, the fast paths ------------------------------------------


@pytest.mark.parametrize("name", ["plm", "plm_symmetric", "mle", "logrise", "rise"])
def test_tuned_l2_twin_is_the_same_solver_with_l2_auto(name, sk):
    """The twin cross-validates (on the grid) and fits as an l2=auto solver built directly."""
    _, spins = sk
    options = {"l2_grid": [0.0, 1e-2, 1.0], "cv_folds": 3}
    solver = make(name, **options)
    twin = solver.tuned_l2()
    assert twin is not solver and type(twin) is type(solver)
    assert solver.l2 == 0.0 and twin.l2 == "auto"
    params = twin.fit(spins)
    direct = make(name, l2="auto", **options).fit(spins)
    assert twin.diagnostics["l2"] in (0.0, 1e-2)
    assert len(twin.diagnostics["cv_scores"]) >= 2
    torch.testing.assert_close(params.J, direct.J, atol=1e-9, rtol=0)
    assert "cv_scores" not in solver.diagnostics  # the original is untouched


@pytest.mark.parametrize("name", ["erasure", "naive_mf", "tap"])
def test_solvers_without_an_l2_option_have_no_twin(name):
    assert make(name).tuned_l2() is None


@pytest.mark.parametrize("symmetric", [False, True])
def test_warm_started_early_stopped_cv_chooses_as_the_cold_full_grid(sk, symmetric):
    """Warm starts and the early stop only save work: the same strength wins."""
    _, spins = sk
    grid = [0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    warm = PseudoLikelihood(device="cpu", l2="auto", l2_grid=grid, symmetric=symmetric)
    cold = PseudoLikelihood(device="cpu", l2="auto", l2_grid=grid, symmetric=symmetric,
                            cv_warm_start=False, cv_patience=None)
    warm.fit(spins)
    cold.fit(spins)
    assert warm.diagnostics["l2"] == cold.diagnostics["l2"]
    assert cold.diagnostics["cv_grid"] == sorted(grid, reverse=True)
    tried = len(warm.diagnostics["cv_grid"])
    assert warm.diagnostics["cv_grid"] == cold.diagnostics["cv_grid"][:tried]
    torch.testing.assert_close(torch.tensor(warm.diagnostics["cv_scores"]),
                               torch.tensor(cold.diagnostics["cv_scores"][:tried]),
                               atol=1e-3, rtol=0)


def test_float32_work_phase_gives_the_float64_answer(sk):
    _, spins = sk
    fast = PseudoLikelihood(device="cpu", l2=1e-3)
    plain = PseudoLikelihood(device="cpu", l2=1e-3, work_dtype=None)
    a, b = fast.fit(spins), plain.fit(spins)
    assert fast.diagnostics["converged"] and plain.diagnostics["converged"]
    assert fast.diagnostics["grad_max"] <= 1e-6
    assert a.J.dtype == torch.float64
    torch.testing.assert_close(a.J, b.J, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.h, b.h, atol=1e-5, rtol=0)


def test_screening_l2_auto_cross_validates(sk):
    _, spins = sk
    solver = InteractionScreening(device="cpu", l2="auto", l2_grid=[0.0, 1e-2, 1.0],
                                  cv_folds=3, cv_patience=None)
    solver.fit(spins)
    diag = solver.diagnostics
    assert diag["cv_grid"] == [1.0, 1e-2, 0.0]
    assert diag["l2"] == diag["cv_grid"][diag["cv_scores"].index(min(diag["cv_scores"]))]
    assert diag["l2"] < 1.0 and diag["converged"]


def test_chunked_objectives_match_direct_formulas(sk, monkeypatch):
    """Chunks of 7 rows over two row ranges: PLL and screening against formulas and autograd."""
    import isingaug.solvers.objectives as lf
    from isingaug.ising import pseudo_log_likelihood
    from isingaug.solvers.optim import fields_and_couplings

    monkeypatch.setattr(lf, "chunk_rows", lambda n, device: 7)
    _, spins = sk
    spins = spins[:100]
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(N, N, generator=gen, dtype=torch.float64) * 0.3
    w = torch.rand(100, generator=gen, dtype=torch.float64)
    w[40:55] = 0.0  # rows outside the ranges carry no weight
    ranges = [(0, 40), (55, 100)]
    l2 = 0.07
    for symmetric in (False, True):
        z = x.clone().requires_grad_(True)
        h, J = fields_and_couplings(z, symmetric)
        fields = h + spins @ J.T
        direct = (w * torch.nn.functional.softplus(-2 * spins * fields).sum(1)).sum() \
            + 0.5 * l2 * J.pow(2).sum()
        (grad,) = torch.autograd.grad(direct, z)
        value, chunked = lf.pll_pass(x, lf.augmented(spins), w, ranges, l2, symmetric)
        torch.testing.assert_close(value, direct.detach(), atol=1e-10, rtol=0)
        torch.testing.assert_close(chunked, grad, atol=1e-10, rtol=0)
    params = IsingParams(*fields_and_couplings(x, True))
    torch.testing.assert_close(lf.pll_pass(x, lf.augmented(spins), w, ranges, 0.0, True, False)[0],
                               -(w * pseudo_log_likelihood(params, spins)).sum())
    for log in (False, True):
        z = x.clone().requires_grad_(True)
        h, J = fields_and_couplings(z, False)
        screened = (w[:, None] * torch.exp(-spins * (h + spins @ J.T))).sum(0)
        direct = (torch.log(screened) if log else screened).sum() + 0.5 * l2 * J.pow(2).sum()
        (grad,) = torch.autograd.grad(direct, z)
        value, chunked = lf.screening_pass(x, lf.augmented(spins), torch.log(w), ranges, l2, log)
        torch.testing.assert_close(value, direct.detach(), atol=1e-10, rtol=1e-12)
        torch.testing.assert_close(chunked, grad, atol=1e-10, rtol=1e-12)


@pytest.mark.parametrize("n", [10, 60])
def test_distinct_patterns_are_torch_unique_rows(n):
    """Exact binary keys for n <= 52, a checked random projection above."""
    from isingaug.solvers.base import distinct_patterns

    gen = torch.Generator().manual_seed(n)
    base = torch.randint(0, 2, (50, n), generator=gen).double() * 2 - 1
    spins = base[torch.randint(0, 50, (400,), generator=gen)]
    distinct, rows = distinct_patterns(spins)
    expected = torch.unique(spins, dim=0)
    assert distinct.shape == expected.shape
    assert torch.equal(distinct[rows], spins)
    assert torch.equal(torch.unique(distinct, dim=0), expected)


def test_folds_split_repeated_patterns_like_their_rows():
    """Collapsed CV folds = the folds of the raw rows, aggregated over each pattern's rows."""
    from isingaug.solvers.base import collapse

    gen = torch.Generator().manual_seed(0)
    base = torch.randint(0, 2, (30, 6), generator=gen).double() * 2 - 1
    spins = base[torch.randint(0, 30, (500,), generator=gen)]
    w = torch.full((500,), 1 / 500, dtype=torch.float64)
    data = collapse(spins, w)
    solver = PseudoLikelihood(device="cpu", l2="auto", cv_folds=4, cv_seed=7)
    train, val = solver.fold_weights(data)
    order = torch.randperm(500, generator=torch.Generator().manual_seed(7))
    fold_of = torch.empty(500, dtype=torch.long)
    # the assignment of the uncollapsed rows (contiguous runs of equal mass in a seeded order)
    fold_of[order] = ((torch.cumsum(w[order], 0) - w[order]) * 4).long().clamp(max=3)
    for k in range(4):
        val_rows = torch.zeros(data.spins.shape[0], dtype=torch.float64)
        val_rows.index_add_(0, data.rows[fold_of == k], w[fold_of == k])
        train_rows = torch.zeros_like(val_rows)
        train_rows.index_add_(0, data.rows[fold_of != k], w[fold_of != k])
        torch.testing.assert_close(val[k], val_rows / val_rows.sum())
        torch.testing.assert_close(train[k], train_rows / train_rows.sum())
        assert torch.equal(train[k] == 0, train_rows == 0)  # exact zeros: skipped rows


def test_mle_exact_mode_refuses_large_n_before_enumerating():
    spins = torch.randint(0, 2, (50, 30), generator=torch.Generator().manual_seed(0)) * 2.0 - 1
    solver = MaximumLikelihood(device="cpu", method="exact", init="zeros")
    with pytest.raises(ConfigError, match=r"solver\.method=exact .* n <= solver\.exact_max_n=20; "
                                          r"got n=30"):
        solver.fit(spins)


def test_minimize_reports_why_it_stopped():
    scale = torch.logspace(0, 3, 20, dtype=torch.float64)

    def quadratic(x):
        return 0.5 * (scale * x * x).sum(), scale * x

    x0 = torch.ones(20, dtype=torch.float64)
    short = minimize(quadratic, x0, max_iter=3, tol=1e-12, value_and_grad=True)
    full = minimize(quadratic, x0, max_iter=500, tol=1e-9, value_and_grad=True)
    assert (short.stop, short.converged, short.iterations) == ("max_iter", False, 3)
    assert short.grad_max > 1e-9
    assert full.stop == "converged" and full.converged and full.grad_max <= 1e-9
    assert full.evaluations >= full.iterations
    torch.testing.assert_close(full.x, torch.zeros(20, dtype=torch.float64), atol=1e-9, rtol=0)
