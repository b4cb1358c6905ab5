"""Maximum likelihood: exact moments by enumeration, persistent MCMC chains above that."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from isingaug.errors import ConfigError, check_options
from isingaug.ising import DEFAULT_MAX_ENUMERATION_N, IsingParams, exact_statistics, moments
from isingaug.sampling import run_sweeps
from isingaug.solvers.base import (
    Samples,
    Solver,
    choice_check,
    count_check,
    penalty_check,
    positive_check,
)
from isingaug.solvers.optim import minimize
from isingaug.solvers.plm import PseudoLikelihood

INITS = ("plm", "zeros")
METHODS = ("auto", "exact", "mcmc")


def flat_moments(first: Tensor, second: Tensor) -> Tensor:
    """(<s_i>, <s_i s_j>_{i<j}) in the order of IsingParams.to_vector, so theta . phi = -E."""
    n = first.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=first.device)
    return torch.cat([first, second[iu[0], iu[1]]])


class MaximumLikelihood(Solver):
    """Maximise the (L2-penalised) likelihood by matching model moments to data moments.

    Objective per pattern: log Z(θ) - θ·<φ>_data + (l2/2)·sum_{i<j} J_ij^2, fields unpenalised.
    Per pair this shrinks as much as PLM's (l2/2)·||W||^2, whose data term also has twice the
    curvature per pair, so one l2 means the same in both.

    `method="auto"` enumerates for n <= `exact_max_n` (at most 24) and samples above;
    `exact` refuses larger n with an error instead of enumerating 2^n states; `mcmc` always
    samples.

    Exact: log Z and the moments come from enumeration, the gradient
    <φ>_model - <φ>_data is exact (no autograd), and L-BFGS drives max|gradient| below `tol`.

    MCMC, Boltzmann learning: `chains` persistent heat-bath chains, started from data rows
    drawn by weight, advance `sweeps_per_step` sweeps per step and estimate the model moments;
    θ climbs with step lr/sqrt(1 + lr_decay·t) and is Polyak-averaged over the latter half of
    the run. Every `check_every` steps the moments averaged over that same half are compared
    with the data: the run stops when max |moment error| (plus the penalty's gradient) is below
    max(tol, 4/sqrt(chains·steps averaged)), about four standard errors of that average for
    independent chain samples, or after `max_iter` steps. A moment test cannot see slow,
    ill-conditioned parameter directions, so the MCMC path is accurate from the PLM start (the
    default) and needs a longer run from zeros. `seed` makes it reproducible.

    `init="plm"` starts from the pseudo-likelihood solution, a few % from the optimum, which
    saves most of the costly iterations. `l2="auto"` takes the strength chosen by PLM's
    cross-validated pseudo-likelihood on the same grid rather than cross-validating the
    likelihood itself, which would cost folds x grid full MLE fits.

    Diagnostics: method ("exact" or "mcmc"), max_moment_error, l2, init; exact: objective
    (penalised, = neg_log_likelihood per pattern when l2 = 0); mcmc: objective NaN (log Z
    unknown), moment_tol, averaged_steps.
    """

    name = "mle"

    def __init__(self, device: str = "auto", dtype: str = "float64", max_iter: int = 1000,
                 tol: float = 1e-7, l2: float | str = 0.0, init: str = "plm",
                 method: str = "auto", exact_max_n: int = 20, chains: int = 2000,
                 sweeps_per_step: int = 1, lr: float = 0.05, lr_decay: float = 0.01,
                 check_every: int = 50, seed: int | None = None, cv_folds: int = 5,
                 l2_grid: Sequence[float] | None = None) -> None:
        super().__init__(device, dtype)
        enumerable = (count_check("exact_max_n", exact_max_n, minimum=0)[2]
                      and exact_max_n <= DEFAULT_MAX_ENUMERATION_N)
        check_options([
            count_check("max_iter", max_iter), positive_check("tol", tol),
            penalty_check("l2", l2, allow_auto=True), choice_check("init", init, INITS),
            choice_check("method", method, METHODS),
            ("solver.exact_max_n", exact_max_n, enumerable,
             f"an integer in [0, {DEFAULT_MAX_ENUMERATION_N}] (2^n states are enumerated)"),
            count_check("chains", chains), count_check("sweeps_per_step", sweeps_per_step),
            count_check("check_every", check_every), positive_check("lr", lr),
            positive_check("lr_decay", lr_decay, strict=False),
        ], f"solver={self.name}")
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.l2 = l2 if l2 == "auto" else float(l2)
        self.init = init
        self.method = method
        self.exact_max_n = int(exact_max_n)
        self.chains = int(chains)
        self.sweeps_per_step = int(sweeps_per_step)
        self.check_every = int(check_every)
        self.lr = float(lr)
        self.lr_decay = float(lr_decay)
        self.seed = None if seed is None else int(seed)
        # the initialiser and l2 selector; it also validates cv_folds and l2_grid
        self._plm = PseudoLikelihood(self.device, self.dtype, l2=self.l2, cv_folds=cv_folds,
                                     l2_grid=l2_grid)

    def tuned_l2(self) -> MaximumLikelihood:
        twin = self._replace(l2="auto")
        twin._plm = self._plm.tuned_l2()
        return twin

    def _fit(self, data: Samples) -> IsingParams:
        spins, weights = data.spins, data.weights
        n = spins.shape[1]
        exact = self.method == "exact" or (self.method == "auto" and n <= self.exact_max_n)
        if exact and n > self.exact_max_n:
            raise ConfigError(
                f"solver={self.name}: solver.method=exact enumerates all 2^n states and is "
                f"limited to n <= solver.exact_max_n={self.exact_max_n}; got n={n}. Use "
                f"solver.method=auto or mcmc (persistent chains) for this size")
        data_phi = flat_moments(*moments(spins, weights, self.dtype))
        x0 = torch.zeros(n + n * (n - 1) // 2, dtype=self.dtype, device=self.device)
        l2 = self.l2
        if self.init == "plm" or l2 == "auto":
            start = self._plm.fit_samples(data)
            plm_diag = self._plm.diagnostics
            l2 = plm_diag["l2"]
            self.diagnostics.update({key: plm_diag[key] for key in ("cv_grid", "cv_scores")
                                     if key in plm_diag})
            self.diagnostics.update(init_converged=plm_diag["converged"],
                                    init_iterations=plm_diag["iterations"],
                                    init_seconds=plm_diag["seconds"])
            if self.init == "plm":
                x0 = start.to_vector()
        self.diagnostics.update(l2=l2, init=self.init)
        if exact:
            theta = self._fit_exact(n, data_phi, float(l2), x0)
        else:
            theta = self._fit_mcmc(spins, weights, data_phi, float(l2), x0)
        return IsingParams.from_vector(theta)

    def _penalty_mask(self, n: int) -> Tensor:
        mask = torch.ones(n + n * (n - 1) // 2, dtype=self.dtype, device=self.device)
        mask[:n] = 0.0
        return mask

    def _fit_exact(self, n: int, data_phi: Tensor, l2: float, x0: Tensor) -> Tensor:
        """L-BFGS on the exact objective; the gradient is a difference of moments, not autograd."""
        mask = self._penalty_mask(n)

        def objective(x: Tensor) -> tuple[Tensor, Tensor]:
            stats = exact_statistics(IsingParams.from_vector(x), max_n=self.exact_max_n)
            penalised = mask * x
            value = stats.log_z - x @ data_phi + 0.5 * l2 * (penalised @ penalised)
            grad = flat_moments(stats.first, stats.second) - data_phi + l2 * penalised
            return value, grad

        result = minimize(objective, x0, self.max_iter, self.tol, value_and_grad=True)
        penalised = mask * result.x
        self.diagnostics.update(
            method="exact", iterations=result.iterations, evaluations=result.evaluations,
            converged=result.converged, stop=result.stop, grad_max=result.grad_max,
            tol=self.tol, objective=result.objective,
            neg_log_likelihood=result.objective - 0.5 * l2 * float(penalised @ penalised),
            max_moment_error=float((result.grad - l2 * penalised).abs().max()))
        return result.x

    def _fit_mcmc(self, spins: Tensor, weights: Tensor, data_phi: Tensor, l2: float,
                  x0: Tensor) -> Tensor:
        """Persistent-chain stochastic ascent, Polyak-averaged over the latter half of the run."""
        generator = torch.Generator(device=self.device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        rows = torch.multinomial(weights, self.chains, replacement=True, generator=generator)
        chains = spins[rows]
        mask = self._penalty_mask(spins.shape[1])
        theta = x0.clone()
        theta_total = torch.zeros_like(theta)
        phi_total = torch.zeros_like(theta)
        # running sums at every check, so any tail of the run can be averaged
        checkpoints = [(0, theta_total.clone(), phi_total.clone())]
        converged = False
        for step in range(1, self.max_iter + 1):
            chains = run_sweeps(IsingParams.from_vector(theta), chains, self.sweeps_per_step,
                                rule="heat_bath", rng=generator)
            model_phi = flat_moments(*moments(chains, dtype=self.dtype))
            theta = theta + (self.lr / math.sqrt(1.0 + self.lr_decay * step)
                             * (data_phi - model_phi - l2 * mask * theta))
            theta_total += theta
            phi_total += model_phi
            if step % self.check_every and step < self.max_iter:
                continue
            checkpoints.append((step, theta_total.clone(), phi_total.clone()))
            start, theta_start, phi_start = max((c for c in checkpoints if c[0] <= step // 2),
                                           key=lambda c: c[0])
            count = step - start
            theta_avg = (theta_total - theta_start) / count
            moment_error = data_phi - (phi_total - phi_start) / count
            threshold = max(self.tol, 4.0 / math.sqrt(self.chains * count))
            if float((moment_error - l2 * mask * theta_avg).abs().max()) < threshold:
                converged = True
                break
        self.diagnostics.update(method="mcmc", iterations=step, converged=converged,
                                stop="converged" if converged else "max_iter",
                                objective=float("nan"),
                                max_moment_error=float(moment_error.abs().max()),
                                moment_tol=threshold, averaged_steps=count)
        return theta_avg
